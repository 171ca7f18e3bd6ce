import Foundation
import Store

/// The call as the API shows it (Twilio's vocabulary, snake_case JSON).
struct CallResource: JSONWritable, Sendable {
    var id: String
    var account_id: String
    var to: String
    var from: String
    var url: String
    var status: String
    var status_callback: String?
    var status_callback_events: [String]
    var timeout: Int
    var time_limit: Int?
    var region: String?
    var client_state: String?
    var node: String?
    var date_created: String
    var date_updated: String
    var answered_at: String?
    var ended_at: String?
    /// Why the call ended when its status does not say it all (`node-lost`, `ended-unseen`,
    /// `node-unreachable`, `no-node`, or the node's hangup cause).
    var end_cause: String?
    var uri: String

    init(_ c: CallStore.Call) {
        id = c.id
        account_id = c.accountID
        to = c.to
        from = c.from
        url = c.url
        status = c.status
        status_callback = c.statusCallback
        status_callback_events = c.statusCallbackEvents
        timeout = c.timeout
        time_limit = c.timeLimit
        region = c.region
        client_state = c.clientState
        node = c.node
        date_created = c.createdAt
        date_updated = c.updatedAt
        answered_at = c.answeredAt
        ended_at = c.endedAt
        end_cause = c.endCause
        uri = "/v1/calls/\(c.id)"
    }

    /// Every key, nulls included, sorted.
    func write(to w: inout JSONWriter) {
        w.object { w in
            w.field("account_id", account_id)
            w.field("answered_at", answered_at)
            w.field("client_state", client_state)
            w.field("date_created", date_created)
            w.field("date_updated", date_updated)
            w.field("end_cause", end_cause)
            w.field("ended_at", ended_at)
            w.field("from", from)
            w.field("id", id)
            w.field("node", node)
            w.field("region", region)
            w.field("status", status)
            w.field("status_callback", status_callback)
            w.field("status_callback_events", status_callback_events)
            w.field("time_limit", time_limit)
            w.field("timeout", timeout)
            w.field("to", to)
            w.field("uri", uri)
            w.field("url", url)
        }
    }
}
