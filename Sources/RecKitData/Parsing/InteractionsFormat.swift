/// User–item interactions: MovieLens `u.data` (TAB: user, item, rating, timestamp), `ratings.csv`
/// (header `userId,movieId,rating,timestamp`), or generic `user,item[,rating][,timestamp]` with or without a
/// header. The separator (TAB or comma) and header come from each file's first line. Label = rating (1 when
/// absent); categorical features `user` and `item` (decimal ids, or FNV-1a of non-numeric tokens); timestamps
/// kept as an Int64 column.
public struct InteractionsFormat: RowFormat {
    public let name = "interactions"
    public let hasLabel = true
    public let denseNames: [String] = []
    public let categoricalNames = ["user", "item"]
    public let multiHotName: String? = nil
    public let hasTimestamps = true
    public let rawIDs = "decimal-or-fnv1a64"
    private var separator: UInt8 = 9

    public init() {}

    /// The raw 64-bit id of a user or item token: a non-negative decimal of up to 18 digits as is, anything else
    /// FNV-1a-64 of its bytes with the top bit set (so hashed and decimal ids never collide). Every reader of
    /// interactions (this format, RecKitCF's text reader) uses this one rule, so text and shards agree on ids.
    @inline(__always) public static func rawID(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        if let v = FieldParsing.int64(p, n), v >= 0 { return UInt64(v) }
        return FieldParsing.fnv1a(p, n) | (1 << 63)
    }

    public mutating func header(_ line: UnsafeBufferPointer<UInt8>, file: String) throws(DataError) -> Bool {
        separator = line.contains(9) ? 9 : UInt8(ascii: ",")
        guard let first = line.first else { return false }
        return !(first >= 48 && first <= 57)  // a header starts with a letter (userId, user, ...)
    }

    public mutating func parse(_ line: UnsafeBufferPointer<UInt8>, into row: inout RawRow) throws(FieldIssue) {
        if row.categorical.count != 2 { row.categorical = [0, 0] }
        guard let base = line.baseAddress, !line.isEmpty else { throw FieldIssue(column: 1, reason: "empty line") }
        row.label = 1
        row.timestamp = 0
        let count = try splitFields(line, separator) { (i, start, len) throws(FieldIssue) in
            let p = base + start
            switch i {
            case 0, 1:
                guard len > 0 else { throw FieldIssue(column: start + 1, reason: "\(i == 0 ? "user" : "item") is empty") }
                row.categorical[i] = Self.rawID(p, len)
            case 2:
                guard let r = FieldParsing.float(p, len) else {
                    throw FieldIssue(column: start + 1, reason: "rating '\(CriteoFormat.show(p, len))' is not a number")
                }
                row.label = r
            case 3:
                guard let t = FieldParsing.int64(p, len) else {
                    throw FieldIssue(column: start + 1, reason: "timestamp '\(CriteoFormat.show(p, len))' is not an integer")
                }
                row.timestamp = t
            default:
                throw FieldIssue(column: start + 1, reason: "more than 4 columns")
            }
        }
        guard count >= 2 else { throw FieldIssue(column: 1, reason: "expected user and item, found \(count) column") }
    }
}
