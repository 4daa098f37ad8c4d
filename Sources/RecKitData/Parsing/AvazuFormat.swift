/// Avazu CSV with header `id,click,hour,C1,banner_pos,site_id,...,C21` (24 columns). Label: `click`. Features:
/// every other column except `id`, as categoricals (raw keys = FNV-1a of the text), plus `hour_of_day`
/// derived from `hour` (YYMMDDHH) — the usual CTR preprocessing.
public struct AvazuFormat: RowFormat {
    public let name = "avazu"
    public let hasLabel = true
    public let denseNames: [String] = []
    public private(set) var categoricalNames: [String] = []
    public let multiHotName: String? = nil
    public let hasTimestamps = false
    public let rawIDs = "fnv1a64"
    private var columns: [String] = []
    private var clickIndex = -1, idIndex = -1, hourIndex = -1

    public init() {}

    public mutating func header(_ line: UnsafeBufferPointer<UInt8>, file: String) throws(DataError) -> Bool {
        let names = String(decoding: line, as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let click = names.firstIndex(of: "click") else {
            throw .emptyInput(path: file, reason: "Avazu CSV needs a header with a 'click' column; first line is '\(names.prefix(4).joined(separator: ","))…'")
        }
        if columns.isEmpty {
            columns = names
            clickIndex = click
            idIndex = names.firstIndex(of: "id") ?? -1
            hourIndex = names.firstIndex(of: "hour") ?? -1
            categoricalNames = names.enumerated().filter { $0.offset != clickIndex && $0.offset != idIndex }.map(\.element)
            if hourIndex >= 0 { categoricalNames.append("hour_of_day") }
        } else if names != columns {
            throw .emptyInput(path: file, reason: "header differs from the first file's")
        }
        return true
    }

    public mutating func parse(_ line: UnsafeBufferPointer<UInt8>, into row: inout RawRow) throws(FieldIssue) {
        if row.categorical.count != categoricalNames.count { row.categorical = Array(repeating: 0, count: categoricalNames.count) }
        guard let base = line.baseAddress, !line.isEmpty else { throw FieldIssue(column: 1, reason: "empty line") }
        var k = 0
        let count = try splitFields(line, UInt8(ascii: ",")) { (i, start, len) throws(FieldIssue) in
            if i >= columns.count { return }
            let p = base + start
            if i == clickIndex {
                guard len == 1, p[0] == 48 || p[0] == 49 else {
                    throw FieldIssue(column: start + 1, reason: "click must be 0 or 1, got '\(CriteoFormat.show(p, len))'")
                }
                row.label = p[0] == 49 ? 1 : 0
                return
            }
            if i == idIndex { return }
            if i == hourIndex {
                guard len == 8, let h = FieldParsing.int64(p, len), h >= 0 else {
                    throw FieldIssue(column: start + 1, reason: "hour must be YYMMDDHH, got '\(CriteoFormat.show(p, len))'")
                }
                row.categorical[categoricalNames.count - 1] = UInt64(h % 100) &+ 1
            }
            row.categorical[k] = len == 0 ? 0 : FieldParsing.fnv1a(p, len)
            k += 1
        }
        guard count == columns.count else {
            throw FieldIssue(column: 1, reason: "expected \(columns.count) comma-separated columns, found \(count)")
        }
    }
}
