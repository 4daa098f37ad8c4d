/// Criteo Kaggle TSV. Train files: label, I1–I13 (integers, may be negative, empty = missing), C1–C26
/// (8-digit hex, empty = missing): 40 columns. Test files: the same without the label: 39 columns. Which one a
/// dataset is comes from its first data line; every later row must match.
public struct CriteoFormat: RowFormat {
    public let name = "criteo"
    public private(set) var hasLabel = true
    public let denseNames = (1...13).map { "I\($0)" }
    public let categoricalNames = (1...26).map { "C\($0)" }
    public let multiHotName: String? = nil
    public let hasTimestamps = false
    public let rawIDs = "hex"
    private var decided = false

    public init() {}

    public mutating func header(_ line: UnsafeBufferPointer<UInt8>, file: String) throws(DataError) -> Bool {
        if !decided {
            var tabs = 0
            for c in line where c == 9 { tabs += 1 }
            if tabs == 38 { hasLabel = false }
            decided = tabs == 38 || tabs == 39
        }
        return false
    }

    /// One pass over the bytes: each field is parsed while scanning for its tab (no split, no per-field calls).
    public mutating func parse(_ line: UnsafeBufferPointer<UInt8>, into row: inout RawRow) throws(FieldIssue) {
        if row.dense.count != 13 { row.dense = Array(repeating: nil, count: 13) }
        if row.categorical.count != 26 { row.categorical = Array(repeating: 0, count: 26) }
        guard let base = line.baseAddress, !line.isEmpty else { throw FieldIssue(column: 1, reason: "empty line") }
        let end = base + line.count
        var p = base
        let expected = hasLabel ? 40 : 39
        func columns() -> Int { 1 + line.reduce(0) { $0 + ($1 == 9 ? 1 : 0) } }
        if hasLabel {
            guard p < end, p[0] == 48 || p[0] == 49, p + 1 == end || p[1] == 9 else {
                var q = p
                while q < end && q[0] != 9 { q += 1 }
                if q == end && columns() != expected { throw FieldIssue(column: 1, reason: "expected \(expected) tab-separated columns, found \(columns())") }
                throw FieldIssue(column: 1, reason: "label must be 0 or 1, got '\(Self.show(p, q - p))'")
            }
            row.label = p[0] == 49 ? 1 : 0
            p += 1
            guard p < end else { throw FieldIssue(column: 1, reason: "expected \(expected) tab-separated columns, found 1") }
            p += 1  // the tab
        }
        try row.dense.withUnsafeMutableBufferPointer { (dense) throws(FieldIssue) in
            for j in 0..<13 {
                let start = p
                var neg = false
                if p < end && (p[0] == 45 || p[0] == 43) { neg = p[0] == 45; p += 1 }
                let digitsStart = p
                var v: Int64 = 0
                while p < end {
                    let d = p[0] &- 48
                    if d > 9 { break }
                    v = v &* 10 &+ Int64(d)
                    p += 1
                }
                let digits = p - digitsStart
                let atSeparator = p == end || p[0] == 9
                if digits == 0 && p == start && atSeparator {
                    dense[j] = nil  // empty field: missing
                } else {
                    guard atSeparator, digits > 0, digits <= 18 else {
                        throw try Self.fieldError(start, end, line, expected, "I\(j + 1) is not an integer", columns)
                    }
                    dense[j] = neg ? -v : v
                }
                guard p < end else { throw FieldIssue(column: 1, reason: "expected \(expected) tab-separated columns, found \(columns())") }
                p += 1
            }
        }
        let hexTable = Self.hexValue  // one lazy-global check per line, not per byte
        try hexTable.withUnsafeBufferPointer { (hexValue) throws(FieldIssue) in
          try row.categorical.withUnsafeMutableBufferPointer { (cats) throws(FieldIssue) in
            for j in 0..<26 {
                let start = p
                var v: UInt64 = 0
                while p < end {
                    let d = hexValue[Int(p[0])]
                    if d > 15 { break }
                    v = (v << 4) | UInt64(d)
                    p += 1
                }
                let n = p - start
                guard (p == end || p[0] == 9), n <= 16 else {
                    throw try Self.fieldError(start, end, line, expected, "C\(j + 1) is not hexadecimal", columns)
                }
                cats[j] = n == 0 ? 0 : v
                if j < 25 {
                    guard p < end else { throw FieldIssue(column: 1, reason: "expected \(expected) tab-separated columns, found \(columns())") }
                    p += 1
                }
            }
          }
        }
        guard p == end else { throw FieldIssue(column: 1, reason: "expected \(expected) tab-separated columns, found \(columns())") }
    }

    /// A bad field: column-count problems win (they explain the field), else the field's own reason.
    static func fieldError(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, _ line: UnsafeBufferPointer<UInt8>,
                           _ expected: Int, _ what: String, _ columns: () -> Int) throws(FieldIssue) -> FieldIssue {
        let found = columns()
        if found != expected { return FieldIssue(column: 1, reason: "expected \(expected) tab-separated columns, found \(found)") }
        var q = start
        while q < end && q[0] != 9 { q += 1 }
        return FieldIssue(column: start - line.baseAddress! + 1, reason: "\(what): '\(show(start, q - start))'")
    }

    /// Hex digit values; 255 for every other byte.
    static let hexValue: [UInt8] = (0..<256).map { c in
        switch c {
        case 48...57: return UInt8(c - 48)
        case 97...102: return UInt8(c - 87)
        case 65...70: return UInt8(c - 55)
        default: return 255
        }
    }

    static func show(_ p: UnsafePointer<UInt8>, _ n: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: p, count: min(n, 24)), as: UTF8.self) + (n > 24 ? "…" : "")
    }
}
