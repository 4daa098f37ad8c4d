import ArgumentParser
import Foundation
import RecKitCheckpoint
import RecKitData
import RecKitEmbeddings
import RecKitModels
import RecKitServing
import RecKitTraining

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

/// A typed failure the commands did not map themselves becomes one line and the input-error code (65): a bad file
/// or option is never "Error:" with exit 1.
func inputError(_ error: Error) -> CLIError? {
    switch error {
    case let e as DataError: return CLIError(message: e.description, code: 65)
    case let e as TrainingError: return CLIError.training(e)
    case let e as CheckpointError: return CLIError(message: e.description, code: 65)
    case let e as ModelError: return CLIError(message: e.description, code: 65)
    case let e as RequestError: return CLIError(message: e.description, code: 65)
    case let e as EmbeddingError: return CLIError(message: e.description, code: 65)
    default: return nil
    }
}

// A file-size limit (ulimit -f) makes writes fail with EFBIG, reported as a write error, instead of killing the process.
signal(SIGXFSZ, SIG_IGN)
do {
    try await runParsedCommand()
} catch {
    if let e = (error as? CLIError) ?? inputError(error) {
        FileHandle.standardError.write(Data("reckit: error: \(e.message)\n".utf8))
        exit(e.code)
    }
    RecKitCommand.exit(withError: error)
}
