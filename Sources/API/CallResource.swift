import Foundation
import Store

/// The call as the API shows it (Twilio's vocabulary, snake_case JSON).
struct CallResource: Encodable, Sendable {
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

    func encode(to encoder: any Encoder) throws {
        // Explicit nulls for absent optionals, so every call has the same keys.
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(account_id, forKey: .account_id)
        try c.encode(to, forKey: .to)
        try c.encode(from, forKey: .from)
        try c.encode(url, forKey: .url)
        try c.encode(status, forKey: .status)
        try c.encode(status_callback, forKey: .status_callback)
        try c.encode(status_callback_events, forKey: .status_callback_events)
        try c.encode(timeout, forKey: .timeout)
        try c.encode(time_limit, forKey: .time_limit)
        try c.encode(region, forKey: .region)
        try c.encode(client_state, forKey: .client_state)
        try c.encode(node, forKey: .node)
        try c.encode(date_created, forKey: .date_created)
        try c.encode(date_updated, forKey: .date_updated)
        try c.encode(answered_at, forKey: .answered_at)
        try c.encode(ended_at, forKey: .ended_at)
        try c.encode(end_cause, forKey: .end_cause)
        try c.encode(uri, forKey: .uri)
    }

    enum CodingKeys: String, CodingKey {
        case id, account_id, to, from, url, status, status_callback, status_callback_events, timeout, time_limit, region, client_state, node
        case date_created, date_updated, answered_at, ended_at, end_cause, uri
    }
}
