import ArgumentParser

struct RecKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reckit", abstract: "RecKit: recommendation models on CPUs.",
        subcommands: [])
}
