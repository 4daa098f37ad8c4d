/// What the columns of a RecKit dataset are, and how raw rows were turned into them.
///
/// Stored in every shard header and in the manifest, so readers, trainers, `predict` and the server apply the
/// identical transform to raw rows.
public struct DatasetSchema: Codable, Sendable, Equatable {
    /// Source format the data came from: "criteo", "avazu", "libfm", "interactions", "synthetic".
    public var source: String
    /// True when rows carry a label (Criteo test files and unlabeled inputs do not).
    public var hasLabel: Bool
    /// Names of the dense (float) features, in column order.
    public var denseNames: [String]
    /// Sparse features, in column order.
    public var sparse: [SparseFeature]
    /// Whether rows carry an Int64 timestamp column (interactions).
    public var hasTimestamps: Bool
    public var preprocessing: PreprocessingSpec

    public init(source: String, hasLabel: Bool, denseNames: [String], sparse: [SparseFeature], hasTimestamps: Bool = false,
                preprocessing: PreprocessingSpec) {
        self.source = source; self.hasLabel = hasLabel; self.denseNames = denseNames; self.sparse = sparse
        self.hasTimestamps = hasTimestamps; self.preprocessing = preprocessing
    }

    /// Checks what readers rely on: unique feature names, cardinalities ≥ 1, vocabulary sizes matching them.
    public func validate(path: String) throws(DataError) {
        let names = denseNames + sparse.map(\.name)
        guard Set(names).count == names.count else { throw .badShard(path: path, reason: "schema: feature names are not unique") }
        for f in sparse where f.cardinality < 1 {
            throw .badShard(path: path, reason: "schema: feature \(f.name) has cardinality \(f.cardinality)")
        }
        if case .vocabulary(_, let sizes) = preprocessing.categorical, sizes != sparse.map(\.cardinality) {
            throw .badShard(path: path, reason: "schema: vocabulary sizes \(sizes.prefix(4))… differ from the cardinalities")
        }
        if case .hash(let m) = preprocessing.categorical, m < 1 { throw .badShard(path: path, reason: "schema: hash modulo \(m)") }
    }

    enum CodingKeys: String, CodingKey {
        case source, sparse, preprocessing
        case hasLabel = "has_label"
        case denseNames = "dense_names"
        case hasTimestamps = "has_timestamps"
    }
}

/// One sparse (embedding) feature.
public struct SparseFeature: Codable, Sendable, Equatable {
    public var name: String
    /// Ids are in `0..<cardinality` after preprocessing (the embedding table's row count).
    public var cardinality: Int
    /// True when a row may hold any number of ids (lengths stored); false for exactly one id per row.
    public var multiHot: Bool
    /// True when ids carry per-id weights (libFM values).
    public var weighted: Bool

    public init(name: String, cardinality: Int, multiHot: Bool = false, weighted: Bool = false) {
        self.name = name; self.cardinality = cardinality; self.multiHot = multiHot; self.weighted = weighted
    }

    enum CodingKeys: String, CodingKey { case name, cardinality, weighted; case multiHot = "multi_hot" }
}

/// The transform from raw fields to model inputs (DLRM reference semantics).
///
/// Dense: `x < 0 → 0`, missing → 0, then `log(1 + x)`.
/// Categorical: `hash` maps raw id r to `r mod size` (`--max-ind-range`); `vocabulary` maps ids seen at least
/// `minCount` times in the first pass to 1...V in first-seen order, every rarer or unseen id to 0 (one
/// out-of-vocabulary id per feature); the vocabularies are stored beside the shards in `vocabulary.bin`.
public struct PreprocessingSpec: Codable, Sendable, Equatable {
    public enum Categorical: Codable, Sendable, Equatable {
        case hash(modulo: Int)
        case vocabulary(minCount: Int, sizes: [Int])
        /// Ids used as they are (already dense and small, e.g. synthetic data).
        case identity
    }

    public var dense: String
    public var categorical: Categorical
    /// How raw categorical tokens become 64-bit raw ids: "hex" (Criteo), "fnv1a64" (strings), "decimal".
    public var rawIDs: String

    public init(dense: String = PreprocessingSpec.log1pClampZero, categorical: Categorical, rawIDs: String) {
        self.dense = dense; self.categorical = categorical; self.rawIDs = rawIDs
    }

    enum CodingKeys: String, CodingKey { case dense, categorical; case rawIDs = "raw_ids" }

    /// The DLRM dense transform's name.
    public static let log1pClampZero = "log1p(max(x,0)); missing=0"

    /// The dense transform: negative → 0, missing → 0, then log(1 + x).
    @inline(__always) public static func transformDense(_ x: Int64?) -> Float {
        guard let x, x > 0 else { return 0 }
        return Float(_log1pDouble(Double(x)))
    }

    /// `transformDense` with a caller-held `smallLog1p` table (hot loops: avoids a lazy-global check per value).
    @inline(__always) static func transformDense(_ x: Int64?, table: UnsafeBufferPointer<Float>) -> Float {
        guard let x, x > 0 else { return 0 }
        if x < Int64(table.count) { return table[Int(x)] }
        return Float(_log1pDouble(Double(x)))
    }

    /// log(1 + x) for the small counts that dominate click logs, computed once with the same libm call.
    static let smallLog1p: [Float] = (0..<4096).map { Float(_log1pDouble(Double($0))) }
}

#if canImport(Glibc)
import Glibc
#endif
@inline(__always) func _log1pDouble(_ x: Double) -> Double { log1p(x) }
