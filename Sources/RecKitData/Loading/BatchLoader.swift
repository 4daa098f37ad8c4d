import Foundation
import RecKitCore

/// One training batch: labels (B), dense features (B × dense, row-major), sparse features as a
/// KeyedJaggedTensor, and — in dedup mode — RecD's per-feature distinct bags with inverse indices.
public struct Batch: Sendable {
    public var labels: [Float]
    public var dense: [Float]
    public var sparse: KeyedJaggedTensor
    public var deduped: [DedupedFeature]?

    public init(labels: [Float], dense: [Float], sparse: KeyedJaggedTensor, deduped: [DedupedFeature]?) {
        self.labels = labels; self.dense = dense; self.sparse = sparse; self.deduped = deduped
    }

    /// B.
    public var size: Int { sparse.batchSize }

    /// Σ_f B / Σ_f U_f over all features: the embedding work dedup saves (1 = none).
    public var dedupFactor: Double? {
        guard let d = deduped, !d.isEmpty else { return nil }
        return Double(d.reduce(0) { $0 + $1.inverse.count }) / Double(max(1, d.reduce(0) { $0 + $1.uniqueCount }))
    }
}

/// Options of `BatchLoader`.
public struct LoaderOptions: Sendable {
    public var batchSize: Int
    /// Rows held for shuffling (0 = no shuffle: rows in file order).
    public var shuffleBuffer = 0
    public var seed: UInt64 = 0
    /// Drop a final batch smaller than `batchSize`.
    public var dropLast = false
    /// Also produce deduplicated features (RecD IKJT).
    public var dedup = false
    /// Shards decoded ahead by the background reader.
    public var prefetchShards = 2

    public init(batchSize: Int) { self.batchSize = batchSize }
}

/// Streams batches from a shard dataset: a background thread reads and verifies shards ahead (bounded queue of
/// `prefetchShards`), the caller's thread assembles batches. With a shuffle buffer of S rows, each output row is
/// drawn uniformly from the buffer and replaced by the next incoming row (deterministic for a seed, since shards
/// arrive in manifest order). Memory: the buffered rows plus the prefetched shards.
public final class BatchLoader: Sequence, IteratorProtocol {
    public let dataset: ShardDataset
    public let options: LoaderOptions
    private let queue: ShardQueue
    private var current: ShardColumns?
    private var currentRow = 0
    private var currentOffsets: [[Int32]] = []
    /// Shuffle buffer entries: (shard slot, row); slots keep shards alive while referenced.
    private var buffer: [(Int, Int)] = []
    private var slots: [Int: (ShardColumns, [[Int32]], Int)] = [:]  // columns, offsets, rows still referenced
    private var rng: SeededRandom
    public private(set) var error: DataError?
    public private(set) var rowsDelivered = 0

    public init(dataset: ShardDataset, options: LoaderOptions) throws(DataError) {
        guard options.batchSize >= 1 else { throw .invalidOptions("batch size must be ≥ 1") }
        self.dataset = dataset
        self.options = options
        rng = SeededRandom(seed: options.seed)
        queue = ShardQueue(capacity: Swift.max(1, options.prefetchShards))
        let ds = dataset, q = queue
        Thread.detachNewThread {
            for i in 0..<ds.manifest.shards.count {
                do throws(DataError) {
                    if !q.put(.shard(try ds.shard(i))) { return }
                } catch {
                    _ = q.put(.failed(error))
                    return
                }
            }
            _ = q.put(.end)
        }
    }

    deinit { queue.close() }

    /// The next batch, or nil at the end (check `error` to tell a failure from the end).
    public func next() -> Batch? {
        var rows: [(ShardColumns, [[Int32]], Int)] = []
        rows.reserveCapacity(options.batchSize)
        while rows.count < options.batchSize, let r = nextRow() { rows.append(r) }
        if rows.isEmpty || (options.dropLast && rows.count < options.batchSize) { return nil }
        rowsDelivered += rows.count
        return assemble(rows)
    }

    /// Next row in loader order: (shard columns, its offsets, row index).
    private func nextRow() -> (ShardColumns, [[Int32]], Int)? {
        if options.shuffleBuffer <= 0 {
            guard let (c, o, r) = nextFileRow() else { return nil }
            return (c, o, r)
        }
        while buffer.count < options.shuffleBuffer, let (c, o, r) = nextFileRow() {
            if slots[currentSlot] == nil { slots[currentSlot] = (c, o, 0) }
            slots[currentSlot]!.2 += 1
            buffer.append((currentSlot, r))
        }
        if buffer.isEmpty { return nil }
        let i = rng.nextBelow(buffer.count)
        let (slot, r) = buffer[i]
        buffer[i] = buffer[buffer.count - 1]
        buffer.removeLast()
        let entry = slots[slot]!
        slots[slot]!.2 -= 1
        if slots[slot]!.2 == 0 && slot != currentSlot { slots[slot] = nil }  // no buffered row needs it any more
        return (entry.0, entry.1, r)
    }

    /// The reader has delivered its last shard (or failed).
    private var finished = false

    /// Slot of the shard rows currently come from (incremented per shard).
    private var currentSlot = 0

    /// Next row in file order, pulling shards from the reader.
    private func nextFileRow() -> (ShardColumns, [[Int32]], Int)? {
        while current == nil || currentRow >= current!.rowCount {
            guard error == nil, !finished else { return nil }
            switch queue.take() {
            case .shard(let c):
                current = c
                currentRow = 0
                currentOffsets = (0..<c.sparseCount).map { c.offsets(feature: $0) }
                currentSlot += 1
            case .failed(let e):
                error = e
                finished = true
                return nil
            case .end, nil:
                finished = true
                return nil
            }
        }
        defer { currentRow += 1 }
        return (current!, currentOffsets, currentRow)
    }

    private func assemble(_ rows: [(ShardColumns, [[Int32]], Int)]) -> Batch {
        let schema = dataset.schema
        let dc = schema.denseNames.count, fc = schema.sparse.count
        var labels: [Float] = [], dense: [Float] = []
        labels.reserveCapacity(rows.count)
        dense.reserveCapacity(rows.count * dc)
        var values = Array(repeating: [Int32](), count: fc)
        var offsets = Array(repeating: [Int32(0)], count: fc)
        var weights = Array(repeating: [Float](), count: fc)
        for (c, o, r) in rows {
            if !c.labels.isEmpty { labels.append(c.labels[r]) }
            if dc > 0 { dense += c.dense[(r * dc)..<((r + 1) * dc)] }
            for f in 0..<fc {
                let a = Int(o[f][r]), b = Int(o[f][r + 1])
                values[f] += c.ids[f][a..<b]
                if !c.weights[f].isEmpty { weights[f] += c.weights[f][a..<b] }
                offsets[f].append(Int32(values[f].count))
            }
        }
        let kjt = KeyedJaggedTensor(keys: schema.sparse.map(\.name), values: values, offsets: offsets, weights: weights)
        let deduped = options.dedup ? (0..<fc).map { DedupedFeature.dedup(kjt, feature: $0) } : nil
        return Batch(labels: labels, dense: dense, sparse: kjt, deduped: deduped)
    }
}

/// A bounded blocking queue between the shard reader thread and the loader.
final class ShardQueue: @unchecked Sendable {
    enum Item { case shard(ShardColumns), failed(DataError), end }
    private let cond = NSCondition()
    private var items: [Item] = []
    private let capacity: Int
    private var closed = false

    init(capacity: Int) { self.capacity = capacity }

    /// Blocks while full; false once the consumer has gone.
    func put(_ item: Item) -> Bool {
        cond.lock(); defer { cond.unlock() }
        while items.count >= capacity && !closed { cond.wait() }
        if closed { return false }
        items.append(item)
        cond.broadcast()
        return true
    }

    func take() -> Item? {
        cond.lock(); defer { cond.unlock() }
        while items.isEmpty && !closed { cond.wait() }
        if items.isEmpty { return nil }
        let item = items.removeFirst()
        cond.broadcast()
        return item
    }

    func close() {
        cond.lock(); closed = true; cond.broadcast(); cond.unlock()
    }
}
