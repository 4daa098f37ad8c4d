import Foundation
import RecKitCore

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
    /// The dataset rows (file order) this loader reads, nil = all. The shuffle only ever sees these rows, so a
    /// training range never mixes in validation rows.
    public var rows: Range<Int>?
    /// Rows of this loader's output stream to skip first (resuming mid-epoch). Exact for any shuffle buffer: the
    /// shuffle's draws are replayed on row numbers, so nothing before the skipped point is decoded.
    public var skip = 0

    public init(batchSize: Int) { self.batchSize = batchSize }
}

/// Streams batches from a shard dataset: a background thread reads and verifies the shards overlapping the row range
/// (starting at the right shard by the manifest's row counts), the caller's thread assembles batches.
///
/// With a shuffle buffer of S rows, each output row is drawn uniformly from the buffer (`rng.nextBelow(count)`) and
/// its slot refilled from the last one, after topping the buffer up from the stream — deterministic for a seed. The
/// buffer holds copies of its rows, so memory is bounded by S rows plus `prefetchShards + 1` decoded shards, and no
/// shard outlives its rows' copying (see `ShuffleBuffer`).
public final class BatchLoader: Sequence, IteratorProtocol {
    public let dataset: ShardDataset
    public let options: LoaderOptions
    /// The dataset rows read.
    public let range: Range<Int>
    private let queue: ShardQueue
    private var current: ShardColumns?
    private var currentOffsets: [[Int32]] = []
    /// Next row of `current` to read, and the dataset row it is.
    private var currentRow = 0
    /// Next dataset row the stream delivers.
    private var streamRow: Int
    private var buffer: ShuffleBuffer?
    private var rng: SeededRandom
    public private(set) var error: DataError?
    public private(set) var rowsDelivered = 0

    public init(dataset: ShardDataset, options: LoaderOptions) throws(DataError) {
        guard options.batchSize >= 1 else { throw .invalidOptions("batch size must be ≥ 1") }
        guard options.shuffleBuffer >= 0, options.skip >= 0 else { throw .invalidOptions("shuffle buffer and skip must be ≥ 0") }
        let all = 0..<dataset.manifest.rows
        let range = options.rows ?? all
        guard range.lowerBound >= 0, range.upperBound <= all.upperBound else {
            throw .invalidOptions("rows \(range) outside the dataset's 0..<\(all.upperBound)")
        }
        self.dataset = dataset
        self.options = options
        self.range = range
        rng = SeededRandom(seed: options.seed)
        var firstRow = range.lowerBound
        var preload: [Int] = []
        if options.shuffleBuffer > 0 {
            let schema = dataset.schema
            let b = ShuffleBuffer(capacity: options.shuffleBuffer, schema: schema)
            // Replay the skipped draws on row numbers: which rows are buffered, and where the stream stands.
            var slots: [Int] = []
            var next = range.lowerBound
            var taken = 0
            while taken < options.skip {
                while slots.count < options.shuffleBuffer && next < range.upperBound { slots.append(next); next += 1 }
                if slots.isEmpty { break }
                let i = rng.nextBelow(slots.count)
                slots[i] = slots[slots.count - 1]
                slots.removeLast()
                taken += 1
            }
            firstRow = next
            preload = slots
            buffer = b
        } else {
            firstRow = Swift.min(range.lowerBound + options.skip, range.upperBound)
        }
        streamRow = firstRow
        rowsDelivered = 0
        queue = ShardQueue(capacity: Swift.max(1, options.prefetchShards))
        // Rows still buffered at the resume point: read their shards once, in order, and copy the rows into the slots
        // (in slot order), before the stream continues.
        if let buffer, !preload.isEmpty {
            var byShard: [Int: [(slot: Int, row: Int)]] = [:]
            for (slot, row) in preload.enumerated() { byShard[dataset.shardIndex(containing: row)!, default: []].append((slot, row)) }
            buffer.reserve(preload.count)
            for s in byShard.keys.sorted() {
                let cols = try dataset.shard(s)
                let offsets = (0..<cols.sparseCount).map { cols.offsets(feature: $0) }
                for (slot, row) in byShard[s]! { buffer.store(slot, cols, offsets, row - dataset.shardStarts[s]) }
            }
            buffer.count = preload.count
        }
        let ds = dataset, q = queue
        let endRow = range.upperBound
        let firstShard = dataset.shardIndex(containing: firstRow) ?? dataset.manifest.shards.count
        if firstRow < endRow {
            let lastShard = dataset.shardIndex(containing: endRow - 1)!
            Thread.detachNewThread {
                for i in firstShard...lastShard {
                    do throws(DataError) {
                        if !q.put(.shard(i, try ds.shard(i))) { return }
                    } catch {
                        _ = q.put(.failed(error))
                        return
                    }
                }
                _ = q.put(.end)
            }
        } else {
            _ = q.put(.end)
        }
    }

    deinit { queue.close() }

    /// The next batch, or nil at the end (check `error` to tell a failure from the end).
    public func next() -> Batch? {
        let schema = dataset.schema
        var builder = BatchBuilder(schema: schema, capacity: options.batchSize)
        while builder.rows < options.batchSize {
            if let buffer {
                while buffer.count < options.shuffleBuffer, let (c, o, r) = nextFileRow() { buffer.store(buffer.count, c, o, r); buffer.count += 1 }
                if buffer.count == 0 { break }
                let i = rng.nextBelow(buffer.count)
                buffer.append(i, to: &builder)
                buffer.move(from: buffer.count - 1, to: i)
                buffer.count -= 1
            } else {
                guard let (c, o, r) = nextFileRow() else { break }
                // Without shuffling, take the rest of the shard's rows for this batch in one bulk copy.
                let n = Swift.min(options.batchSize - builder.rows, c.rowCount - r, range.upperBound - streamRow + 1)
                builder.append(c, o, rows: r..<(r + n))
                currentRow = r + n
                streamRow += n - 1
            }
        }
        if builder.rows == 0 || (options.dropLast && builder.rows < options.batchSize) { return nil }
        rowsDelivered += builder.rows
        return builder.finish(dedup: options.dedup)
    }

    /// The reader has delivered its last shard (or failed).
    private var finished = false

    /// Next row in file order within the range: (shard columns, their offsets, row index in the shard).
    private func nextFileRow() -> (ShardColumns, [[Int32]], Int)? {
        guard streamRow < range.upperBound else { return nil }
        while current == nil || currentRow >= current!.rowCount {
            guard error == nil, !finished else { return nil }
            switch queue.take() {
            case .shard(let index, let c)?:
                current = c
                currentOffsets = (0..<c.sparseCount).map { c.offsets(feature: $0) }
                currentRow = Swift.max(0, streamRow - dataset.shardStarts[index])
            case .failed(let e)?:
                error = e
                finished = true
                return nil
            case .end?, nil:
                finished = true
                return nil
            }
        }
        defer { currentRow += 1; streamRow += 1 }
        return (current!, currentOffsets, currentRow)
    }
}

/// Rows of a batch being assembled, column by column.
struct BatchBuilder {
    let denseCount: Int, features: Int
    var labels: [Float] = [], dense: [Float] = []
    var values: [[Int64]], offsets: [[Int32]], weights: [[Float]]
    let keys: [String]
    let hasLabel: Bool
    var rows = 0

    init(schema: DatasetSchema, capacity: Int) {
        denseCount = schema.denseNames.count
        features = schema.sparse.count
        keys = schema.sparse.map(\.name)
        hasLabel = schema.hasLabel
        labels.reserveCapacity(hasLabel ? capacity : 0)
        dense.reserveCapacity(capacity * denseCount)
        values = schema.sparse.map { f in var v = [Int64](); v.reserveCapacity(f.multiHot ? capacity * 4 : capacity); return v }
        offsets = schema.sparse.map { _ in var o = [Int32(0)]; o.reserveCapacity(capacity + 1); return o }
        weights = Array(repeating: [], count: schema.sparse.count)
    }

    /// Appends rows `range` of a shard (offsets = the shard's per-feature offsets).
    mutating func append(_ c: ShardColumns, _ o: [[Int32]], rows range: Range<Int>) {
        if hasLabel { labels += c.labels[range] }
        if denseCount > 0 { dense += c.dense[(range.lowerBound * denseCount)..<(range.upperBound * denseCount)] }
        for f in 0..<features {
            let a = Int(o[f][range.lowerBound]), b = Int(o[f][range.upperBound])
            let base = Int32(truncatingIfNeeded: values[f].count) - o[f][range.lowerBound]
            values[f] += c.ids[f][a..<b]
            if !c.weights[f].isEmpty { weights[f] += c.weights[f][a..<b] }
            for r in range { offsets[f].append(o[f][r + 1] + base) }
        }
        rows += range.count
    }

    func finish(dedup: Bool) -> Batch {
        let kjt = KeyedJaggedTensor(keys: keys, values: values, offsets: offsets, weights: weights)
        let deduped = dedup ? (0..<features).map { DedupedFeature.dedup(kjt, feature: $0) } : nil
        return Batch(labels: labels, dense: dense, sparse: kjt, deduped: deduped)
    }
}

/// The shuffle buffer's rows, copied out of their shards: S slots of a label, the dense values and every feature's
/// ids (one-hot features in one flat array; multi-hot ones per slot, reusing each slot's capacity). Memory: S × (4 +
/// 4·dense + 8·one-hot features) bytes plus the multi-hot ids, whatever the shards.
final class ShuffleBuffer {
    let capacity: Int
    let denseCount: Int
    let oneHot: [Bool]
    var count = 0
    var labels: [Float]
    var dense: [Float]
    /// One-hot features: S × features ids (slot-major).
    var flatIDs: [Int64]
    var multiIDs: [[[Int64]]]
    var multiWeights: [[[Float]]]
    let hasLabel: Bool

    init(capacity: Int, schema: DatasetSchema) {
        self.capacity = capacity
        denseCount = schema.denseNames.count
        oneHot = schema.sparse.map { !$0.multiHot }
        hasLabel = schema.hasLabel
        labels = []
        dense = []
        flatIDs = []
        multiIDs = schema.sparse.map { _ in [] }
        multiWeights = schema.sparse.map { _ in [] }
    }

    /// Makes slots 0..<n addressable.
    func reserve(_ n: Int) {
        let f = oneHot.count
        if labels.count < n {
            labels += [Float](repeating: 0, count: n - labels.count)
            dense += [Float](repeating: 0, count: n * denseCount - dense.count)
            flatIDs += [Int64](repeating: 0, count: n * f - flatIDs.count)
            for i in 0..<f where !oneHot[i] {
                multiIDs[i] += Array(repeating: [], count: n - multiIDs[i].count)
                multiWeights[i] += Array(repeating: [], count: n - multiWeights[i].count)
            }
        }
    }

    /// Copies row `r` of a shard into `slot`.
    func store(_ slot: Int, _ c: ShardColumns, _ o: [[Int32]], _ r: Int) {
        reserve(slot + 1)
        if hasLabel { labels[slot] = c.labels[r] }
        for j in 0..<denseCount { dense[slot * denseCount + j] = c.dense[r * denseCount + j] }
        let f = oneHot.count
        for i in 0..<f {
            let a = Int(o[i][r]), b = Int(o[i][r + 1])
            if oneHot[i] {
                flatIDs[slot * f + i] = c.ids[i][a]
            } else {
                multiIDs[i][slot].removeAll(keepingCapacity: true)
                multiIDs[i][slot] += c.ids[i][a..<b]
                multiWeights[i][slot].removeAll(keepingCapacity: true)
                if !c.weights[i].isEmpty { multiWeights[i][slot] += c.weights[i][a..<b] }
            }
        }
    }

    /// Moves slot `from`'s row into slot `to`.
    func move(from: Int, to: Int) {
        guard from != to else { return }
        if hasLabel { labels[to] = labels[from] }
        for j in 0..<denseCount { dense[to * denseCount + j] = dense[from * denseCount + j] }
        let f = oneHot.count
        for i in 0..<f {
            if oneHot[i] {
                flatIDs[to * f + i] = flatIDs[from * f + i]
            } else {
                multiIDs[i].swapAt(to, from)
                multiWeights[i].swapAt(to, from)
            }
        }
    }

    /// Appends slot `slot`'s row to a batch.
    func append(_ slot: Int, to b: inout BatchBuilder) {
        if hasLabel { b.labels.append(labels[slot]) }
        if denseCount > 0 { b.dense += dense[(slot * denseCount)..<((slot + 1) * denseCount)] }
        let f = oneHot.count
        for i in 0..<f {
            if oneHot[i] {
                b.values[i].append(flatIDs[slot * f + i])
            } else {
                b.values[i] += multiIDs[i][slot]
                b.weights[i] += multiWeights[i][slot]
            }
            b.offsets[i].append(Int32(truncatingIfNeeded: b.values[i].count))
        }
        b.rows += 1
    }
}

/// A bounded blocking queue between the shard reader thread and the loader.
final class ShardQueue: @unchecked Sendable {
    enum Item { case shard(Int, ShardColumns), failed(DataError), end }
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
