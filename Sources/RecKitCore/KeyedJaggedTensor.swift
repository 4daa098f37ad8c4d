/// Sparse features of a batch, TorchRec's KeyedJaggedTensor: for each key (feature) f, the 64-bit ids of all B
/// samples concatenated (`values[f]`, N_f) with `offsets[f]` (B + 1): sample b's ids are `values[f][offsets[f][b]
/// ..< offsets[f][b + 1]]`, optionally weighted (`weights[f]`, N_f, or empty).
///
/// Features are found by key (`index(of:)`), never by position: a model asks for "C1", "user", "item".
/// Ids are `Int64` end to end, so a table may pass 2³¹ rows; offsets stay `Int32` (they count ids of one batch).
public struct KeyedJaggedTensor: Sendable, Equatable {
    public var keys: [String]
    public var values: [[Int64]]
    public var offsets: [[Int32]]
    public var weights: [[Float]]

    public init(keys: [String], values: [[Int64]], offsets: [[Int32]], weights: [[Float]]) {
        self.keys = keys; self.values = values; self.offsets = offsets; self.weights = weights
    }

    /// One id per sample for every key (one-hot features): offsets 0, 1, …, B.
    public init(keys: [String], oneHot values: [[Int64]]) {
        let b = values.first?.count ?? 0
        let offsets = (0...b).map { Int32(truncatingIfNeeded: $0) }
        self.init(keys: keys, values: values, offsets: values.map { _ in offsets }, weights: values.map { _ in [] })
    }

    /// B (0 for a tensor without keys).
    public var batchSize: Int { max((offsets.first?.count ?? 1) - 1, 0) }

    /// The position of `key` in `keys`, or nil.
    public func index(of key: String) -> Int? { keys.firstIndex(of: key) }

    /// The ids of sample `b` for feature `f`.
    public func ids(feature f: Int, sample b: Int) -> ArraySlice<Int64> {
        values[f][Int(offsets[f][b])..<Int(offsets[f][b + 1])]
    }

    /// Checks the jagged structure once, so no public entry point can read out of bounds: as many value, offset and
    /// weight lists as keys; every key's offsets are B + 1 long (the same B), start at 0, never decrease, and end at
    /// its value count; weights are empty or one per value; keys are distinct.
    public func validate() throws(ShapeError) {
        guard values.count == keys.count, offsets.count == keys.count, weights.count == keys.count else {
            throw ShapeError("keyed jagged tensor: \(keys.count) keys but \(values.count) value lists, \(offsets.count) offset lists, \(weights.count) weight lists")
        }
        guard Set(keys).count == keys.count else { throw ShapeError("keyed jagged tensor: duplicate keys in \(keys)") }
        let b = batchSize
        for f in 0..<keys.count {
            let count = offsets[f].count
            guard count == b + 1 else { throw ShapeError("feature \(keys[f]): \(count) offsets, expected B + 1 = \(b + 1)") }
            // One pass over the offsets without bounds checks: the first offset is 0, none decreases.
            let bad: Int? = offsets[f].withUnsafeBufferPointer { o in
                if o[0] != 0 { return 0 }
                var i = 1
                while i <= b {
                    if o[i] < o[i - 1] { return i }
                    i += 1
                }
                return nil
            }
            if let i = bad {
                throw ShapeError(i == 0 ? "feature \(keys[f]): offsets[0] = \(offsets[f][0]), expected 0"
                                        : "feature \(keys[f]): offsets decrease at sample \(i - 1) (\(offsets[f][i - 1]) → \(offsets[f][i]))")
            }
            guard Int(offsets[f][b]) == values[f].count else {
                throw ShapeError("feature \(keys[f]): last offset \(offsets[f][b]) ≠ \(values[f].count) ids")
            }
            guard weights[f].isEmpty || weights[f].count == values[f].count else {
                throw ShapeError("feature \(keys[f]): \(weights[f].count) weights for \(values[f].count) ids")
            }
        }
    }
}

/// A tensor's shape or structure does not match what the caller promised (a public API's input check).
public struct ShapeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// RecD's inverse-keyed jagged tensor for one feature: the distinct bags of a batch plus, per sample, which
/// distinct bag it has. Embedding lookups then run on the U distinct bags only and results are gathered with
/// `inverse`.
public struct DedupedFeature: Sendable, Equatable {
    /// Distinct bags' ids, concatenated (U bags).
    public var uniqueValues: [Int64]
    /// U + 1 offsets into `uniqueValues`.
    public var uniqueOffsets: [Int32]
    /// Per-id weights of the distinct bags (empty for unweighted features).
    public var uniqueWeights: [Float]
    /// Per sample (B): index of its bag among the U distinct bags.
    public var inverse: [Int32]

    public init(uniqueValues: [Int64], uniqueOffsets: [Int32], uniqueWeights: [Float] = [], inverse: [Int32]) {
        self.uniqueValues = uniqueValues; self.uniqueOffsets = uniqueOffsets; self.uniqueWeights = uniqueWeights
        self.inverse = inverse
    }

    /// U.
    public var uniqueCount: Int { uniqueOffsets.count - 1 }

    /// B / U: how many samples share each distinct bag on average (1 = no duplication).
    public var dedupFactor: Double { Double(inverse.count) / Double(max(uniqueCount, 1)) }

    /// Deduplicates feature `f` of `kjt`: two samples share a distinct bag when their id lists (and weights, for a
    /// weighted feature) are equal. Distinct bags are numbered in first-seen order.
    ///
    /// One-hot features (every bag one id, the common case) go through an open-addressing map of ids; other
    /// features hash whole bags. O(N_f) either way.
    public static func dedup(_ kjt: KeyedJaggedTensor, feature f: Int) -> DedupedFeature {
        let b = kjt.batchSize
        let values = kjt.values[f], offsets = kjt.offsets[f], weights = kjt.weights[f]
        if weights.isEmpty && values.count == b && (b == 0 || offsets[b] == Int32(b)) {
            return dedupOneHot(values)
        }
        struct BagKey: Hashable {
            var ids: ArraySlice<Int64>
            var weightBits: [UInt32]
        }
        var seen: [BagKey: Int32] = [:]
        var uniqueValues: [Int64] = [], uniqueOffsets: [Int32] = [0], uniqueWeights: [Float] = [], inverse: [Int32] = []
        inverse.reserveCapacity(b)
        for s in 0..<b {
            let range = Int(offsets[s])..<Int(offsets[s + 1])
            let key = BagKey(ids: values[range], weightBits: weights.isEmpty ? [] : weights[range].map(\.bitPattern))
            if let u = seen[key] {
                inverse.append(u)
            } else {
                let u = Int32(truncatingIfNeeded: uniqueOffsets.count - 1)
                seen[key] = u
                uniqueValues += values[range]
                if !weights.isEmpty { uniqueWeights += weights[range] }
                uniqueOffsets.append(Int32(truncatingIfNeeded: uniqueValues.count))
                inverse.append(u)
            }
        }
        return DedupedFeature(uniqueValues: uniqueValues, uniqueOffsets: uniqueOffsets, uniqueWeights: uniqueWeights,
                              inverse: inverse)
    }

    /// One id per sample: distinct ids in first-seen order.
    static func dedupOneHot(_ values: [Int64]) -> DedupedFeature {
        let b = values.count
        var capacity = 16
        while capacity < 2 * max(b, 1) { capacity <<= 1 }
        let mask = capacity - 1
        var keys = [Int64](repeating: 0, count: capacity)
        var slots = [Int32](repeating: -1, count: capacity)
        var unique: [Int64] = []
        unique.reserveCapacity(b)
        var inverse = [Int32](repeating: 0, count: b)
        for s in 0..<b {
            let id = values[s]
            var h = Int(truncatingIfNeeded: (UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
            while slots[h] >= 0 && keys[h] != id { h = (h + 1) & mask }
            if slots[h] < 0 {
                keys[h] = id
                slots[h] = Int32(truncatingIfNeeded: unique.count)
                unique.append(id)
            }
            inverse[s] = slots[h]
        }
        return DedupedFeature(uniqueValues: unique, uniqueOffsets: (0...unique.count).map { Int32(truncatingIfNeeded: $0) },
                              inverse: inverse)
    }
}

/// One batch of samples: labels (B, empty when the data has none), dense features (B × dense, row-major), sparse
/// features as a KeyedJaggedTensor, and — in dedup mode — RecD's per-feature distinct bags with inverse indices
/// (`deduped[f]` belongs to `sparse.keys[f]`).
public struct Batch: Sendable {
    public var labels: [Float]
    public var dense: [Float]
    public var sparse: KeyedJaggedTensor
    public var deduped: [DedupedFeature]?
    /// Samples of the global batch this one is a rank's share of (data parallelism, `RankSlicedSource`); nil when
    /// the batch is the whole step. A rank's share may be empty while the step is not: it still takes part.
    public var globalSize: Int?

    public init(labels: [Float], dense: [Float], sparse: KeyedJaggedTensor, deduped: [DedupedFeature]? = nil) {
        self.labels = labels; self.dense = dense; self.sparse = sparse; self.deduped = deduped
    }

    /// B.
    public var size: Int { sparse.batchSize }

    /// Σ_f B / Σ_f U_f over all features: the embedding work dedup saves (1 = none).
    public var dedupFactor: Double? {
        guard let d = deduped, !d.isEmpty else { return nil }
        return Double(d.reduce(0) { $0 + $1.inverse.count }) / Double(max(1, d.reduce(0) { $0 + $1.uniqueCount }))
    }

    /// Samples `range` as their own batch (labels, dense rows, every feature's ids; dedup dropped). O(rows + ids in
    /// the range): offsets are re-based from the range's first offset, never re-summed from the batch start.
    public func slice(_ range: Range<Int>, denseCount: Int) -> Batch {
        let kjt = sparse
        var values: [[Int64]] = [], offsets: [[Int32]] = [], weights: [[Float]] = []
        values.reserveCapacity(kjt.keys.count); offsets.reserveCapacity(kjt.keys.count); weights.reserveCapacity(kjt.keys.count)
        for f in 0..<kjt.values.count {
            let s = Int(kjt.offsets[f][range.lowerBound]), e = Int(kjt.offsets[f][range.upperBound])
            values.append(Array(kjt.values[f][s..<e]))
            let base = Int32(truncatingIfNeeded: s)
            offsets.append(kjt.offsets[f][range.lowerBound...range.upperBound].map { $0 - base })
            weights.append(kjt.weights[f].isEmpty ? [] : Array(kjt.weights[f][s..<e]))
        }
        return Batch(labels: labels.isEmpty ? [] : Array(labels[range]),
                     dense: Array(dense[(range.lowerBound * denseCount)..<(range.upperBound * denseCount)]),
                     sparse: KeyedJaggedTensor(keys: kjt.keys, values: values, offsets: offsets, weights: weights))
    }
}
