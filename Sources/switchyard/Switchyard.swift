import ArgumentParser
import Logging

/// The composition root: one binary, one subcommand per service.
@main
struct Switchyard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "SIP load-balancing proxy and region router.",
        subcommands: [
            ProxyCommand.self, APICommand.self, OrchestratorCommand.self, CDRCommand.self, FSNodeCommand.self, AccountsCommand.self, MigrateCommand.self,
            CheckCommand.self, NodesCommand.self, UpCommand.self, DrillCommand.self,
        ]
    )
}

/// Structured log lines on stderr at `level`, for every subcommand.
func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = DeferredMetadataLogHandler(StreamLogHandler.standardError(label: label))
        handler.logLevel = level
        return handler
    }
}
