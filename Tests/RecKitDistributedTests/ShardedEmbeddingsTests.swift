import Foundation
import RecKitCore
@testable import RecKitDistributed
import RecKitEmbeddings
import RecKitKernels
import RecKitTestSupport
import Testing

/// Sharded lookups and updates against one process's collection on the same global batch: table-wise, row-wise and
/// column-wise shards, multi-hot and weighted bags, empty bags, a rank with no samples.
@Suite("Sharded embeddings equal the unsharded collection")
struct ShardedEmbeddingsTests {
    static let specs = [EmbeddingTableSpec(name: "a", rows: 37, dim: 8), EmbeddingTableSpec(name: "b", rows: 5, dim: 16),
                        EmbeddingTableSpec(name: "c", rows: 100, dim: 20)]
    static let initializer = EmbeddingInitializer.uniform(seed: 7, firstStream: 1, bound: { _ in 0.5 })

    /// A global batch of `b` samples: feature a multi-hot (0–3 ids, some empty), b one-hot, c weighted multi-hot.
    static func batch(_ b: Int, seed: UInt64) -> KeyedJaggedTensor {
        var d = TestData(seed: seed)
        var values: [[Int64]] = [], offs: [[Int32]] = [], weights: [[Float]] = []
        for (t, s) in specs.enumerated() {
            let lengths = t == 1 ? [Int32](repeating: 1, count: b) : d.lengths(b, maxLength: 3)
            let n = Int(lengths.reduce(0, +))
            values.append(d.ids(n, rows: s.rows)); offs.append(offsets(fromLengths: lengths))
            weights.append(t == 2 ? d.floats(n, 0.5, 1.5) : [])
        }
        return KeyedJaggedTensor(keys: specs.map(\.name), values: values, offsets: offs, weights: weights)
    }

    /// Samples `range` of `kjt`.
    static func slice(_ kjt: KeyedJaggedTensor, _ range: Range<Int>) -> KeyedJaggedTensor {
        Batch(labels: [Float](repeating: 0, count: kjt.batchSize), dense: [], sparse: kjt).slice(range, denseCount: 0).sparse
    }

    static let plans: [(String, [TablePlacement])] = [
        ("table-wise", [TablePlacement(name: "a", sharding: .tableWise, ranks: [1]), TablePlacement(name: "b", sharding: .tableWise, ranks: [0]),
                        TablePlacement(name: "c", sharding: .tableWise, ranks: [1])]),
        ("row-wise", [TablePlacement(name: "a", sharding: .rowWise, ranks: [1, 0]), TablePlacement(name: "b", sharding: .rowWise, ranks: [0, 1]),
                      TablePlacement(name: "c", sharding: .rowWise, ranks: [0, 1])]),
        ("column-wise", [TablePlacement(name: "a", sharding: .columnWise, ranks: [0, 1]), TablePlacement(name: "b", sharding: .tableWise, ranks: [1]),
                         TablePlacement(name: "c", sharding: .columnWise, ranks: [1, 0])]),
    ]

    @Test("forward and SGD backward on two ranks, one of them without samples in the second step", arguments: [0, 1, 2])
    func matchesUnsharded(planIndex: Int) throws {
        let (name, tables) = Self.plans[planIndex]
        let width = Self.specs.reduce(0) { $0 + $1.dim }
        let columnOffsets = [0, 8, 24]
        let pool = ThreadPool(threads: 1)
        // One process: the reference outputs and updated tables.
        let whole = try EmbeddingCollection.dense(prefix: "emb", specs: Self.specs, optimizer: .sgd, initializer: Self.initializer)
        let ws = whole.makeWorkspace()
        let steps = [(Self.batch(9, seed: 1), 4), (Self.batch(3, seed: 2), 3)]     // (global batch, samples on rank 0)
        var expected: [[Float]] = []
        let update = SparseUpdate(optimizer: .sgd, learningRate: 0.1, weightDecay: 0)
        for (kjt, _) in steps {
            let out = AlignedBuffer<Float>(count: kjt.batchSize * width)
            try whole.forward(kjt, deduped: nil, workspace: ws, output: MatrixView(base: out.pointer, rows: kjt.batchSize, columns: width),
                              columnOffsets: columnOffsets, training: true, pool: pool)
            expected.append(Array(UnsafeBufferPointer(start: out.pointer, count: out.count)))
            let grad = AlignedBuffer<Float>((0..<out.count).map { Float($0 % 7) * 0.01 - 0.03 })
            try whole.backward(workspace: ws, gradOutput: MatrixView(base: grad.pointer, rows: kjt.batchSize, columns: width),
                               columnOffsets: columnOffsets, update: update, pool: pool)
        }
        let wholeTables = whole.stateTensors().map { Array($0.floats) }
        let plan = ShardingPlan(worldSize: 2, tables: tables)
        let results = try InProcessGroup.run(size: 2) { comm -> ([[Float]], [[Float]]) in
            let pool = ThreadPool(threads: 1)
            let e = try ShardedEmbeddings(prefix: "emb", specs: Self.specs, plan: plan, comm: comm, initializer: Self.initializer, optimizer: .sgd)
            var outs: [[Float]] = []
            for (kjt, split) in steps {
                let range = comm.rank == 0 ? 0..<split : split..<kjt.batchSize
                let mine = Self.slice(kjt, range)
                let out = AlignedBuffer<Float>(count: max(mine.batchSize * width, 1))
                try e.forward(mine, output: MatrixView(base: out.pointer, rows: mine.batchSize, columns: width), columnOffsets: columnOffsets,
                              training: true, pool: pool)
                outs.append(Array(UnsafeBufferPointer(start: out.pointer, count: mine.batchSize * width)))
                let grad = AlignedBuffer<Float>((0..<kjt.batchSize * width).map { Float($0 % 7) * 0.01 - 0.03 })
                try e.backward(gradOutput: MatrixView(base: grad.pointer + range.lowerBound * width, rows: mine.batchSize, columns: width),
                               columnOffsets: columnOffsets, update: update, pool: pool)
            }
            // The gathered tables (rank 0), as a checkpoint would hold them.
            let dt = DistributedTraining(comm: comm, plan: plan)
            dt.exchanges = [e]
            let gathered = try ShardedEmbeddingsTests.gather(dt)
            return (outs, gathered)
        }
        for (s, (kjt, split)) in steps.enumerated() {
            let got = results[0].0[s] + results[1].0[s]
            // Row shards add partial bags: exact for one-hot bags, reassociated for multi-hot.
            assertClose(got, expected[s], name == "row-wise" ? .reassociated : .exact, "\(name) step \(s) pooled (split \(split)/\(kjt.batchSize))")
        }
        let gathered = results[0].1
        #expect(gathered.count == wholeTables.count)
        for (g, w) in zip(gathered, wholeTables) { assertClose(g, w, name == "row-wise" ? .reassociated : .exact, "\(name) updated table") }
    }

    static func gather(_ dt: DistributedTraining) throws -> [[Float]] {
        struct NoModel: Error {}
        return try dt.gatherTables(optimizer: .sgd)?.map { Array($0.floats) } ?? []
    }

    @Test("a plan naming a rank outside the group, or row shards of a mean-pooled table, is refused with the table's name")
    func refusals() {
        let bad = ShardingPlan(worldSize: 2, tables: [TablePlacement(name: "a", sharding: .tableWise, ranks: [2])])
        #expect(throws: DistributedError.self) { try bad.validate(Self.specs, worldSize: 2) }
        let mean = [EmbeddingTableSpec(name: "m", rows: 10, dim: 4, pooling: .mean)]
        let rows = ShardingPlan(worldSize: 2, tables: [TablePlacement(name: "m", sharding: .rowWise, ranks: [0, 1])])
        do { try rows.validate(mean, worldSize: 2); Issue.record("accepted") } catch { #expect(error.description.contains("table m")) }
        let wrongSize = ShardingPlan(worldSize: 4, tables: [])
        #expect(throws: DistributedError.self) { try wrongSize.validate(Self.specs, worldSize: 2) }
    }

    @Test("balanced table-wise placement: largest first onto the least-loaded rank")
    func balanced() {
        let p = ShardingPlan.balanced(Self.specs, ranks: 2)
        #expect(p.placement(of: "c")?.ranks == [0])     // 2000 elements
        #expect(p.placement(of: "a")?.ranks == [1])     // 296
        #expect(p.placement(of: "b")?.ranks == [1])     // 80
        #expect(p.rankMemoryBytes == [8000, 1504])
    }
}
