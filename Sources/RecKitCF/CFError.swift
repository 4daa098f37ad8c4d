/// Errors of the collaborative-filtering module; each names the file (and line/column for rows) it is about.
public enum CFError: Error, Sendable, CustomStringConvertible {
    /// A malformed interaction row (under the `fail` policy). Line and column are 1-based.
    case malformedRow(file: String, line: Int, column: Int, reason: String)
    /// A file could not be read or written.
    case io(path: String, reason: String)
    /// The input has no usable interactions.
    case emptyInput(path: String, reason: String)
    /// A model file that is not a RecKit CF model, or is damaged (checksum, truncation).
    case badModel(path: String, reason: String)
    /// Options that cannot work together (hint in the text).
    case invalidOptions(String)
    /// A dense factorization failed (e.g. the Gram matrix is not positive definite: raise λ).
    case numerical(String)
    /// The fit would need more memory than allowed; the text names the matrix and the bytes.
    case tooLarge(String)
    /// OpenBLAS/LAPACK is missing a routine the model needs.
    case linearAlgebraUnavailable(String)

    public var description: String {
        switch self {
        case let .malformedRow(file, line, column, reason): return "\(file):\(line):\(column): \(reason)"
        case let .io(path, reason): return "\(path): \(reason)"
        case let .emptyInput(path, reason): return "\(path): \(reason)"
        case let .badModel(path, reason): return "\(path): not a valid RecKit CF model: \(reason)"
        case .invalidOptions(let s): return s
        case .numerical(let s): return "numerical failure: \(s)"
        case .tooLarge(let s): return s
        case .linearAlgebraUnavailable(let s): return "\(s) (install Debian's libopenblas0-pthread: scripts/bootstrap.sh)"
        }
    }
}

/// What to do with a malformed interaction row.
public enum MalformedRowPolicy: String, Sendable, CaseIterable {
    /// Stop with `CFError.malformedRow`.
    case fail
    /// Skip the row and count it.
    case skip
}
