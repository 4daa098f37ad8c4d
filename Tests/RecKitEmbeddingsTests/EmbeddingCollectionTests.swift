import RecKitCore
import RecKitEmbeddings
@testable import RecKitKernels
import RecKitTestSupport
import Testing

@Suite("Embedding collections: keyed lookups, RecD dedup, storages, named state")
struct EmbeddingCollectionTests {
    static let pool = ThreadPool(threads: 2)

    static func collection(_ rows: [Int], dim: Int, optimizer: SparseOptimizerKind?, seed: UInt64 = 1,
                           pooling: PoolingMode = .sum) throws -> EmbeddingCollection {
        let specs = rows.enumerated().map { EmbeddingTableSpec(name: "t\($0.offset)", feature: "f\($0.offset)", rows: $0.element, dim: dim, pooling: pooling) }
        return try EmbeddingCollection.dense(prefix: "embeddings", specs: specs, optimizer: optimizer,
                                             initializer: .uniform(seed: seed, firstStream: 1, bound: { _ in 0.5 }))
    }

    /// One-hot batch of `b` samples with sessions of `session` samples sharing ids (RecD's duplication).
    static func sessionBatch(_ rows: [Int], b: Int, session: Int, seed: UInt64) -> KeyedJaggedTensor {
        var d = TestData(seed: seed)
        let values = rows.map { r -> [Int64] in
            var v: [Int64] = []
            var id: Int64 = 0
            for s in 0..<b { if s % session == 0 { id = d.ids(1, rows: r)[0] }; v.append(id) }
            return v
        }
        return KeyedJaggedTensor(keys: rows.indices.map { "f\($0)" }, oneHot: values)
    }

    static func run(_ c: EmbeddingCollection, _ kjt: KeyedJaggedTensor, dedup: Bool, grad: [Float], update: SparseUpdate) throws -> [Float] {
        let b = kjt.batchSize, w = c.totalDim
        let out = AlignedBuffer<Float>(count: b * w)
        let ws = c.makeWorkspace()
        c.dedupPolicy = .always
        let deduped = dedup ? kjt.keys.indices.map { DedupedFeature.dedup(kjt, feature: $0) } : nil
        let offsets = c.specs.indices.map { $0 * c.specs[0].dim }
        try c.forward(kjt, deduped: deduped, workspace: ws, output: MatrixView(base: out.pointer, rows: b, columns: w),
                      columnOffsets: offsets, training: true, pool: pool)
        let g = AlignedBuffer(grad)
        try c.backward(workspace: ws, gradOutput: MatrixView(base: g.pointer, rows: b, columns: w), columnOffsets: offsets,
                       update: update, pool: pool)
        #expect(ws.dedupedTables == (dedup ? c.specs.count : 0), "every table must take the distinct-bag path")
        return out.toArray()
    }

    static func state(_ c: EmbeddingCollection) -> [[UInt32]] {
        c.stateTensors().map { t in Array(t.floats).map(\.bitPattern) }
    }

    @Test("one-hot features: dedup gives bit-identical pooled outputs and updates (every sparse optimizer, sum and mean)",
          arguments: SparseOptimizerKind.allCases)
    func dedupBitIdentical(optimizer: SparseOptimizerKind) throws {
        let rows = [40, 300, 5, 1000]
        for (b, session) in [(256, 8), (100, 3), (17, 1), (1, 1)] {
          for pooling in PoolingMode.allCases {
            let kjt = Self.sessionBatch(rows, b: b, session: session, seed: UInt64(b))
            if session > 1 { #expect(DedupedFeature.dedup(kjt, feature: 0).dedupFactor > 1.5) }
            var d = TestData(seed: 9)
            let grad = d.floats(b * rows.count * 16)
            let update = SparseUpdate(optimizer: optimizer, learningRate: 0.1, weightDecay: 0.01)
            let plain = try Self.collection(rows, dim: 16, optimizer: optimizer, pooling: pooling)
            let deduped = try Self.collection(rows, dim: 16, optimizer: optimizer, pooling: pooling)
            let a = try Self.run(plain, kjt, dedup: false, grad: grad, update: update)
            let c = try Self.run(deduped, kjt, dedup: true, grad: grad, update: update)
            #expect(a.map(\.bitPattern) == c.map(\.bitPattern), "forward, B \(b), session \(session)")
            #expect(Self.state(plain) == Self.state(deduped), "rows and optimizer state after the update, B \(b), session \(session)")
          }
        }
    }

    @Test("multi-hot and weighted features: dedup equals the per-sample path within rounding")
    func dedupMultiHot() throws {
        var d = TestData(seed: 3)
        let b = 64
        var lengths: [Int32] = []
        for s in 0..<b { lengths.append(s % 8 == 0 ? 0 : Int32(1 + (s / 8) % 3)) }
        var values: [Int64] = [], weights: [Float] = []
        var cache: [Int: ([Int64], [Float])] = [:]
        for s in 0..<b {
            let key = s / 8  // sessions of 8 share their bag
            if cache[key] == nil || Int32(cache[key]!.0.count) != lengths[s] {
                cache[key] = (d.ids(Int(lengths[s]), rows: 50), d.floats(Int(lengths[s]), 0.5, 1.5))
            }
            values += cache[key]!.0; weights += cache[key]!.1
        }
        let kjt = KeyedJaggedTensor(keys: ["f0"], values: [values], offsets: [offsets(fromLengths: lengths)], weights: [weights])
        let grad = d.floats(b * 8)
        let update = SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 0.1)
        let plain = try Self.collection([50], dim: 8, optimizer: .rowWiseAdagrad), deduped = try Self.collection([50], dim: 8, optimizer: .rowWiseAdagrad)
        let a = try Self.run(plain, kjt, dedup: false, grad: grad, update: update)
        let c = try Self.run(deduped, kjt, dedup: true, grad: grad, update: update)
        #expect(a == c, "pooling the same bag gives the same bits")
        for (x, y) in zip(plain.stateTensors(), deduped.stateTensors()) {
            assertClose(Array(x.floats), Array(y.floats), .reassociated, x.name)
        }
    }

    @Test("the auto policy: one-hot features keep the per-sample path, pooled bags shared by a session take their distinct bags")
    func autoPolicy() throws {
        var d = TestData(seed: 5)
        let b = 64, pooling = 20
        // f0: one-hot in sessions of 8 (dedup factor 8, but nothing saved); f1: 20-id histories shared by sessions
        // of 2 (reads 20·B → 10·B); f2: 20-id bags all distinct (nothing shared).
        let oneHot = Self.sessionBatch([100], b: b, session: 8, seed: 7).values[0]
        var shared: [Int64] = [], distinct: [Int64] = []
        for s in 0..<b {
            if s % 2 == 0 { shared += d.ids(pooling, rows: 1000) } else { shared += shared.suffix(pooling) }
            distinct += d.ids(pooling, rows: 1000)
        }
        let bagOffsets = offsets(fromLengths: Array(repeating: Int32(pooling), count: b))
        let kjt = KeyedJaggedTensor(keys: ["f0", "f1", "f2"], values: [oneHot, shared, distinct],
                                    offsets: [offsets(fromLengths: Array(repeating: 1, count: b)), bagOffsets, bagOffsets], weights: [[], [], []])
        let deduped = kjt.keys.indices.map { DedupedFeature.dedup(kjt, feature: $0) }
        let policy = DedupPolicy.auto
        #expect(!policy.usesDistinctBags(deduped[0], values: b, batchSize: b))
        #expect(policy.usesDistinctBags(deduped[1], values: b * pooling, batchSize: b))
        #expect(!policy.usesDistinctBags(deduped[2], values: b * pooling, batchSize: b))
        let c = try Self.collection([100, 1000, 1000], dim: 16, optimizer: .rowWiseAdagrad)
        let ws = c.makeWorkspace()
        let out = AlignedBuffer<Float>(count: b * c.totalDim)
        try c.forward(kjt, deduped: deduped, workspace: ws, output: MatrixView(base: out.pointer, rows: b, columns: c.totalDim),
                      columnOffsets: [0, 16, 32], training: false, pool: Self.pool)
        #expect(ws.dedupedTables == 1)
        #expect(ws.dedupFactor == 2)
    }

    @Test("features are found by key; a missing key and a bad inverse index are typed errors naming the table")
    func keyedAndValidated() throws {
        let c = try Self.collection([10, 10], dim: 4, optimizer: nil)
        let ws = c.makeWorkspace()
        let out = AlignedBuffer<Float>(count: 2 * 8)
        let view = MatrixView(base: out.pointer, rows: 2, columns: 8)
        let kjt = KeyedJaggedTensor(keys: ["f1", "zz"], oneHot: [[1, 2], [3, 4]])
        do {
            try c.forward(kjt, deduped: nil, workspace: ws, output: view, columnOffsets: [0, 4], training: false, pool: Self.pool)
            Issue.record("missing f0 accepted")
        } catch { #expect(error == .missingFeature(table: "t0", feature: "f0", available: ["f1", "zz"])) }
        // Two samples sharing their bag (the distinct-bag path forced), one inverse index corrupted.
        c.dedupPolicy = .always
        let shared = KeyedJaggedTensor(keys: ["f1", "f0"], oneHot: [[1, 1], [3, 3]])
        var d = [DedupedFeature.dedup(shared, feature: 0), DedupedFeature.dedup(shared, feature: 1)]
        d[1].inverse[1] = 7
        do {
            try c.forward(shared, deduped: d, workspace: ws, output: view, columnOffsets: [0, 4], training: false, pool: Self.pool)
            Issue.record("inverse index 7 of 1 distinct bag accepted")
        } catch { #expect("\(error)".contains("t0") && "\(error)".contains("inverse"), "\(error)") }
        let good = KeyedJaggedTensor(keys: ["f1", "f0"], oneHot: [[1, 2], [3, 9]])
        let outOfRange = KeyedJaggedTensor(keys: ["f0", "f1"], oneHot: [[1, 2], [3, 10]])
        do {
            try c.forward(outOfRange, deduped: nil, workspace: ws, output: view, columnOffsets: [0, 4], training: false, pool: Self.pool)
            Issue.record("id 10 of a 10-row table accepted")
        } catch { #expect("\(error)".contains("t1"), "\(error)") }
        // Keys in another order route to the same tables.
        try c.forward(good, deduped: nil, workspace: ws, output: view, columnOffsets: [0, 4], training: false, pool: Self.pool)
        let first = out.toArray()
        let reordered = KeyedJaggedTensor(keys: ["f0", "f1"], oneHot: [[3, 9], [1, 2]])
        try c.forward(reordered, deduped: nil, workspace: ws, output: view, columnOffsets: [0, 4], training: false, pool: Self.pool)
        #expect(out.toArray() == first)
    }

    @Test("quantized storage: the same lookups as dequantized rows; read-only; named U8 tensors")
    func quantizedStorage() throws {
        let c = try Self.collection([30, 20], dim: 16, optimizer: nil)
        let q = try c.quantizing(to: .int8)
        #expect(q.quantization == .int8)
        let kjt = Self.sessionBatch([30, 20], b: 12, session: 2, seed: 4)
        let ws = q.makeWorkspace()
        let out = AlignedBuffer<Float>(count: 12 * 32)
        try q.forward(kjt, deduped: nil, workspace: ws, output: MatrixView(base: out.pointer, rows: 12, columns: 32),
                      columnOffsets: [0, 16], training: true, pool: Self.pool)
        for t in 0..<2 {
            let table = (q.storages[t] as! QuantizedRowStorage).table
            for s in 0..<12 {
                let row = table.dequantizedRow(Int(kjt.values[t][s]))
                for j in 0..<16 { #expect(out.pointer[s * 32 + t * 16 + j] == row[j]) }
            }
        }
        let grad = AlignedBuffer<Float>(count: 12 * 32)
        #expect(throws: EmbeddingError.self) {
            try q.backward(workspace: ws, gradOutput: MatrixView(base: grad.pointer, rows: 12, columns: 32), columnOffsets: [0, 16],
                           update: SparseUpdate(optimizer: .sgd, learningRate: 1), pool: Self.pool)
        }
        let names = q.stateTensors().map { "\($0.name) \($0.dtype.rawValue) \($0.shape)" }
        #expect(names == ["embeddings.t0.weight U8 [30, 20]", "embeddings.t1.weight U8 [20, 20]"])
        #expect(try Self.collection([5], dim: 4, optimizer: .rowWiseAdagrad).stateTensors().map(\.name) == ["embeddings.t0.weight", "embeddings.t0.adagrad_sum"])
    }
}
