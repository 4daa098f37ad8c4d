/// Sparse features of a batch, TorchRec's KeyedJaggedTensor: for each key (feature) f, the ids of all B samples
/// concatenated (`values[f]`, N_f) with `offsets[f]` (B + 1): sample b's ids are `values[f][offsets[f][b] ..<
/// offsets[f][b + 1]]`, optionally weighted (`weights[f]`, N_f, or empty).
public struct KeyedJaggedTensor: Sendable, Equatable {
    public var keys: [String]
    public var values: [[Int32]]
    public var offsets: [[Int32]]
    public var weights: [[Float]]

    public init(keys: [String], values: [[Int32]], offsets: [[Int32]], weights: [[Float]]) {
        self.keys = keys; self.values = values; self.offsets = offsets; self.weights = weights
    }

    /// B.
    public var batchSize: Int { (offsets.first?.count ?? 1) - 1 }

    /// The ids of sample `b` for feature `f`.
    public func ids(feature f: Int, sample b: Int) -> ArraySlice<Int32> {
        values[f][Int(offsets[f][b])..<Int(offsets[f][b + 1])]
    }
}

/// RecD's inverse-keyed jagged tensor for one feature: the distinct bags of a batch plus, per sample, which
/// distinct bag it has. Embedding lookups then run on `unique` only and results are gathered with `inverse`.
public struct DedupedFeature: Sendable, Equatable {
    /// Distinct bags' ids, concatenated (U bags).
    public var uniqueValues: [Int32]
    /// U + 1 offsets into `uniqueValues`.
    public var uniqueOffsets: [Int32]
    /// Per sample (B): index of its bag among the U distinct bags.
    public var inverse: [Int32]

    public init(uniqueValues: [Int32], uniqueOffsets: [Int32], inverse: [Int32]) {
        self.uniqueValues = uniqueValues; self.uniqueOffsets = uniqueOffsets; self.inverse = inverse
    }

    /// U.
    public var uniqueCount: Int { uniqueOffsets.count - 1 }

    /// B / U: how many samples share each distinct bag on average (1 = no duplication).
    public var dedupFactor: Double { Double(inverse.count) / Double(max(uniqueCount, 1)) }

    /// Deduplicates feature `f` of `kjt` (bags compared by their id lists; weights are not deduplicated).
    public static func dedup(_ kjt: KeyedJaggedTensor, feature f: Int) -> DedupedFeature {
        var seen: [ArraySlice<Int32>: Int32] = [:]
        var uniqueValues: [Int32] = [], uniqueOffsets: [Int32] = [0], inverse: [Int32] = []
        inverse.reserveCapacity(kjt.batchSize)
        for b in 0..<kjt.batchSize {
            let bag = kjt.ids(feature: f, sample: b)
            if let u = seen[bag] {
                inverse.append(u)
            } else {
                let u = Int32(uniqueOffsets.count - 1)
                seen[bag] = u
                uniqueValues += bag
                uniqueOffsets.append(Int32(uniqueValues.count))
                inverse.append(u)
            }
        }
        return DedupedFeature(uniqueValues: uniqueValues, uniqueOffsets: uniqueOffsets, inverse: inverse)
    }
}
