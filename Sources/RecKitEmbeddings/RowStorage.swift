import RecKitCore
import RecKitKernels

/// Where a table's rows live, behind the embedding collection: the seam for in-RAM fp32 rows with optimizer state
/// (`DenseRowStorage`), quantized read-only rows (`QuantizedRowStorage`), and — as further conformances — a tiered
/// store (rows in a file, hot rows in a RAM cache) or a sharded store (rows on other processes).
///
/// Per batch the collection calls `rows(for:)` with the table's ids before any kernel runs, the kernels then read
/// (and, in training, update in place through the fused sparse optimizer) the rows of the returned view, and
/// `finishBatch(updated:)` ends the batch. A store that cannot address every row directly makes the batch's rows
/// resident (cache slots, fetched rows) and rewrites `ids` in place to row numbers of the view it returns; after the
/// fused update it writes the updated rows (and their optimizer state) back where they belong. Kernels never know.
/// The collection resolves its tables in parallel: `rows(for:)` of different storages may run at the same time on
/// different threads (never two calls on one storage), so storages must not share unsynchronised state.
public protocol RowStorage: AnyObject, Sendable {
    /// R (global rows of the table).
    var rows: Int { get }
    /// D.
    var dim: Int { get }
    /// The sparse optimizer whose state this storage keeps, nil when it holds no optimizer state (inference).
    var optimizer: SparseOptimizerKind? { get }
    /// The storage's tensors named under `prefix` (e.g. "embeddings.C1"): `prefix.weight` and its optimizer state.
    func stateTensors(prefix: String) -> [StateTensor]
    /// Makes the rows of `ids` readable by the kernels and returns the view to read them from; may rewrite `ids` to
    /// local row numbers of that view (in-RAM storages return their whole table and leave `ids` as they are).
    func rows(for ids: UnsafeMutableBufferPointer<Int64>) throws(EmbeddingError) -> ResolvedRows
    /// Ends a batch started by `rows(for:)`; `updated` when the fused optimizer changed the rows.
    func finishBatch(updated: Bool)
    /// Starts making the rows of `ids` (the next batch's) resident in the background, while the current batch
    /// computes; the next `rows(for:)` waits for it. Values never depend on it. Default: nothing.
    func prefetch(_ ids: [Int64])
    /// Whether `prefetch` does anything (the collection skips gathering ids otherwise).
    var prefetches: Bool { get }
    /// One line for logs: where the rows live (e.g. "in RAM", "tiered: 1.2M of 40M rows cached, hit rate 0.93").
    var storageDescription: String { get }
}

extension RowStorage {
    public func prefetch(_ ids: [Int64]) {}
    public var prefetches: Bool { false }
    public var storageDescription: String { "in RAM" }
}

/// Chooses where each table's rows live: the seam a tiered store plugs into. Asked once per table when a model is
/// built; nil keeps the default (fp32 rows in RAM, or quantized rows in RAM).
public protocol RowStorageProvider: Sendable {
    /// The storage for table `table` of collection `prefix`, or nil for the default. A storage returned for
    /// `.float` holds the values `initializer` gives, drawn exactly as `TableFill` draws them (so results do not
    /// depend on where rows live); with `.none` its values are about to be replaced by a checkpoint.
    func makeStorage(prefix: String, table: Int, spec: EmbeddingTableSpec, kind: RowStorageKind) throws(EmbeddingError) -> (any RowStorage)?
}

/// What a storage must hold.
public enum RowStorageKind: Sendable {
    /// fp32 rows with `optimizer`'s state (nil: inference), filled by `initializer`.
    case float(optimizer: SparseOptimizerKind?, initializer: EmbeddingInitializer)
    /// Read-only quantized rows.
    case quantized(QuantizedDType)
}

/// The rows of a batch as the kernels see them.
public enum ResolvedRows: @unchecked Sendable {
    /// fp32 rows, with the sparse optimizer's state for them (empty when none is kept, e.g. SGD or inference).
    case float(EmbeddingTableView, state: UnsafeMutableBufferPointer<Float>)
    /// Row-wise quantized rows (inference only).
    case quantized(QuantizedTableView)
}

/// How new fp32 tables are filled.
public enum EmbeddingInitializer: Sendable {
    /// Table t of a collection from its own stream `SeededRandom.stream(seed, firstStream + t)`, element after
    /// element: `(2u − 1)·bound(rows)` (see `TableFill`).
    case uniform(seed: UInt64, firstStream: UInt64, bound: @Sendable (_ rows: Int) -> Float)
    /// All zeros (FM's first-order weights).
    case zeros
    /// Nothing written: the memory is the zero pages of a fresh mapping, about to be overwritten by a checkpoint.
    case none

    /// The DLRM reference's bound for a table of R rows, √(1/R) (DLRM and DCNv2 tables).
    public static func reciprocalSqrtBound(_ rows: Int) -> Float { (1 / Float(rows)).squareRoot() }
}
