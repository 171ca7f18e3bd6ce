/// What a sipp UAC run ended with: its exit status and its final counters.
public struct SippResult: Sendable, CustomStringConvertible {
    /// sipp's exit status: 0 all calls succeeded, 1 at least one failed, 97 internal exit,
    /// 99 no call processed, 255/254 fatal error (binding).
    public var exitStatus: Int32?
    /// Calls created (TotalCallCreated).
    public var createdCalls: Int
    /// SuccessfulCall(C): calls that reached the end of the scenario.
    public var successfulCalls: Int
    /// FailedCall(C).
    public var failedCalls: Int
    /// The nonzero Failed…(C) columns other than FailedCall(C), by reason
    /// (e.g. `UnexpectedMessage`, `MaxUDPRetrans`, `CallRegexpDoesntMatch`).
    public var failureReasons: [String: Int]
    /// Per-message counters from `-trace_counts` (`0_INVITE_Sent`, `3_486_Recv`, `2_180_Unexp`, …),
    /// as last dumped: sipp writes them every second, not at exit, so a run shorter than a second
    /// has none. For diagnostics; assert on the call counters.
    public var messageCounts: [String: Int]
    /// The tail of sipp's output, screen and error log, for failure messages.
    public var diagnostics: String

    /// Nonzero `_Unexp`, `_Timeout` and `_Retrans` message counters: where calls went wrong.
    public var problemCounts: [String: Int] {
        messageCounts.filter { ($0.key.hasSuffix("_Unexp") || $0.key.hasSuffix("_Timeout") || $0.key.hasSuffix("_Retrans")) && $0.value > 0 }
    }

    public var description: String {
        let reasons = failureReasons.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let problems = problemCounts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return """
            sipp UAC: exit=\(exitStatus.map(String.init) ?? "running") created=\(createdCalls) successful=\(successfulCalls) \
            failed=\(failedCalls) reasons=[\(reasons)] problems=[\(problems)]
            \(diagnostics)
            """
    }
}
