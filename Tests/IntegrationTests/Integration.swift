import Testing

/// The parent of every integration suite. Serialized, so that the suites (each starting a proxy
/// and sipp processes) do not compete for the machine's cores and skew the timing-based checks
/// (INVITE timeouts, failover) of one another.
@Suite("Integration (real switchyard and sipp processes)", .serialized)
enum Integration {}
