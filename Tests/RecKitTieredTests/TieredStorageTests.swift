import Foundation
import RecKitCore
import RecKitEmbeddings
import RecKitKernels
@testable import RecKitTiered
import RecKitTestSupport
import Testing

/// The bytes of a tensor, from memory or streamed from its source.
func tensorBytes(_ t: StateTensor) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: t.byteCount)
    if let source = t.source {
        // Odd chunk sizes: ranges that start and end inside rows.
        var offset = 0
        while offset < out.count {
            let n = min(1_000 + offset % 7, out.count - offset)
            try out.withUnsafeMutableBytes { raw in try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[offset..<(offset + n)]), at: offset) }
            offset += n
        }
    } else {
        out.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(t.data)) }
    }
    return out
}

func tierDirectory(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-tier-\(getpid())-\(name)").path
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite("Tiered storage: a RAM cache over a file, bit-identical to RAM")
struct TieredStorageTests {
    static let pool = ThreadPool(threads: 2)

    @Test("the slot map agrees with a dictionary under random inserts and removals (backward-shift deletion)")
    func slotMap() {
        var map = SlotMap(slots: 100)
        var reference: [Int64: Int32] = [:]
        var rng = SeededRandom(seed: 5)
        for step in 0..<20_000 {
            let key = Int64(rng.nextBelow(300))
            if reference[key] == nil, reference.count < 100 {
                map.insert(key, Int32(step % 1000)); reference[key] = Int32(step % 1000)
            } else if reference[key] != nil, rng.nextBelow(2) == 0 {
                map.remove(key); reference[key] = nil
            }
            if step % 97 == 0 {
                for k in 0..<300 { #expect(map.find(Int64(k)) == reference[Int64(k)] ?? -1) }
            }
        }
    }

    static func specs(_ rows: [Int], dim: Int) -> [EmbeddingTableSpec] {
        rows.enumerated().map { EmbeddingTableSpec(name: "t\($0.offset)", feature: "f\($0.offset)", rows: $0.element, dim: dim) }
    }

    /// Zipf-like ids with a few hot rows, multi-hot bags of 0–3 ids.
    static func batch(_ rows: [Int], b: Int, rng: inout SeededRandom) -> KeyedJaggedTensor {
        var values: [[Int64]] = [], offsets: [[Int32]] = []
        for r in rows {
            var v: [Int64] = [], o: [Int32] = [0]
            for _ in 0..<b {
                for _ in 0..<rng.nextBelow(4) {
                    let hot = rng.nextBelow(3) != 0
                    v.append(Int64(hot ? rng.nextBelow(max(1, r / 20)) : rng.nextBelow(r)))
                }
                o.append(Int32(v.count))
            }
            values.append(v); offsets.append(o)
        }
        return KeyedJaggedTensor(keys: rows.indices.map { "f\($0)" }, values: values, offsets: offsets, weights: rows.map { _ in [] })
    }

    @Test("training through a small cache (every policy, every sparse optimizer, both I/O engines, with prefetch): the same pooled rows and the same tables and optimizer state as in RAM, bit for bit",
          arguments: CachePolicy.allCases, SparseOptimizerKind.allCases)
    func bitIdentical(policy: CachePolicy, optimizer: SparseOptimizerKind) throws {
        for engine in TierIOEngine.allCases {
            let rows = [500, 3000, 7], dim = 16, b = 64
            let specs = Self.specs(rows, dim: dim)
            let initializer = EmbeddingInitializer.uniform(seed: 3, firstStream: 1, bound: { _ in 0.5 })
            // 250 kB: 300 slots for the 500-row table (the floor), ~1,200–1,900 for the 3,000-row one.
            var options = TierOptions(directory: tierDirectory("bits-\(policy)-\(optimizer)-\(engine)"), cacheBytes: 250_000)
            options.policy = policy
            options.io = engine
            options.minimumTableBytes = 1_000  // the 7-row table stays in RAM
            options.minimumSlots = 300        // 300 of 500 and of 3000 rows: evictions every batch
            let provider = try TieredStorageProvider(options: options, tables: specs.map { ("embeddings", $0) }, optimizer: optimizer)
            let ram = try EmbeddingCollection.dense(prefix: "embeddings", specs: specs, optimizer: optimizer, initializer: initializer)
            let tiered = try EmbeddingCollection.dense(prefix: "embeddings", specs: specs, optimizer: optimizer, initializer: initializer, provider: provider)
            #expect(tiered.storages.map { $0 is TieredRowStorage } == [true, true, false])
            let wsA = ram.makeWorkspace(), wsB = tiered.makeWorkspace()
            let out = AlignedBuffer<Float>(count: b * dim * rows.count), out2 = AlignedBuffer<Float>(count: b * dim * rows.count)
            let offsets = rows.indices.map { $0 * dim }
            var rng = SeededRandom(seed: 11)
            var next = Self.batch(rows, b: b, rng: &rng)
            var d = TestData(seed: 4)
            for step in 0..<30 {
                let kjt = next
                next = Self.batch(rows, b: b, rng: &rng)
                let view = MatrixView(base: out.pointer, rows: b, columns: dim * rows.count)
                let view2 = MatrixView(base: out2.pointer, rows: b, columns: dim * rows.count)
                try ram.forward(kjt, deduped: nil, workspace: wsA, output: view, columnOffsets: offsets, training: true, pool: Self.pool)
                try tiered.forward(kjt, deduped: nil, workspace: wsB, output: view2, columnOffsets: offsets, training: true, pool: Self.pool)
                tiered.prefetch(next)
                let (a, t) = (out.toArray().map(\.bitPattern), out2.toArray().map(\.bitPattern))
                #expect(a == t, "forward, step \(step): \(zip(a, t).filter { $0 != $1 }.count) of \(a.count) values differ")
                let grad = AlignedBuffer(d.floats(b * dim * rows.count))
                let g = MatrixView(base: grad.pointer, rows: b, columns: dim * rows.count)
                let update = SparseUpdate(optimizer: optimizer, learningRate: 0.05, weightDecay: 0.001)
                try ram.backward(workspace: wsA, gradOutput: g, columnOffsets: offsets, update: update, pool: Self.pool)
                try tiered.backward(workspace: wsB, gradOutput: g, columnOffsets: offsets, update: update, pool: Self.pool)
            }
            let stats = provider.stats
            #expect(stats.misses > 300 && stats.writtenBack > 0, "the cache must have evicted dirty rows: \(stats)")
            #expect(stats.prefetchHits > 0, "the prefetch must have served rows")
            for (a, t) in zip(ram.stateTensors(), tiered.stateTensors()) {
                #expect(a.name == t.name && a.shape == t.shape)
                let (x, y) = (try tensorBytes(a), try tensorBytes(t))
                #expect(x == y, "\(a.name) after 30 steps (\(policy), \(optimizer), \(engine)): \(zip(x, y).filter { $0 != $1 }.count) bytes differ")
            }
        }
    }

    @Test("a checkpoint's tensors stream into a tiered table (the cache is dropped) and back out unchanged; pinned rows come back")
    func streamInAndOut() throws {
        let specs = Self.specs([2000], dim: 8)
        var options = TierOptions(directory: tierDirectory("stream"), cacheBytes: 1 << 20)
        options.minimumTableBytes = 0
        options.minimumSlots = 100
        var placement = TierPlacement(stats: "", cacheBytes: 0, recordBytes: [:],
                                      tables: [.init(name: "embeddings.t0", mode: .tiered, cacheRows: 100, pinnedRows: 3, expectedHitRate: 0)],
                                      expectedHitRate: 0)
        placement.tables[0].pinnedIDs = [5, 6, 7]
        options.placement = placement
        let provider = try TieredStorageProvider(options: options, tables: specs.map { ("embeddings", $0) }, optimizer: .rowWiseAdagrad)
        let tiered = try EmbeddingCollection.dense(prefix: "embeddings", specs: specs, optimizer: .rowWiseAdagrad, initializer: .none, provider: provider)
        let storage = try #require(tiered.storages[0] as? TieredRowStorage)
        #expect(storage.pinnedCount == 3)
        var d = TestData(seed: 8)
        let weights = d.floats(2000 * 8), sums = d.floats(2000)
        let tensors = tiered.stateTensors()
        for (t, values) in zip(tensors, [weights, sums]) {
            try values.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {  // chunks that cut rows
                    let n = min(999, raw.count - offset)
                    try t.source!.write(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + n)]), at: offset)
                    offset += n
                }
            }
        }
        #expect(try tensorBytes(tensors[0]) == weights.withUnsafeBytes { Array($0) })
        #expect(try tensorBytes(tensors[1]) == sums.withUnsafeBytes { Array($0) })
        // A lookup after the load sees the loaded rows (and pins rows 5, 6, 7 again first).
        let ws = tiered.makeWorkspace()
        let out = AlignedBuffer<Float>(count: 8)
        try tiered.forward(KeyedJaggedTensor(keys: ["f0"], oneHot: [[1234]]), deduped: nil, workspace: ws,
                           output: MatrixView(base: out.pointer, rows: 1, columns: 8), columnOffsets: [0], training: false, pool: Self.pool)
        #expect(out.toArray() == Array(weights[(1234 * 8)..<(1235 * 8)]))
        #expect(storage.cache.map.find(6) >= 0 && storage.cache.pinned.pointer[Int(storage.cache.map.find(6))] == 1)
    }

    @Test("a table failing while the tables resolve in parallel fails the batch naming it; the others end theirs and training goes on as in RAM")
    func failureWhileResolvingInParallel() throws {
        let rows = [400, 400, 400], dim = 4, b = 3
        let specs = Self.specs(rows, dim: dim)
        let initializer = EmbeddingInitializer.uniform(seed: 9, firstStream: 1, bound: { _ in 0.5 })
        var options = TierOptions(directory: tierDirectory("parallel-failure"), cacheBytes: 100_000)
        options.minimumTableBytes = 0
        options.minimumSlots = 100
        let provider = try TieredStorageProvider(options: options, tables: specs.map { ("embeddings", $0) }, optimizer: .rowWiseAdagrad)
        let tiered = try EmbeddingCollection.dense(prefix: "embeddings", specs: specs, optimizer: .rowWiseAdagrad, initializer: initializer, provider: provider)
        let ram = try EmbeddingCollection.dense(prefix: "embeddings", specs: specs, optimizer: .rowWiseAdagrad, initializer: initializer)
        #expect(tiered.storages.allSatisfy { $0 is TieredRowStorage })
        let wsT = tiered.makeWorkspace(), wsR = ram.makeWorkspace()
        let out = AlignedBuffer<Float>(count: b * dim * 3), out2 = AlignedBuffer<Float>(count: b * dim * 3)
        let view = MatrixView(base: out.pointer, rows: b, columns: dim * 3), view2 = MatrixView(base: out2.pointer, rows: b, columns: dim * 3)
        let offsets = [0, dim, 2 * dim]
        let bad = KeyedJaggedTensor(keys: ["f0", "f1", "f2"], oneHot: [[1, 2, 3], [4, 400, 5], [6, 7, 8]])
        do {
            try tiered.forward(bad, deduped: nil, workspace: wsT, output: view, columnOffsets: offsets, training: true, pool: Self.pool)
            Issue.record("row 400 of a 400-row table accepted")
        } catch {
            #expect("\(error)".contains("embeddings.t1"), "\(error)")
        }
        let update = SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 0.05)
        var d = TestData(seed: 10)
        for step in 0..<3 {
            let good = KeyedJaggedTensor(keys: ["f0", "f1", "f2"], oneHot: [[1, 2, Int64(3 + step)], [4, 399, 5], [6, 7, Int64(100 * step)]])
            try ram.forward(good, deduped: nil, workspace: wsR, output: view, columnOffsets: offsets, training: true, pool: Self.pool)
            try tiered.forward(good, deduped: nil, workspace: wsT, output: view2, columnOffsets: offsets, training: true, pool: Self.pool)
            #expect(out.toArray().map(\.bitPattern) == out2.toArray().map(\.bitPattern), "step \(step)")
            let grad = AlignedBuffer(d.floats(b * dim * 3))
            let g = MatrixView(base: grad.pointer, rows: b, columns: dim * 3)
            try ram.backward(workspace: wsR, gradOutput: g, columnOffsets: offsets, update: update, pool: Self.pool)
            try tiered.backward(workspace: wsT, gradOutput: g, columnOffsets: offsets, update: update, pool: Self.pool)
        }
        for (a, t) in zip(ram.stateTensors(), tiered.stateTensors()) { #expect(try tensorBytes(a) == tensorBytes(t), "\(a.name)") }
    }

    @Test("a cache smaller than one batch's distinct rows is a clear error naming the table")
    func tooSmall() throws {
        let specs = Self.specs([1000], dim: 4)
        var options = TierOptions(directory: tierDirectory("small"), cacheBytes: 650)
        options.minimumTableBytes = 0
        options.minimumSlots = 10
        let provider = try TieredStorageProvider(options: options, tables: specs.map { ("embeddings", $0) }, optimizer: nil)
        let c = try EmbeddingCollection.dense(prefix: "embeddings", specs: specs, optimizer: nil, initializer: .zeros, provider: provider)
        let out = AlignedBuffer<Float>(count: 20 * 4)
        do {
            try c.forward(KeyedJaggedTensor(keys: ["f0"], oneHot: [(0..<20).map { Int64($0) }]), deduped: nil, workspace: c.makeWorkspace(),
                          output: MatrixView(base: out.pointer, rows: 20, columns: 4), columnOffsets: [0], training: false, pool: Self.pool)
            Issue.record("20 distinct rows through a 10-row cache accepted")
        } catch {
            #expect("\(error)".contains("embeddings.t0") && "\(error)".contains("--cache-mb"), "\(error)")
        }
    }

    @Test("an unwritable tier directory is refused before any table is built")
    func badDirectory() {
        var options = TierOptions(directory: "/proc/reckit-nowhere", cacheBytes: 1 << 20)
        options.minimumTableBytes = 0
        #expect(throws: EmbeddingError.self) {
            _ = try TieredStorageProvider(options: options, tables: Self.specs([100], dim: 4).map { ("embeddings", $0) }, optimizer: nil)
        }
    }
}
