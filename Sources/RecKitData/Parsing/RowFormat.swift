/// A text input format: how a line becomes a `RawRow`, and what columns the rows have.
public protocol RowFormat: Sendable {
    /// "criteo", "avazu", "libfm", "interactions".
    var name: String { get }
    var hasLabel: Bool { get }
    var denseNames: [String] { get }
    /// One-hot categorical features (one raw key each per row).
    var categoricalNames: [String] { get }
    /// The single multi-hot, weighted feature, if the format has one.
    var multiHotName: String? { get }
    var hasTimestamps: Bool { get }
    /// How raw keys were made: "hex", "fnv1a64", "decimal".
    var rawIDs: String { get }
    /// Sees the first line of every file; returns true if it was a header (then not parsed as data).
    mutating func header(_ line: UnsafeBufferPointer<UInt8>, file: String) throws(DataError) -> Bool
    /// Parses one data line.
    mutating func parse(_ line: UnsafeBufferPointer<UInt8>, into row: inout RawRow) throws(FieldIssue)
}

/// The input formats `reckit data convert` reads.
public enum InputFormat: String, Sendable, CaseIterable, Codable {
    case criteo, avazu, libfm, interactions
}

/// Splits a line at `separator`, calling `field(index, start, length)`; returns the number of fields.
@inline(__always)
func splitFields(_ line: UnsafeBufferPointer<UInt8>, _ separator: UInt8,
                 _ field: (Int, Int, Int) throws(FieldIssue) -> Void) throws(FieldIssue) -> Int {
    var index = 0, start = 0
    let n = line.count
    guard let base = line.baseAddress else { try field(0, 0, 0); return 1 }
    var i = 0
    while i < n {
        if base[i] == separator {
            try field(index, start, i - start)
            index += 1
            start = i + 1
        }
        i += 1
    }
    try field(index, start, n - start)
    return index + 1
}
