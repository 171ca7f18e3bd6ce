/// Waits for things by polling a condition against a deadline, never by a fixed sleep.
public enum Poll {
    /// Evaluates `condition` every `interval` until it returns true or `timeout` has passed.
    /// Returns whether the condition became true (it is evaluated once more at the deadline).
    @discardableResult
    public static func until(
        timeout: Duration,
        interval: Duration = .milliseconds(50),
        _ condition: () async throws -> Bool
    ) async rethrows -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: interval)
        }
        return try await condition()
    }
}
