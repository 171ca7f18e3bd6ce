/// The OpenAPI 3.1 description served at `/openapi.yaml`. A test checks that its paths and
/// methods are exactly `APIServer.routes`.
public enum OpenAPIDocument {
    public static let yaml = """
        openapi: 3.1.0
        info:
          title: Switchyard call API
          version: "1.0"
          description: >
            Create outbound calls and read their status and CDRs. Authenticate with
            `Authorization: Bearer <api key>` (create one with `switchyard accounts create`).
            Errors are JSON: {code, message, field, more_info, status}.
        servers:
          - url: http://127.0.0.1:8080
        security:
          - bearer: []
        paths:
          /v1/calls:
            post:
              summary: Create a call (queued at once, placed by the orchestrator)
              parameters:
                - { name: Idempotency-Key, in: header, required: false, schema: { type: string, maxLength: 255 },
                    description: "A retry with the same key within 24 h returns the same call; a different body answers 422" }
              requestBody:
                required: true
                content:
                  application/json:
                    schema: { $ref: "#/components/schemas/CallRequest" }
              responses:
                "201": { description: Created (or replayed, with Idempotent-Replayed true), content: { application/json: { schema: { $ref: "#/components/schemas/Call" } } } }
                "400": { $ref: "#/components/responses/Error" }
                "401": { $ref: "#/components/responses/Error" }
                "413": { $ref: "#/components/responses/Error" }
                "415": { $ref: "#/components/responses/Error" }
                "422": { $ref: "#/components/responses/Error" }
                "503": { $ref: "#/components/responses/Error" }
            get:
              summary: List calls, newest first (cursor pagination)
              parameters:
                - { name: status, in: query, schema: { $ref: "#/components/schemas/Status" } }
                - { name: to, in: query, schema: { type: string } }
                - { name: from, in: query, schema: { type: string } }
                - { name: page_size, in: query, schema: { type: integer, minimum: 1, maximum: 100, default: 50 } }
                - { name: page_token, in: query, schema: { type: string } }
              responses:
                "200": { description: A page, content: { application/json: { schema: { $ref: "#/components/schemas/CallPage" } } } }
                "400": { $ref: "#/components/responses/Error" }
                "401": { $ref: "#/components/responses/Error" }
          /v1/calls/{id}:
            get:
              summary: One call
              parameters: [ { $ref: "#/components/parameters/Id" } ]
              responses:
                "200": { description: The call, content: { application/json: { schema: { $ref: "#/components/schemas/Call" } } } }
                "404": { $ref: "#/components/responses/Error" }
          /v1/calls/{id}/cancel:
            post:
              summary: Cancel a queued call (200, canceled) or hang up a ringing or answered one (202)
              parameters: [ { $ref: "#/components/parameters/Id" } ]
              responses:
                "200": { description: Canceled, content: { application/json: { schema: { $ref: "#/components/schemas/Call" } } } }
                "202": { description: Hangup requested, content: { application/json: { schema: { $ref: "#/components/schemas/Call" } } } }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /v1/calls/{id}/cdr:
            get:
              summary: The call's CDRs (one per channel)
              parameters: [ { $ref: "#/components/parameters/Id" } ]
              responses:
                "200": { description: CDRs, content: { application/json: { schema: { type: object, properties: { cdrs: { type: array, items: { $ref: "#/components/schemas/CDR" } } } } } } }
                "404": { $ref: "#/components/responses/Error" }
          /v1/calls/{id}/events:
            get:
              summary: The call's event log (placement attempts, status changes, reconciles, callbacks), oldest first
              parameters: [ { $ref: "#/components/parameters/Id" } ]
              responses:
                "200":
                  description: Events
                  content:
                    application/json:
                      schema:
                        type: object
                        properties:
                          events:
                            type: array
                            items:
                              type: object
                              required: [at, kind, result]
                              properties:
                                at: { type: string, format: date-time }
                                kind: { type: string, enum: [attempt, status, reconcile, callback] }
                                node: { type: string, nullable: true }
                                region: { type: string, nullable: true }
                                result: { type: string }
                                elapsed_ms: { type: integer, nullable: true }
                                detail: { type: string, nullable: true }
                "404": { $ref: "#/components/responses/Error" }
          /2010-04-01/Accounts/{AccountSid}/Calls.json:
            post:
              summary: "Twilio's create: form-encoded To, From, Url or Twiml, StatusCallback, StatusCallbackEvent (repeated), StatusCallbackMethod, Timeout, TimeLimit, Method; paced at the account's calls per second"
              security: [ { basic: [] } ]
              parameters: [ { $ref: "#/components/parameters/AccountSid" } ]
              requestBody: { required: true, content: { application/x-www-form-urlencoded: { schema: { type: object } } } }
              responses:
                "201": { description: Queued, content: { application/json: { schema: { $ref: "#/components/schemas/TwilioCall" } } } }
                "400": { $ref: "#/components/responses/TwilioError" }
                "401": { $ref: "#/components/responses/TwilioError" }
                "429": { $ref: "#/components/responses/TwilioError" }
            get:
              summary: "Twilio's list: PageSize, Page, PageToken; filters To, From, Status, StartTime, EndTime and their < / > forms"
              security: [ { basic: [] } ]
              parameters: [ { $ref: "#/components/parameters/AccountSid" } ]
              responses:
                "200": { description: "A page: calls, start, end, page, page_size, uri, first_page_uri, next_page_uri, previous_page_uri" }
                "400": { $ref: "#/components/responses/TwilioError" }
          /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json:
            get:
              summary: "Twilio's fetch"
              security: [ { basic: [] } ]
              parameters: [ { $ref: "#/components/parameters/AccountSid" }, { $ref: "#/components/parameters/CallSid" } ]
              responses:
                "200": { description: The call, content: { application/json: { schema: { $ref: "#/components/schemas/TwilioCall" } } } }
                "404": { $ref: "#/components/responses/TwilioError" }
            post:
              summary: "Twilio's update: Status=canceled (queued or ringing) or completed (any live call); Url, Method or Twiml"
              security: [ { basic: [] } ]
              parameters: [ { $ref: "#/components/parameters/AccountSid" }, { $ref: "#/components/parameters/CallSid" } ]
              responses:
                "200": { description: The call, content: { application/json: { schema: { $ref: "#/components/schemas/TwilioCall" } } } }
                "400": { $ref: "#/components/responses/TwilioError" }
                "404": { $ref: "#/components/responses/TwilioError" }
            delete:
              summary: "Twilio's delete: hides a finished call (its CDRs stay)"
              security: [ { basic: [] } ]
              parameters: [ { $ref: "#/components/parameters/AccountSid" }, { $ref: "#/components/parameters/CallSid" } ]
              responses:
                "204": { description: Deleted }
                "404": { $ref: "#/components/responses/TwilioError" }
                "409": { $ref: "#/components/responses/TwilioError" }
          /healthz:
            get:
              summary: PostgreSQL and NATS reachability
              security: []
              responses:
                "200": { description: Healthy }
                "503": { description: Degraded }
          /metrics:
            get:
              summary: Prometheus metrics
              security: []
              responses:
                "200": { description: Metrics in the text exposition format }
          /openapi.yaml:
            get:
              summary: This document
              security: []
              responses:
                "200": { description: OpenAPI 3.1 YAML }
        components:
          securitySchemes:
            bearer: { type: http, scheme: bearer }
            basic: { type: http, scheme: basic, description: "AccountSid:AuthToken (the Twilio surface)" }
          parameters:
            Id: { name: id, in: path, required: true, schema: { type: string, format: uuid } }
            AccountSid: { name: AccountSid, in: path, required: true, schema: { type: string, pattern: "^AC[0-9a-f]{32}$" } }
            CallSid: { name: CallSid, in: path, required: true, schema: { type: string, pattern: "^CA[0-9a-f]{32}$" } }
          responses:
            Error:
              description: An error
              content:
                application/json:
                  schema:
                    type: object
                    required: [code, message, status]
                    properties:
                      code: { type: integer, description: stable per kind of error }
                      message: { type: string }
                      field: { type: [string, "null"] }
                      more_info: { type: string }
                      status: { type: integer }
            TwilioError:
              description: "An error on the Twilio surface, in Twilio's shape"
              content: { application/json: { schema: { $ref: "#/components/schemas/TwilioError" } } }
          schemas:
            Status: { type: string, enum: [queued, ringing, in-progress, completed, busy, failed, no-answer, canceled] }
            CallRequest:
              type: object
              additionalProperties: false
              required: [to, from, url]
              properties:
                to: { type: string, pattern: "^\\\\+[1-9][0-9]{1,14}$" }
                from: { type: string, pattern: "^\\\\+[1-9][0-9]{1,14}$" }
                url: { type: string, format: uri }
                status_callback: { type: string, format: uri }
                status_callback_events: { type: array, items: { type: string, enum: [initiated, ringing, answered, completed] } }
                timeout: { type: integer, minimum: 1, maximum: 600, default: 60 }
                time_limit: { type: integer, minimum: 1, maximum: 14400 }
                region: { type: string, pattern: "^[a-z0-9-]{1,32}$" }
                client_state: { type: string, maxLength: 1024 }
            Call:
              type: object
              properties:
                id: { type: string, format: uuid }
                account_id: { type: string, format: uuid }
                to: { type: string }
                from: { type: string }
                url: { type: string }
                status: { $ref: "#/components/schemas/Status" }
                status_callback: { type: [string, "null"] }
                status_callback_events: { type: array, items: { type: string } }
                timeout: { type: integer }
                time_limit: { type: [integer, "null"] }
                region: { type: [string, "null"] }
                client_state: { type: [string, "null"] }
                node: { type: [string, "null"] }
                date_created: { type: string, format: date-time }
                date_updated: { type: string, format: date-time }
                answered_at: { type: [string, "null"], format: date-time }
                ended_at: { type: [string, "null"], format: date-time }
                end_cause: { type: [string, "null"], description: "node-lost, ended-unseen, node-unreachable, no-node, all-nodes-refused, or the node's hangup cause" }
                uri: { type: string }
            CallPage:
              type: object
              properties:
                calls: { type: array, items: { $ref: "#/components/schemas/Call" } }
                page_size: { type: integer }
                next_page_token: { type: [string, "null"] }
                next_page_uri: { type: [string, "null"] }
            CDR:
              type: object
              properties:
                channel_uuid: { type: string }
                call_id: { type: string, format: uuid }
                node: { type: string }
                region: { type: [string, "null"] }
                direction: { type: string }
                from: { type: [string, "null"] }
                to: { type: [string, "null"] }
                start_at: { type: [string, "null"], format: date-time }
                answer_at: { type: [string, "null"], format: date-time }
                end_at: { type: [string, "null"], format: date-time }
                duration: { type: integer }
                billsec: { type: integer }
                hangup_cause: { type: [string, "null"] }
                codec: { type: [string, "null"] }
                cost: { type: [string, "null"] }
            TwilioCall:
              type: object
              description: "A call in Twilio's shape (RFC 2822 dates with +0000, SIDs, strings for duration and queue_time)"
              properties:
                sid: { type: string, pattern: "^CA[0-9a-f]{32}$" }
                account_sid: { type: string, pattern: "^AC[0-9a-f]{32}$" }
                to: { type: string }
                to_formatted: { type: string }
                from: { type: string }
                from_formatted: { type: string }
                status: { $ref: "#/components/schemas/Status" }
                direction: { type: string, enum: [outbound-api] }
                api_version: { type: string }
                date_created: { type: string }
                date_updated: { type: string }
                start_time: { type: [string, "null"] }
                end_time: { type: [string, "null"] }
                duration: { type: [string, "null"] }
                queue_time: { type: string }
                price: { type: "null" }
                price_unit: { type: string }
                uri: { type: string }
                subresource_uris: { type: object }
            TwilioError:
              type: object
              required: [code, message, more_info, status]
              properties:
                code: { type: integer }
                message: { type: string }
                more_info: { type: string }
                status: { type: integer }

        """
}
