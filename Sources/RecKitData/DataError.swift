/// Where a bad input row is and what is wrong with it.
public struct RowIssue: Error, Equatable, Sendable, Codable, CustomStringConvertible {
    public var file: String
    /// 1-based line number.
    public var line: Int
    /// 1-based byte column of the offending field, when known.
    public var column: Int?
    public var reason: String

    public init(file: String, line: Int, column: Int?, reason: String) {
        self.file = file; self.line = line; self.column = column; self.reason = reason
    }

    public var description: String { "\(file):\(line)\(column.map { ":\($0)" } ?? ""): \(reason)" }
}

/// Errors of the data module; each names the file and, for rows, the line and column.
public enum DataError: Error, Sendable, CustomStringConvertible {
    /// A malformed row under the `fail` policy.
    case malformedRow(RowIssue)
    /// The file could not be opened, read or written.
    case io(path: String, reason: String)
    /// A shard or manifest is not a valid RecKit shard (wrong magic, version, checksum, truncated...).
    case badShard(path: String, reason: String)
    /// The input has no usable rows or no header where one is required.
    case emptyInput(path: String, reason: String)
    /// Options that cannot work together.
    case invalidOptions(String)

    public var description: String {
        switch self {
        case .malformedRow(let issue): return "malformed row at \(issue)"
        case let .io(path, reason): return "\(path): \(reason)"
        case let .badShard(path, reason): return "\(path): not a valid RecKit shard: \(reason)"
        case let .emptyInput(path, reason): return "\(path): \(reason)"
        case .invalidOptions(let s): return s
        }
    }
}

/// What to do with a malformed row.
public enum ErrorPolicy: String, Sendable, CaseIterable, Codable {
    /// Count it, remember the first 10, continue.
    case skip
    /// Stop at the first with file:line:column.
    case fail
}
