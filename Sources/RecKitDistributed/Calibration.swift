import Foundation
import RecKitCore
import RecKitEmbeddings
import RecKitKernels
import RecKitModels
import RecKitTraining

/// Measures the cost model's constants on this machine (`reckit bench comm`): the network between ranks (all-to-all
/// bandwidth, message latency, allreduce) with the group's communicator, and one rank's local rates (embedding
/// lookups + fused updates from DRAM and from cache, the per-bag cost, MLP GEMMs) with its thread pool.
public enum Calibration {
    public struct Result: Codable, Sendable {
        public var constants: CostConstants
        public var ranks: Int
        public var backend: String
        /// Raw measurements behind the constants.
        public var allToAllGBps: Double
        public var allToAllBytesPerPeer: Int
        public var latencyUs: Double
        public var allreduceGBps: Double
        public var allreduceFloats: Int
        enum CodingKeys: String, CodingKey {
            case constants, ranks, backend
            case allToAllGBps = "all_to_all_gbps", allToAllBytesPerPeer = "all_to_all_bytes_per_peer", latencyUs = "latency_us"
            case allreduceGBps = "allreduce_gbps", allreduceFloats = "allreduce_floats"
        }
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Median seconds of `repeats` runs of `body` after one warm-up, the same on every rank (each rank's median, then
    /// the slowest rank's, so a collective's time is the group's).
    static func median(_ comm: any Communicator, repeats: Int, _ body: () throws -> Void) throws -> Double {
        try body()
        var t: [Double] = []
        for _ in 0..<repeats { try comm.barrier(); let t0 = now(); try body(); t.append(now() - t0) }
        t.sort()
        let mine = t[t.count / 2]
        let all = try comm.allGather([Float(mine)])
        return Double(all.max() ?? Float(mine))
    }

    /// Runs on every rank of `comm` (a collective); every rank returns the same result.
    public static func run(_ comm: any Communicator, pool: ThreadPool, quick: Bool = false) throws -> Result {
        var c = CostConstants()
        let n = comm.size, reps = quick ? 5 : 20
        // Network: all-to-all of `per` bytes to every peer, and of 8 bytes (latency); allreduce of a gradient-sized buffer.
        let per = quick ? 1 << 18 : 4 << 20
        var a2aGBps = 0.0, latency = 0.0, arGBps = 0.0
        let floats = 1 << 18
        if n > 1 {
            let send = [UInt8](repeating: 1, count: per * n)
            var recv = [UInt8](repeating: 0, count: per * n)
            let counts = Array(repeating: per, count: n), offs = (0..<n).map { $0 * per }
            let big = try median(comm, repeats: reps) {
                try send.withUnsafeBytes { s in
                    try recv.withUnsafeMutableBytes { r in
                        try comm.allToAll(send: s, sendCounts: counts, sendOffsets: offs, recv: r, recvCounts: counts, recvOffsets: offs)
                    }
                }
            }
            let small = try median(comm, repeats: reps * 5) {
                try send.withUnsafeBytes { s in
                    try recv.withUnsafeMutableBytes { r in
                        try comm.allToAll(send: s, sendCounts: Array(repeating: 8, count: n), sendOffsets: offs, recv: r,
                                          recvCounts: Array(repeating: 8, count: n), recvOffsets: offs)
                    }
                }
            }
            latency = small / Double(n - 1)
            // Bytes a rank sends to its peers over the time, less the latency part.
            a2aGBps = Double(per * (n - 1)) / max(big - small, 1e-9) / 1e9
            var g = [Float](repeating: 1, count: floats)
            let ar = try median(comm, repeats: reps) {
                try g.withUnsafeMutableBufferPointer { p in try comm.allreduceSum(p, ordered: false) }
            }
            arGBps = 2 * Double(n - 1) / Double(n) * Double(floats * 4) / max(ar - 2 * Double(n - 1) * latency, 1e-9) / 1e9
            c.networkGBps = a2aGBps
            c.networkLatencyUs = latency * 1e6
        }
        // Local rates, measured on every rank at once (as in training, the ranks share the machine).
        let b = 4096, d = 16
        func lookupSeconds(rows: Int, pooling: Int, dim: Int) throws -> Double {
            let spec = EmbeddingTableSpec(name: "t", rows: rows, dim: dim)
            let col = try EmbeddingCollection.dense(prefix: "cal", specs: [spec], optimizer: .rowWiseAdagrad,
                                                    initializer: .uniform(seed: 1, firstStream: 1, bound: { _ in 0.01 }))
            var rng = SeededRandom(seed: 9)
            let ids = (0..<b * pooling).map { _ in Int64(rng.nextBelow(rows)) }
            let kjt = KeyedJaggedTensor(keys: ["t"], values: [ids], offsets: [(0...b).map { Int32($0 * pooling) }], weights: [[]])
            let ws = col.makeWorkspace()
            let out = AlignedBuffer<Float>(count: b * dim)
            let grad = AlignedBuffer<Float>(Array(repeating: 0.001, count: b * dim))
            let update = SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 0.01, weightDecay: 0)
            return try median(comm, repeats: reps) {
                try col.forward(kjt, deduped: nil, workspace: ws, output: MatrixView(base: out.pointer, rows: b, columns: dim), columnOffsets: [0],
                                training: true, pool: pool)
                try col.backward(workspace: ws, gradOutput: MatrixView(base: grad.pointer, rows: b, columns: dim), columnOffsets: [0], update: update, pool: pool)
            }
        }
        let pooling = 8
        let bytes = Double(b * pooling * d * 4)
        // Bags of one 1-wide row: almost all per-bag cost.
        let bag = try lookupSeconds(rows: 64, pooling: 1, dim: 1)
        c.bagNs = bag / Double(b) * 1e9
        let dram = try lookupSeconds(rows: quick ? 1 << 20 : 1 << 22, pooling: pooling, dim: d)
        let cache = try lookupSeconds(rows: 1024, pooling: pooling, dim: d)
        c.lookupDRAMGBps = c.lookupPasses * bytes / max(dram - bag, 1e-9) / 1e9
        c.lookupCacheGBps = c.lookupPasses * bytes / max(cache - bag, 1e-9) / 1e9
        // The dense side of a whole step: a Criteo-shaped DLRM (13 dense, 26 one-hot features, the default MLPs) with
        // 64-row tables, so lookups cost nothing, through a one-rank sharded model (its packing included), b = 1024.
        var o = TrainOptions()
        o.batchSize = 1024
        let config = DLRMConfig(denseCount: 13, tableSizes: Array(repeating: 64, count: 26), embeddingDim: o.embeddingDim,
                                bottomHidden: o.bottomHidden, topHidden: o.topHidden)
        let rows = o.batchSize
        var r = SeededRandom(seed: 5)
        let batch = Batch(labels: (0..<rows).map { _ in Float(r.nextBelow(2)) }, dense: (0..<rows * 13).map { _ in r.nextUniform() },
                          sparse: KeyedJaggedTensor(keys: config.sparse.map(\.name), oneHot: config.sparse.map { _ in (0..<rows).map { _ in Int64(r.nextBelow(64)) } }))
        let threads = pool.threadCount, options = o
        let stepSeconds = try InProcessGroup.run(size: 1) { one -> Double in
            let d = DistributedTraining(comm: one)
            let model = try d.makeModel(config, initialization: .random(seed: 1), sparseOptimizer: .rowWiseAdagrad)
            let trainer = try Trainer(model: model, optimizer: DenseOptimizer(kind: options.denseOptimizer), options: options, pool: ThreadPool(threads: threads))
            try d.attach(trainer)
            for _ in 0..<3 { try trainer.step(batch, epoch: 0) }
            var t: [Double] = []
            for _ in 0..<reps { let t0 = now(); try trainer.step(batch, epoch: 0); t.append(now() - t0) }
            return t.sorted()[t.count / 2]
        }[0]
        let all = try comm.allGather([Float(stepSeconds)])
        let step = Double(all.max() ?? Float(stepSeconds))
        let flops = DenseCost.of(try config.makeModel(initialization: .none, sparseOptimizer: nil, quantization: nil), vectors: 27, dim: o.embeddingDim)
        let speedup = threads <= 1 ? 1 : 1 + Double(threads - 1) * c.threadEfficiency
        c.mlpGFlops = flops.flopsPerSample * Double(rows) / step / speedup / 1e9
        return Result(constants: c, ranks: n, backend: comm.backendDescription, allToAllGBps: a2aGBps, allToAllBytesPerPeer: per,
                      latencyUs: latency * 1e6, allreduceGBps: arGBps, allreduceFloats: floats)
    }
}
