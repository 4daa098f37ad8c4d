/// One shard's rows, column by column — what converters fill and readers return.
///
/// Shapes (R rows): `labels` R (empty without labels), `dense` R × denseCount row-major, per sparse feature f:
/// `ids[f]` N_f (64-bit), `lengths[f]` R (only for multi-hot features; one-hot features have exactly one id per row),
/// `weights[f]` N_f or empty, `timestamps` R or empty.
public struct ShardColumns: Sendable, Equatable {
    public var denseCount: Int
    public var labels: [Float] = []
    public var dense: [Float] = []
    public var ids: [[Int64]]
    public var lengths: [[Int32]]
    public var weights: [[Float]]
    public var timestamps: [Int64] = []
    public private(set) var rowCount = 0

    public init(denseCount: Int, sparseCount: Int) {
        self.denseCount = denseCount
        ids = Array(repeating: [], count: sparseCount)
        lengths = Array(repeating: [], count: sparseCount)
        weights = Array(repeating: [], count: sparseCount)
    }

    public var sparseCount: Int { ids.count }

    /// Marks one more complete row (callers append each column's values first).
    public mutating func commitRow() { rowCount += 1 }

    public mutating func removeAll(keepingCapacity: Bool = true) {
        labels.removeAll(keepingCapacity: keepingCapacity)
        dense.removeAll(keepingCapacity: keepingCapacity)
        timestamps.removeAll(keepingCapacity: keepingCapacity)
        for f in 0..<ids.count {
            ids[f].removeAll(keepingCapacity: keepingCapacity)
            lengths[f].removeAll(keepingCapacity: keepingCapacity)
            weights[f].removeAll(keepingCapacity: keepingCapacity)
        }
        rowCount = 0
    }

    /// Offsets (R + 1) of sparse feature f: from its lengths, or 0, 1, 2, ... for one-hot features.
    public func offsets(feature f: Int) -> [Int32] {
        if lengths[f].isEmpty { return (0...rowCount).map { Int32($0) } }
        var o = [Int32](repeating: 0, count: rowCount + 1)
        for r in 0..<rowCount { o[r + 1] = o[r] + lengths[f][r] }
        return o
    }

    /// Appends rows `range` of `other` (same layout).
    public mutating func append(_ other: ShardColumns, rows range: Range<Int>) {
        if range.isEmpty { return }
        if !other.labels.isEmpty { labels += other.labels[range] }
        if denseCount > 0 { dense += other.dense[(range.lowerBound * denseCount)..<(range.upperBound * denseCount)] }
        if !other.timestamps.isEmpty { timestamps += other.timestamps[range] }
        for f in 0..<ids.count {
            if other.lengths[f].isEmpty {
                ids[f] += other.ids[f][range]
            } else {
                var start = 0
                for r in 0..<range.lowerBound { start += Int(other.lengths[f][r]) }
                var end = start
                for r in range { end += Int(other.lengths[f][r]) }
                lengths[f] += other.lengths[f][range]
                ids[f] += other.ids[f][start..<end]
                if !other.weights[f].isEmpty { weights[f] += other.weights[f][start..<end] }
            }
        }
        rowCount += range.count
    }

    /// Sets the row count directly (readers that fill whole columns at once).
    mutating func setRowCount(_ n: Int) { rowCount = n }
}
