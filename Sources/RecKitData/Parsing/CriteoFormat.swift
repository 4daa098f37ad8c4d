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

    public mutating func parse(_ line: UnsafeBufferPointer<UInt8>, into row: inout RawRow) throws(FieldIssue) {
        let expected = hasLabel ? 40 : 39
        let first = hasLabel ? 1 : 0
        if row.dense.count != 13 { row.dense = Array(repeating: nil, count: 13) }
        if row.categorical.count != 26 { row.categorical = Array(repeating: 0, count: 26) }
        guard let base = line.baseAddress, !line.isEmpty else { throw FieldIssue(column: 1, reason: "empty line") }
        var sawLabel = !hasLabel
        let count = try splitFields(line, 9) { (i, start, len) throws(FieldIssue) in
            if i >= expected { return }
            let p = base + start
            if hasLabel && i == 0 {
                guard len == 1, p[0] == 48 || p[0] == 49 else {
                    throw FieldIssue(column: start + 1, reason: "label must be 0 or 1, got '\(Self.show(p, len))'")
                }
                row.label = p[0] == 49 ? 1 : 0
                sawLabel = true
            } else if i < first + 13 {
                if len == 0 { row.dense[i - first] = nil; return }
                guard let v = FieldParsing.int64(p, len) else {
                    throw FieldIssue(column: start + 1, reason: "I\(i - first + 1) is not an integer: '\(Self.show(p, len))'")
                }
                row.dense[i - first] = v
            } else {
                if len == 0 { row.categorical[i - first - 13] = 0; return }
                guard let v = FieldParsing.hex(p, len) else {
                    throw FieldIssue(column: start + 1, reason: "C\(i - first - 12) is not hexadecimal: '\(Self.show(p, len))'")
                }
                row.categorical[i - first - 13] = v
            }
        }
        guard count == expected, sawLabel else {
            throw FieldIssue(column: 1, reason: "expected \(expected) tab-separated columns, found \(count)")
        }
    }

    static func show(_ p: UnsafePointer<UInt8>, _ n: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: p, count: min(n, 24)), as: UTF8.self) + (n > 24 ? "…" : "")
    }
}
