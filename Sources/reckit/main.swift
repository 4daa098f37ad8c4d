import ArgumentParser
import Foundation

// Typed failures become one clear line on stderr and a specific exit code; everything else goes through
// ArgumentParser (usage errors exit 64, other errors 1).
/// Runs the parsed command; inside an async function so `run()` resolves to the async overload for async commands
/// (`serve`, `bench serve`) — at top level the synchronous default (print help) was picked.
func runParsedCommand() async throws {
    var command = try RecKitCommand.parseAsRoot()
    if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.run()
    } else {
        try command.run()
    }
}

do {
    try await runParsedCommand()
} catch let e as CLIError {
    FileHandle.standardError.write(Data("reckit: error: \(e.message)\n".utf8))
    exit(e.code)
} catch {
    RecKitCommand.exit(withError: error)
}
