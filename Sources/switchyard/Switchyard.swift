import ArgumentParser

/// The composition root: one binary, one subcommand per service.
@main
struct Switchyard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "SIP load-balancing proxy and region router.",
        subcommands: [ProxyCommand.self, APICommand.self, OrchestratorCommand.self, CDRCommand.self, FSNodeCommand.self, AccountsCommand.self, MigrateCommand.self, CheckCommand.self, NodesCommand.self]
    )
}
