import RecKitCore
import RecKitKernels

/// A set of embedding-bag tables looked up together: each table pools one sparse feature of the batch (found by
/// key) into its columns of an output matrix. The rows live in each table's `RowStorage`; models hold collections
/// and never a raw table buffer.
///
/// Forward, per batch of B samples: every table's ids are copied into the workspace, handed to its storage
/// (`rows(for:)`, which may rewrite them to local rows), and pooled by the table-batched kernels, all fp32 tables in
/// one parallel region. With RecD deduplication (`Batch.deduped`), a table's U distinct bags are pooled once into a
/// U × D scratch and expanded to the B samples through the inverse indices.
///
/// Backward: the output gradient (B × width) goes through the fused backward + sparse optimizer on the same ids.
/// Deduplicated tables first sum the gradient rows of each distinct bag's copies, in sample order, then update once.
/// For unweighted one-hot features (each distinct bag is one row) this adds the same terms in the same order as the
/// per-sample path, so both give bit-identical rows; for multi-hot bags the order differs (equal within rounding).
///
/// Named state: `<prefix>.<table>.weight` [R, D] and the optimizer's `<prefix>.<table>.adagrad_sum`.
public final class EmbeddingCollection: @unchecked Sendable {
    public let prefix: String
    public let specs: [EmbeddingTableSpec]
    public let storages: [any RowStorage]
    /// Which deduplicated features go through their distinct bags (`DedupPolicy`); set before the collection is
    /// used, not while a forward runs.
    public var dedupPolicy: DedupPolicy = .auto
    /// Set when the tables live on several processes (sharded embeddings, RecKitDistributed): `forward`, `backward`,
    /// `prefetch` and `stateTensors` then go through it, and `storages` are placeholders without rows. Set before
    /// the collection is used.
    public var exchange: (any EmbeddingExchange)?

    public init(prefix: String, specs: [EmbeddingTableSpec], storages: [any RowStorage]) throws(EmbeddingError) {
        guard specs.count == storages.count else { throw .invalidSpec(prefix, "\(specs.count) specs for \(storages.count) storages") }
        guard Set(specs.map(\.name)).count == specs.count else { throw .invalidSpec(prefix, "table names must be unique") }
        for (s, st) in zip(specs, storages) where s.rows != st.rows || s.dim != st.dim {
            throw .invalidSpec(s.name, "storage has \(st.rows) × \(st.dim), spec says \(s.rows) × \(s.dim)")
        }
        self.prefix = prefix; self.specs = specs; self.storages = storages
    }

    /// fp32 tables, filled by `initializer`, with state for `optimizer` (nil: inference, no state): in RAM, or where
    /// `provider` puts them (it fills its own tables from the same streams).
    public static func dense(prefix: String, specs: [EmbeddingTableSpec], optimizer: SparseOptimizerKind?,
                             initializer: EmbeddingInitializer, provider: (any RowStorageProvider)? = nil) throws(EmbeddingError) -> EmbeddingCollection {
        for s in specs { try s.validate() }
        var storages: [any RowStorage] = []
        var inRAM: [(table: Int, storage: DenseRowStorage)] = []
        for (t, spec) in specs.enumerated() {
            if let custom = try provider?.makeStorage(prefix: prefix, table: t, spec: spec, kind: .float(optimizer: optimizer, initializer: initializer)) {
                storages.append(custom)
            } else {
                let d = DenseRowStorage(rows: spec.rows, dim: spec.dim, optimizer: optimizer)
                storages.append(d)
                inRAM.append((t, d))
            }
        }
        if case let .uniform(seed, firstStream, bound) = initializer, !inRAM.isEmpty {
            TableFill.uniform(inRAM.map(\.storage.weights), rows: inRAM.map { specs[$0.table].rows }, seed: seed,
                              streams: inRAM.map { firstStream + UInt64($0.table) }, bound: bound)
        }
        return try EmbeddingCollection(prefix: prefix, specs: specs, storages: storages)
    }

    /// Read-only quantized tables of the given dtype, zeroed (to be read from a checkpoint): in RAM, or where
    /// `provider` puts them.
    public static func quantized(prefix: String, specs: [EmbeddingTableSpec], dtype: QuantizedDType,
                                 provider: (any RowStorageProvider)? = nil) throws(EmbeddingError) -> EmbeddingCollection {
        for s in specs { try s.validate() }
        var storages: [any RowStorage] = []
        for (t, spec) in specs.enumerated() {
            storages.append(try provider?.makeStorage(prefix: prefix, table: t, spec: spec, kind: .quantized(dtype))
                            ?? QuantizedRowStorage(QuantizedTable(dtype: dtype, rows: spec.rows, dim: spec.dim)))
        }
        return try EmbeddingCollection(prefix: prefix, specs: specs, storages: storages)
    }

    /// Starts fetching the rows the next batch (`sparse`) will look up, on storages that prefetch (tiered ones);
    /// the next forward waits for it. Nothing else changes.
    public func prefetch(_ sparse: KeyedJaggedTensor) {
        guard exchange == nil else { return }
        for (s, storage) in zip(specs, storages) where storage.prefetches {
            if let f = sparse.index(of: s.feature) { storage.prefetch(sparse.values[f]) }
        }
    }

    /// This collection with every fp32 table quantized to `dtype` (read-only; the fp32 rows are not kept).
    public func quantizing(to dtype: QuantizedDType) throws(EmbeddingError) -> EmbeddingCollection {
        var out: [any RowStorage] = []
        for (s, st) in zip(specs, storages) {
            guard let dense = st as? DenseRowStorage else { throw .invalidSpec(s.name, "only fp32 in-RAM tables can be quantized") }
            out.append(QuantizedRowStorage(QuantizedTable.quantize(dense.weights.pointer, rows: s.rows, dim: s.dim, dtype: dtype)))
        }
        return try EmbeddingCollection(prefix: prefix, specs: specs, storages: out)
    }

    /// The quantization of the tables, nil when they are fp32.
    public var quantization: QuantizedDType? { (storages.first as? QuantizedRowStorage)?.table.dtype }

    /// The sparse optimizer the storages keep state for (nil: none, inference).
    public var optimizer: SparseOptimizerKind? { storages.first?.optimizer }

    public func makeWorkspace() -> EmbeddingWorkspace { EmbeddingWorkspace(tableCount: specs.count) }

    /// Every table's tensors, `<prefix>.<name>.weight` then its optimizer state, in table order.
    public func stateTensors() -> [StateTensor] {
        if let exchange { return exchange.stateTensors() }
        return zip(specs, storages).flatMap { $1.stateTensors(prefix: prefix + "." + $0.name) }
    }

    /// Σ D: the width the tables' pooled vectors take side by side.
    public var totalDim: Int { specs.reduce(0) { $0 + $1.dim } }
}

/// When a feature that came with RecD's distinct bags is looked up through them.
///
/// Through its U distinct bags (N_u ids in all) a feature of B samples and N ids reads N_u rows instead of N, and
/// pays B row copies to expand the pooled bags (and B row additions in the backward to sum their gradients). So
/// deduplication pays when the reads saved cover the copies: `N − N_u ≥ B`. One-hot features (N = B) never pass
/// this — gathering one row costs what copying it does, measured 0.85–0.94× on one-hot session data
/// (docs/performance.md) — while pooled bags shared by a session (histories: N = 20·B, N_u = N / 2 at session 2)
/// pass it from session 2 on. Either path gives the same bits for unweighted one-hot features.
public enum DedupPolicy: String, Sendable, Codable, CaseIterable {
    /// Distinct bags when `N − N_u ≥ B` (above).
    case auto
    /// Distinct bags for every feature that comes with them (tests; measuring the path itself).
    case always

    /// Whether a feature of `batchSize` samples and `values` ids, with `deduped`'s distinct bags, takes them.
    public func usesDistinctBags(_ deduped: DedupedFeature, values: Int, batchSize: Int) -> Bool {
        switch self {
        case .always: return true
        case .auto: return batchSize > 0 && values - deduped.uniqueValues.count >= batchSize
        }
    }
}

/// A collection's lookups done elsewhere: sharded embeddings, where each table (or slice of rows or columns) lives
/// on one process and ids and pooled vectors travel between them. Every process of the group calls `forward` and
/// `backward` for every batch, in the same order (collective calls), with its own samples (possibly none).
public protocol EmbeddingExchange: AnyObject, Sendable {
    /// Pools this process's B samples of `sparse` into `output`'s columns, as `EmbeddingCollection.forward` does.
    func forward(_ sparse: KeyedJaggedTensor, output: MatrixView, columnOffsets: [Int], training: Bool, pool: ThreadPool) throws(EmbeddingError)
    /// Backward of the last training forward, fused with the sparse optimizer, on whichever process owns each row.
    func backward(gradOutput: MatrixView, columnOffsets: [Int], update: SparseUpdate, pool: ThreadPool) throws(EmbeddingError)
    /// The shards this process holds, named (`<prefix>.<table>.weight`, with the shard's place in the name).
    func stateTensors() -> [StateTensor]
}

/// A table whose rows are not in this process (they live in an `EmbeddingExchange`'s shards): no memory; any direct
/// lookup is refused with the table's name.
public final class PlaceholderRowStorage: RowStorage, @unchecked Sendable {
    public let name: String
    public let rows: Int
    public let dim: Int
    public let optimizer: SparseOptimizerKind?
    public init(name: String, rows: Int, dim: Int, optimizer: SparseOptimizerKind?) {
        self.name = name; self.rows = rows; self.dim = dim; self.optimizer = optimizer
    }
    public func stateTensors(prefix: String) -> [StateTensor] { [] }
    public func rows(for ids: UnsafeMutableBufferPointer<Int64>) throws(EmbeddingError) -> ResolvedRows {
        throw .storage(table: name, "the table is sharded across processes; look it up through the collection's exchange")
    }
    public func finishBatch(updated: Bool) {}
    public var storageDescription: String { "sharded across processes" }
}
