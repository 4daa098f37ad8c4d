import ArgumentParser
import Foundation

// Typed failures become one clear line on stderr and a specific exit code; everything else goes through
// ArgumentParser (usage errors exit 64, other errors 1).
do {
    var command = try RecKitCommand.parseAsRoot()
    try command.run()
} catch let e as CLIError {
    FileHandle.standardError.write(Data("reckit: error: \(e.message)\n".utf8))
    exit(e.code)
} catch {
    RecKitCommand.exit(withError: error)
}
