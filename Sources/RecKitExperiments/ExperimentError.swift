import Foundation

/// Errors of run directories, event files, reports and the tuner.
public enum ExperimentError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A file or directory could not be created, read or written.
    case io(path: String, reason: String)
    /// A run directory with this name already exists (runs are never rewritten); hint: another `--run-name`.
    case runExists(path: String)
    /// A path that should be a run directory is not one (no config.json).
    case notARun(path: String)
    /// A file of a run directory, or an event file, does not parse; `line` when known (1-based).
    case malformed(path: String, line: Int?, reason: String)
    /// Options that cannot work together.
    case options(String)

    public var description: String {
        switch self {
        case .io(let p, let r): return "\(p): \(r)"
        case .runExists(let p): return "\(p) already exists and runs are never rewritten: choose another --run-name (or --resume into it)"
        case .notARun(let p): return "\(p) is not a run directory (no config.json); runs are written by `reckit train` under --runs-dir"
        case .malformed(let p, let l, let r): return "\(p)\(l.map { ":\($0)" } ?? ""): \(r)"
        case .options(let m): return m
        }
    }
}
