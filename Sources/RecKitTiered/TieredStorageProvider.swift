import Dispatch
import Foundation
import RecKitCore
import RecKitEmbeddings
import RecKitKernels

/// How a model's tables are tiered.
public struct TierOptions: Sendable, Codable, Equatable {
    /// Directory for the tables' files (training; scratch files, removed when the process ends).
    public var directory: String
    /// RAM for cached rows, all tiered tables together (rows, optimizer state and bookkeeping); tables kept
    /// wholly in RAM count against it too.
    public var cacheBytes: Int
    public var policy: CachePolicy = .clock
    public var io: TierIOEngine = .uring
    /// Tables smaller than this stay wholly in RAM (tiering them would save little and cost a lookup per id).
    public var minimumTableBytes: Int = 64 << 20
    /// Smallest cache of a tiered table, rows: at least one batch's distinct rows of that table.
    public var minimumSlots: Int = 16_384
    /// A placement from `reckit plan tiering` (resident tables, cache sizes and pinned rows per table).
    public var placement: TierPlacement?

    public init(directory: String, cacheBytes: Int) { self.directory = directory; self.cacheBytes = cacheBytes }
}

/// Builds tiered storages for the tables that should be tiered and leaves the rest in RAM; owns the I/O engine and
/// the prefetch queue they share, and sums their counters.
///
/// The cache budget is split before any table is built: tables kept in RAM (smaller than `minimumTableBytes`, or
/// resident in the placement) take their full size from it; each tiered table then gets the placement's cache rows,
/// or a share of the rest proportional to its rows, and never fewer than `minimumSlots`.
public final class TieredStorageProvider: RowStorageProvider, @unchecked Sendable {
    public let options: TierOptions
    /// Cache rows per tiered table (`collection.table`); tables absent stay in RAM.
    public let cacheRows: [String: Int]
    /// Rows to pin per table, from the placement and its statistics.
    let pinned: [String: [Int64]]
    let io: TierIO
    let queue = DispatchQueue(label: "reckit.tier.prefetch")
    let inPlace: (path: String, offsets: [String: Int])?
    private let lock = NSLock()
    private var built: [TieredRowStorage] = []

    /// A provider for training (and in-RAM-sized inference): `tables` are every table the model will build, with
    /// the sparse optimizer whose state their records carry.
    public convenience init(options: TierOptions, tables: [(collection: String, spec: EmbeddingTableSpec)],
                            optimizer: SparseOptimizerKind?) throws(EmbeddingError) {
        let stateFloats = { (dim: Int) in optimizer?.stateCount(rows: 1, dim: dim) ?? 0 }
        try self.init(options: options, tables: tables.map { ($0.collection + "." + $0.spec.name, $0.spec.rows, 4 * $0.spec.dim + 4 * stateFloats($0.spec.dim)) },
                      inPlace: nil)
        var isDirectory: ObjCBool = false
        if let first = cacheRows.keys.sorted().first,
           !(FileManager.default.fileExists(atPath: options.directory, isDirectory: &isDirectory) && isDirectory.boolValue
             && FileManager.default.isWritableFile(atPath: options.directory)) {
            throw .storage(table: first, "tier directory \(options.directory) is not a writable directory (--tier-dir)")
        }
    }

    /// A provider that serves a checkpoint's tables in place: rows are read from `path` at the tensors' offsets
    /// (`offsets["embeddings.C1.weight"]`), never written; `recordBytes` is a row's size in the file.
    public convenience init(servingInPlace path: String, offsets: [String: Int], cacheBytes: Int, policy: CachePolicy = .clock,
                            minimumTableBytes: Int = 64 << 20, minimumSlots: Int = 16_384,
                            tables: [(collection: String, spec: EmbeddingTableSpec)], rowBytes: (EmbeddingTableSpec) -> Int) throws(EmbeddingError) {
        var o = TierOptions(directory: (path as NSString).deletingLastPathComponent, cacheBytes: cacheBytes)
        o.policy = policy
        o.minimumTableBytes = minimumTableBytes
        o.minimumSlots = minimumSlots
        try self.init(options: o, tables: tables.map { ($0.collection + "." + $0.spec.name, $0.spec.rows, rowBytes($0.spec)) },
                      inPlace: (path, offsets))
    }

    init(options: TierOptions, tables: [(name: String, rows: Int, recordBytes: Int)], inPlace: (path: String, offsets: [String: Int])?) throws(EmbeddingError) {
        self.options = options
        self.inPlace = inPlace
        io = TierIO(preferred: options.io)
        var rows: [String: Int] = [:]
        var pins: [String: [Int64]] = [:]
        var budget = options.cacheBytes
        var tiered: [(name: String, rows: Int, recordBytes: Int)] = []
        let plan = options.placement.map { Dictionary($0.tables.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a }) } ?? [:]
        for t in tables {
            let bytes = t.rows * t.recordBytes
            let resident = plan[t.name].map { $0.mode == .resident } ?? (bytes < options.minimumTableBytes)
            if resident { budget -= bytes } else { tiered.append(t) }
        }
        let slotOverhead = RowCache.bytesPerSlot
        var fixed: [String: Int] = [:]
        for t in tiered { if let p = plan[t.name], p.cacheRows > 0 { fixed[t.name] = p.cacheRows; budget -= p.cacheRows * (t.recordBytes + slotOverhead) } }
        let share = tiered.filter { fixed[$0.name] == nil }
        let shareRows = share.reduce(0) { $0 + $1.rows }
        for t in tiered {
            var slots: Int
            if let f = fixed[t.name] { slots = f } else {
                let part = shareRows == 0 ? 0 : Int(Double(max(budget, 0)) * Double(t.rows) / Double(shareRows))
                slots = part / (t.recordBytes + slotOverhead)
            }
            slots = min(max(slots, options.minimumSlots), t.rows)
            rows[t.name] = slots
            if let p = plan[t.name], !p.pinnedIDs.isEmpty { pins[t.name] = p.pinnedIDs }
        }
        let used = tables.reduce(0) { acc, t in acc + (rows[t.name].map { $0 * (t.recordBytes + slotOverhead) } ?? t.rows * t.recordBytes) }
        if used > options.cacheBytes + options.cacheBytes / 8, let t = tiered.first {
            throw .storage(table: t.name, String(format: "the tables kept in RAM and the smallest caches (%d rows per tiered table) need %.0f MiB; --cache-mb is %.0f",
                                                 options.minimumSlots, Double(used) / 1_048_576, Double(options.cacheBytes) / 1_048_576))
        }
        cacheRows = rows
        pinned = pins
    }

    public func makeStorage(prefix: String, table: Int, spec: EmbeddingTableSpec, kind: RowStorageKind) throws(EmbeddingError) -> (any RowStorage)? {
        let name = prefix + "." + spec.name
        guard let capacity = cacheRows[name] else { return nil }
        let storage: TieredRowStorage
        do throws(TensorIOError) {
            switch kind {
            case let .float(optimizer, initializer):
                let layout: TierLayout
                let file: TierFile
                if let inPlace {
                    guard optimizer == nil, let base = inPlace.offsets[name + ".weight"] else { return nil }
                    layout = TierLayout(rows: spec.rows, weightBytes: 4 * spec.dim, stateFloats: 0, base: base)
                    file = try TierFile.readOnly(inPlace.path)
                } else {
                    layout = TierLayout(rows: spec.rows, weightBytes: 4 * spec.dim, stateFloats: optimizer?.stateCount(rows: 1, dim: spec.dim) ?? 0, base: 0)
                    file = try TierFile.scratch(directory: options.directory, name: name, bytes: spec.rows * layout.recordBytes)
                }
                storage = TieredRowStorage(name: name, rows: spec.rows, dim: spec.dim, optimizer: optimizer, quantization: nil, layout: layout,
                                           file: file, io: io, queue: queue, capacity: capacity, policy: options.policy)
                if inPlace == nil { try storage.fill(initializer, table: table) }
            case .quantized(let q):
                guard let inPlace, let base = inPlace.offsets[name + ".weight"] else { return nil }
                let layout = TierLayout(rows: spec.rows, weightBytes: q.rowBytes(dim: spec.dim), stateFloats: 0, base: base)
                storage = TieredRowStorage(name: name, rows: spec.rows, dim: spec.dim, optimizer: nil, quantization: q, layout: layout,
                                           file: try TierFile.readOnly(inPlace.path), io: io, queue: queue, capacity: capacity, policy: options.policy)
            }
        } catch {
            throw .storage(table: name, error.description)
        }
        if let ids = pinned[name] { try storage.pin(ids) }
        lock.lock(); built.append(storage); lock.unlock()
        return storage
    }

    /// RAM a cache slot costs besides its row and optimizer state (map entry, flags, policy state), bytes.
    public static var slotOverheadBytes: Int { RowCache.bytesPerSlot }

    /// The tiered tables built so far.
    public var storages: [TieredRowStorage] { lock.lock(); defer { lock.unlock() }; return built }

    /// Counters of every tiered table together.
    public var stats: TierStats { storages.reduce(TierStats()) { $0 + $1.stats } }

    /// Bytes moved by the I/O engine, and which engine runs (with the reason when io_uring was refused).
    public var ioSummary: (engine: TierIOEngine, note: String, bytesRead: Int, bytesWritten: Int) {
        (io.engine, io.why, io.bytesRead, storages.reduce(0) { $0 + $1.stats.writtenBack * $1.layout.recordBytes })
    }

    /// Tier files are read in place from the checkpoint at this path (serving), if any.
    public var servesInPlace: String? { inPlace?.path }
}
