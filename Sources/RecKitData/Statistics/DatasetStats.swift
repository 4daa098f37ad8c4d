import Foundation

/// Per-feature access statistics of a shard dataset: what the sharding planner and caches need.
public struct FeatureStats: Codable, Sendable {
    public struct Top: Codable, Sendable { public var id: Int64; public var count: Int }
    public struct CDFPoint: Codable, Sendable {
        /// Fraction of the table's rows (the hottest ones).
        public var rows: Double
        /// Fraction of all lookups they receive.
        public var accesses: Double
    }

    public var name: String
    public var cardinality: Int
    public var lookups: Int
    /// Distinct ids seen.
    public var idsSeen: Int
    /// idsSeen / cardinality.
    public var coverage: Double
    public var top: [Top]
    public var cdf: [CDFPoint]
    /// Mean over consecutive batches of B rows of (lookups in batch / distinct ids in batch).
    public var inBatchDuplication: Double

    enum CodingKeys: String, CodingKey {
        case name, cardinality, lookups, coverage, top, cdf
        case idsSeen = "ids_seen"
        case inBatchDuplication = "in_batch_duplication"
    }
}

/// The JSON of `reckit data stats --json`.
public struct DatasetStats: Codable, Sendable {
    public var rows: Int
    public var batchSize: Int
    public var positiveRate: Double?
    public var features: [FeatureStats]

    enum CodingKeys: String, CodingKey {
        case rows, features
        case batchSize = "batch_size"
        case positiveRate = "positive_rate"
    }

    /// One pass over every shard (one shard in memory at a time, plus one count table per feature).
    public static func compute(_ ds: ShardDataset, batchSize: Int, topK: Int = 10) throws(DataError) -> DatasetStats {
        let schema = ds.schema
        let fc = schema.sparse.count
        var counts = Array(repeating: [Int64: Int](), count: fc)
        var lookups = Array(repeating: 0, count: fc)
        var dupSum = Array(repeating: 0.0, count: fc), dupBatches = 0
        var batchSets = Array(repeating: Set<Int64>(), count: fc)
        var batchLookups = Array(repeating: 0, count: fc)
        var rowsInBatch = 0, rows = 0
        var positives = 0.0
        func closeBatch() {
            guard rowsInBatch > 0 else { return }
            for f in 0..<fc where !batchSets[f].isEmpty {
                dupSum[f] += Double(batchLookups[f]) / Double(batchSets[f].count)
                batchSets[f].removeAll(keepingCapacity: true)
                batchLookups[f] = 0
            }
            dupBatches += 1
            rowsInBatch = 0
        }
        for s in 0..<ds.manifest.shards.count {
            let c = try ds.shard(s)
            positives += Double(c.labels.reduce(0, +))
            let offsets = (0..<fc).map { c.offsets(feature: $0) }
            for r in 0..<c.rowCount {
                for f in 0..<fc {
                    for p in Int(offsets[f][r])..<Int(offsets[f][r + 1]) {
                        let id = c.ids[f][p]
                        counts[f][id, default: 0] += 1
                        batchSets[f].insert(id)
                    }
                    let n = Int(offsets[f][r + 1] - offsets[f][r])
                    lookups[f] += n
                    batchLookups[f] += n
                }
                rows += 1
                rowsInBatch += 1
                if rowsInBatch == batchSize { closeBatch() }
            }
        }
        closeBatch()
        let features = (0..<fc).map { f -> FeatureStats in
            let sorted = counts[f].sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            let card = schema.sparse[f].cardinality
            var cdf: [FeatureStats.CDFPoint] = []
            for frac in [0.0001, 0.001, 0.01, 0.1, 1.0] {
                let k = min(sorted.count, max(1, Int((Double(card) * frac).rounded(.up))))
                let covered = sorted.prefix(k).reduce(0) { $0 + $1.value }
                cdf.append(.init(rows: frac, accesses: lookups[f] == 0 ? 0 : Double(covered) / Double(lookups[f])))
            }
            return FeatureStats(name: schema.sparse[f].name, cardinality: card, lookups: lookups[f], idsSeen: counts[f].count,
                                coverage: Double(counts[f].count) / Double(max(card, 1)),
                                top: sorted.prefix(topK).map { .init(id: $0.key, count: $0.value) }, cdf: cdf,
                                inBatchDuplication: dupBatches == 0 ? 1 : dupSum[f] / Double(dupBatches))
        }
        return DatasetStats(rows: rows, batchSize: batchSize, positiveRate: schema.hasLabel ? positives / Double(max(rows, 1)) : nil,
                            features: features)
    }
}
