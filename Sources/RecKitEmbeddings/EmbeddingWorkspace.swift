import RecKitCore
import RecKitKernels

/// Per-call memory of an embedding collection: each table's ids, offsets and weights for the batch (copied out of
/// the KeyedJaggedTensor, so a storage may rewrite ids to local rows), RecD's inverse indices and the pooled rows of
/// the distinct bags, and the backward kernel's scratch. One workspace per concurrently running forward; buffers
/// grow to the largest batch seen and are reused, so a steady-state step allocates nothing.
public final class EmbeddingWorkspace: @unchecked Sendable {
    struct Table {
        var ids = AlignedBuffer<Int64>(count: 0)
        var offsets = AlignedBuffer<Int32>(count: 0)
        var weights = AlignedBuffer<Float>(count: 0)
        var inverse = AlignedBuffer<Int32>(count: 0)
        /// Ids of the batch (N, or the distinct bags' ids with dedup).
        var count = 0
        /// Bags the kernels see: B, or U distinct bags with dedup.
        var bags = 0
        var weighted = false
        var deduped = false
        var resolved: ResolvedRows?
    }

    var tables: [Table]
    /// Distinct bags' pooled vectors (maxU × Σ dims of deduplicated tables), and their gradients.
    var pooled = AlignedBuffer<Float>(count: 0)
    var pooledGrad = AlignedBuffer<Float>(count: 0)
    /// Column of each deduplicated table in `pooled` (−1 for tables looked up directly).
    var pooledColumn: [Int]
    var pooledWidth = 0
    /// max U over deduplicated tables (rows of `pooled` in use).
    var pooledRows = 0
    let backward = EmbeddingBackwardWorkspace()
    /// B of the last forward.
    public internal(set) var batchSize = 0
    /// Rows resolved by the last forward and not yet finished (a training forward keeps them for backward).
    var pending = false
    /// Each table's `rows(for:)` outcome while the tables resolve in parallel (nil outside `forward`).
    var resolvedScratch: [Result<ResolvedRows, EmbeddingError>?] = []
    /// The last batch's feature keys and, per table, the feature's index (routing cache).
    var routedKeys: [String] = []
    var route: [Int]
    /// Σ_t B / Σ_t U_t over the deduplicated tables of the last batch (1 = no dedup used).
    public internal(set) var dedupFactor: Double = 1
    /// How many tables of the last batch were looked up through their distinct bags (`DedupPolicy`).
    public internal(set) var dedupedTables = 0

    init(tableCount: Int) {
        tables = Array(repeating: Table(), count: tableCount)
        pooledColumn = Array(repeating: -1, count: tableCount)
        route = Array(repeating: -1, count: tableCount)
    }

    /// Grows `buffer` to at least `count` elements (never shrinks); contents are not kept.
    static func reserve<T>(_ buffer: inout AlignedBuffer<T>, _ count: Int) {
        if buffer.count < count { buffer = AlignedBuffer<T>(count: max(count, buffer.count * 3 / 2)) }
    }
}
