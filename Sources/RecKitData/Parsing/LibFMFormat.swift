/// libFM / libSVM: `label index:value index:value ...` separated by spaces (CRLF tolerated). Labels 1/-1 or
/// 1/0 (-1 becomes 0). Two layouts, chosen by a first pass over the data (`LibFMLayout.scan`):
/// - every row has the same number K of entries and every value is 1 (Frappe: K = 10): entry k is one-hot
///   categorical field k, so field-aware models work;
/// - otherwise one multi-hot feature `features` whose per-id weights are the values.
public struct LibFMFormat: RowFormat {
    public let name = "libfm"
    public let hasLabel = true
    public let denseNames: [String] = []
    public let categoricalNames: [String]
    public let multiHotName: String?
    public let hasTimestamps = false
    public let rawIDs = "decimal"
    let fixedFields: Int?

    /// - Parameter fixedFields: K when every row has K entries with value 1, else nil.
    public init(fixedFields: Int?) {
        self.fixedFields = fixedFields
        categoricalNames = fixedFields.map { k in (1...max(k, 1)).map { "field\($0)" } } ?? []
        multiHotName = fixedFields == nil ? "features" : nil
    }

    public mutating func header(_ line: UnsafeBufferPointer<UInt8>, file: String) throws(DataError) -> Bool { false }

    public mutating func parse(_ line: UnsafeBufferPointer<UInt8>, into row: inout RawRow) throws(FieldIssue) {
        guard let base = line.baseAddress, !line.isEmpty else { throw FieldIssue(column: 1, reason: "empty line") }
        row.multi.removeAll(keepingCapacity: true)
        if let k = fixedFields, row.categorical.count != k { row.categorical = Array(repeating: 0, count: k) }
        var entries = 0
        _ = try splitFields(line, UInt8(ascii: " ")) { (i, start, len) throws(FieldIssue) in
            let p = base + start
            if i == 0 {
                row.label = try Self.label(p, len, column: start + 1)
                return
            }
            if len == 0 { return }  // repeated or trailing spaces
            guard let colon = (0..<len).first(where: { p[$0] == UInt8(ascii: ":") }) else {
                throw FieldIssue(column: start + 1, reason: "entry '\(CriteoFormat.show(p, len))' is not index:value")
            }
            guard colon > 0, p[0] &- 48 <= 9, let index = FieldParsing.int64(p, colon) else {
                throw FieldIssue(column: start + 1, reason: "feature index '\(CriteoFormat.show(p, colon))' is not a non-negative integer")
            }
            guard let value = FieldParsing.float(p + colon + 1, len - colon - 1) else {
                throw FieldIssue(column: start + colon + 2, reason: "value '\(CriteoFormat.show(p + colon + 1, len - colon - 1))' is not a finite number")
            }
            if let k = fixedFields {
                guard entries < k else { throw FieldIssue(column: start + 1, reason: "more than \(k) entries") }
                guard value == 1 else { throw FieldIssue(column: start + colon + 2, reason: "value \(value) in a one-hot layout (expected 1)") }
                row.categorical[entries] = UInt64(index)
            } else {
                row.multi.append((UInt64(index), value))
            }
            entries += 1
        }
        if let k = fixedFields, entries != k {
            throw FieldIssue(column: 1, reason: "expected \(k) entries, found \(entries)")
        }
    }

    static func label(_ p: UnsafePointer<UInt8>, _ n: Int, column: Int) throws(FieldIssue) -> Float {
        guard let v = FieldParsing.float(p, n), v == 1 || v == 0 || v == -1 else {
            throw FieldIssue(column: column, reason: "label must be 1, 0 or -1, got '\(CriteoFormat.show(p, n))'")
        }
        return v == 1 ? 1 : 0
    }
}

/// The first pass over libFM files: do all rows have the same number of entries, all with value 1?
public enum LibFMLayout {
    public static func scan(_ paths: [String], maxLineBytes: Int) throws(DataError) -> Int? {
        var fixed: Int? = nil
        var uniform = true
        for path in paths {
            let reader = LineReader(path: path, maxLineBytes: maxLineBytes)
            try reader.forEachLine { (line, _, status) throws(DataError) in
                if status == .tooLong || line.isEmpty { return true }
                var entries = 0
                var allOnes = true
                var i = 0
                var tokenStart = 0
                var first = true
                let n = line.count
                while i <= n {
                    if i == n || line[i] == UInt8(ascii: " ") {
                        if i > tokenStart {
                            if first { first = false } else {
                                entries += 1
                                // value must be exactly "1" for the one-hot layout
                                if let c = (tokenStart..<i).first(where: { line[$0] == UInt8(ascii: ":") }) {
                                    if !(i - c == 2 && line[c + 1] == UInt8(ascii: "1")) { allOnes = false }
                                }
                            }
                        }
                        tokenStart = i + 1
                    }
                    i += 1
                }
                if !allOnes { uniform = false; return false }
                if let f = fixed, f != entries { uniform = false; return false }
                fixed = entries
                return true
            }
            if !uniform { return nil }
        }
        return uniform && (fixed ?? 0) > 0 ? fixed : nil  // rows without entries: multi-hot layout
    }
}
