import Foundation
import RecKitCore
import RecKitEmbeddings
import RecKitKernels
import RecKitModels
import RecKitTraining

/// One rank of hybrid-parallel training: embedding tables sharded by a `ShardingPlan` (`ShardedEmbeddings`, model
/// parallel), dense layers replicated on every rank with their gradients summed by allreduce (data parallel), and
/// each rank training on its contiguous share of every global batch (`RankSlicedSource`).
///
/// Why the ranks' steps add up to one process's step: each rank's loss is its samples' share of the global batch's
/// mean (gradients scaled by 1/B, not 1/b_r), so the allreduced dense gradient is the global batch's, and the
/// table owners update their rows from the pooled gradients of the whole global batch in sample order.
///
/// Determinism: with `deterministic`, gradients are summed in rank order on every rank (`allreduceSum(ordered:)`),
/// so a run is bit-reproducible at a given world size on either communicator. Across world sizes the dense
/// gradient is a sum of per-rank partial sums instead of one sum, so trajectories agree to rounding (about 1e-7
/// relative per step), not bit for bit. Without it, MPI's own allreduce runs non-blocking, overlapped with the
/// embedding backward and sparse update.
public final class DistributedTraining: TrainingDistribution, @unchecked Sendable {
    public let comm: any Communicator
    public let plan: ShardingPlan?
    public let deterministic: Bool
    /// The exchanges of the model made last (one per embedding collection).
    public internal(set) var exchanges: [ShardedEmbeddings] = []
    /// Seconds spent in the dense-gradient allreduce (waiting included) and the loss/score reductions.
    public private(set) var allreduceSeconds = 0.0
    var gradients = AlignedBuffer<Float>(count: 0)
    var pendingRequest: Int64?
    var gathered: [AlignedBuffer<Float>] = []

    public init(comm: any Communicator, plan: ShardingPlan? = nil, deterministic: Bool = true) {
        self.comm = comm; self.plan = plan; self.deterministic = deterministic
    }

    public var rank: Int { comm.rank }
    public var worldSize: Int { comm.size }

    public var summary: String {
        var kinds: [ShardingKind: Int] = [:]
        var seen = Set<String>()
        for e in exchanges { for s in e.shards where seen.insert("\(e.specs[s.table].name)").inserted { kinds[s.kind, default: 0] += 1 } }
        let tables = kinds.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", ")
        return "\(comm.backendDescription): rank \(rank) of \(worldSize); tables \(tables.isEmpty ? "none" : tables)"
            + "; \(deterministic ? "deterministic (ordered sums)" : "overlapped allreduce")"
    }

    /// Records how each table would have been made, and gives it a placeholder (the rows live in the shards).
    final class Recorder: RowStorageProvider, @unchecked Sendable {
        let lock = NSLock()
        var made: [String: (initializer: EmbeddingInitializer, optimizer: SparseOptimizerKind?)] = [:]
        func makeStorage(prefix: String, table: Int, spec: EmbeddingTableSpec, kind: RowStorageKind) throws(EmbeddingError) -> (any RowStorage)? {
            guard case let .float(optimizer, initializer) = kind else { return nil }
            lock.lock(); made[prefix] = (initializer, optimizer); lock.unlock()
            return PlaceholderRowStorage(name: spec.name, rows: spec.rows, dim: spec.dim, optimizer: optimizer)
        }
    }

    public func makeModel(_ config: any ModelConfiguration, options: TrainOptions) throws(TrainingError) -> any CTRModel {
        try makeModel(config, initialization: .random(seed: options.seed), sparseOptimizer: options.sparseOptimizer)
    }

    /// A model of `config` with every collection sharded over the group.
    public func makeModel(_ config: any ModelConfiguration, initialization: ModelInitialization,
                          sparseOptimizer: SparseOptimizerKind?) throws(TrainingError) -> any CTRModel {
        let recorder = Recorder()
        let model: any CTRModel
        do throws(ModelError) {
            model = try config.makeModel(initialization: initialization, sparseOptimizer: sparseOptimizer, quantization: nil, storage: recorder)
        } catch { throw .model(error) }
        exchanges = []
        for c in model.embeddingCollections {
            let made = recorder.made[c.prefix] ?? (EmbeddingInitializer.none, sparseOptimizer)
            do throws(DistributedError) {
                let e = try ShardedEmbeddings(prefix: c.prefix, specs: c.specs, plan: plan, comm: comm, initializer: made.initializer,
                                              optimizer: made.optimizer)
                e.attach(to: c)
                exchanges.append(e)
            } catch { throw .options(error.description) }
        }
        return model
    }

    public func adopt(_ whole: any CTRModel, into model: any CTRModel) throws(TrainingError) {
        let tensors = Dictionary(whole.stateTensors().map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for p in model.denseParameters {
            guard let t = tensors[p.name], t.elementCount == p.value.count else { throw .options("resume: \(p.name) missing or of another shape") }
            p.value.pointer.update(from: t.floats.baseAddress!, count: p.value.count)
        }
        for e in exchanges {
            guard let local = e.local else { continue }
            for (li, i) in e.localShards.enumerated() {
                let s = e.shards[i], spec = e.specs[s.table]
                guard let storage = local.storages[li] as? DenseRowStorage else { continue }
                let base = e.prefix + "." + spec.name
                guard let w = tensors[base + ".weight"], w.elementCount == spec.rows * spec.dim else {
                    throw .options("resume: \(base).weight missing or not \(spec.rows) × \(spec.dim)")
                }
                s.copy(whole: w.floats.baseAddress!, dim: spec.dim, shard: storage.weights.pointer, toShard: true)
                guard storage.state.count > 0, let st = tensors[base + ".adagrad_sum"] else { continue }
                if st.elementCount == spec.rows {           // row-wise Adagrad: one value per row
                    storage.state.pointer.update(from: st.floats.baseAddress! + s.rows.lowerBound, count: s.rows.count)
                } else {                                     // Adagrad: one per element
                    s.copy(whole: st.floats.baseAddress!, dim: spec.dim, shard: storage.state.pointer, toShard: true)
                }
            }
        }
    }

    func timed<T>(_ body: () throws(TrainingError) -> T) throws(TrainingError) -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { allreduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        return try body()
    }

    /// Runs a collective, reporting its failure as a training error.
    /// The rows (and optimizer state) of shard `i` of `e`, which this rank owns.
    func localStorage(_ e: ShardedEmbeddings, shard i: Int) -> DenseRowStorage {
        e.local!.storages[e.localShards.firstIndex(of: i)!] as! DenseRowStorage
    }

    func collective<T>(_ body: () throws(CommError) -> T) throws(TrainingError) -> T {
        do throws(CommError) { return try body() } catch { throw .options(error.description) }
    }

    public func attach(_ trainer: Trainer) throws(TrainingError) {
        let total = trainer.model.denseParameters.reduce(0) { $0 + $1.grad.count }
        gradients = AlignedBuffer(count: max(total, 1))
        trainer.denseGradientsReady = { [self] params throws(TrainingError) in
            try timed { () throws(TrainingError) in
                var o = 0
                for p in params { (gradients.pointer + o).update(from: p.grad.pointer, count: p.grad.count); o += p.grad.count }
                let buffer = UnsafeMutableBufferPointer(start: gradients.pointer, count: o)
                if !deterministic, let mpi = comm as? MPICommunicator {
                    pendingRequest = try collective { () throws(CommError) in try mpi.startAllreduce(buffer) }
                    return
                }
                try collective { () throws(CommError) in try comm.allreduceSum(buffer, ordered: deterministic) }
                unpack(params)
            }
        }
        trainer.beforeDenseUpdate = { [self] params throws(TrainingError) in
            guard let request = pendingRequest, let mpi = comm as? MPICommunicator else { return }
            pendingRequest = nil
            try timed { () throws(TrainingError) in
                try collective { () throws(CommError) in try mpi.wait(request) }
                unpack(params)
            }
        }
        trainer.reduceLoss = { [self] local throws(TrainingError) in
            try timed { () throws(TrainingError) in try collective { () throws(CommError) in try comm.sum(local) } }
        }
        trainer.gatherScores = { [self] z, y throws(TrainingError) in
            try timed { () throws(TrainingError) in
                try collective { () throws(CommError) in (try comm.allGather(z), try comm.allGather(y)) }
            }
        }
    }

    func unpack(_ params: [DenseParameter]) {
        var o = 0
        for p in params { p.grad.pointer.update(from: gradients.pointer + o, count: p.grad.count); o += p.grad.count }
    }

    public func shard(_ source: any BatchSource) -> any BatchSource { source.shard(rank: rank, of: worldSize) }

    public func abort(_ error: any Error) { comm.abort(code: 1, reason: "\(error)") }

    /// Totals over the exchanges (every embedding collection) since they were made: seconds in local lookups and
    /// updates, seconds in all-to-alls, bytes sent to other ranks.
    public var lookupSeconds: Double { exchanges.reduce(0) { $0 + $1.lookupSeconds } }
    public var allToAllSeconds: Double { exchanges.reduce(0) { $0 + $1.commSeconds } }
    public var bytesSent: Int { exchanges.reduce(0) { $0 + $1.bytesSent } }

    public func gatherTables(_ model: any CTRModel) throws(TrainingError) -> [StateTensor]? {
        try gatherTables(optimizer: model.sparseOptimizer)
    }

    /// Every table of the exchanges gathered on rank 0 (weights and `optimizer`'s state), single-process names.
    public func gatherTables(optimizer: SparseOptimizerKind?) throws(TrainingError) -> [StateTensor]? {
        let root = 0, n = comm.size
        gathered = []
        var out: [StateTensor] = []
        for e in exchanges {
            for (t, spec) in e.specs.enumerated() {
                let shardIdx = e.shards.indices.filter { e.shards[$0].table == t }
                func stateCount(_ s: Shard) -> Int { optimizer?.stateCount(rows: s.rows.count, dim: s.columns.count) ?? 0 }
                // This rank's shards of table t: weights then state, shard order.
                var mine: [Float] = []
                for i in shardIdx where e.shards[i].rank == rank {
                    let st = localStorage(e, shard: i)
                    mine.append(contentsOf: UnsafeBufferPointer(start: st.weights.pointer, count: st.weights.count))
                    mine.append(contentsOf: UnsafeBufferPointer(start: st.state.pointer, count: st.state.count))
                }
                var recvCounts = [Int](repeating: 0, count: n)
                if rank == root {
                    for i in shardIdx { let s = e.shards[i]; recvCounts[s.rank] += (s.rows.count * s.columns.count + stateCount(s)) * 4 }
                }
                var sendCounts = [Int](repeating: 0, count: n)
                sendCounts[root] = mine.count * 4
                var recv = [Float](repeating: 0, count: recvCounts.reduce(0, +) / 4)
                try collective { () throws(CommError) in
                    try mine.withUnsafeBytes { s in
                        recv.withUnsafeMutableBytes { r in
                            typed { () throws(CommError) in
                                try comm.allToAll(send: s, sendCounts: sendCounts, sendOffsets: [Int](repeating: 0, count: n),
                                                  recv: r, recvCounts: recvCounts, recvOffsets: offsets(recvCounts))
                            }
                        }
                    }.get()
                }
                guard rank == root else { continue }
                let d = spec.dim
                let weight = AlignedBuffer<Float>(count: spec.rows * d)
                let state = AlignedBuffer<Float>(count: optimizer?.stateCount(rows: spec.rows, dim: d) ?? 0)
                state.pointer.update(repeating: 0, count: state.count)
                var cursor = offsets(recvCounts).map { $0 / 4 }
                recv.withUnsafeBufferPointer { r in
                    for i in shardIdx {
                        let s = e.shards[i], cw = s.columns.count
                        let src = UnsafeMutablePointer(mutating: r.baseAddress! + cursor[s.rank])
                        s.copy(whole: weight.pointer, dim: d, shard: src, toShard: false)
                        let st = src + s.rows.count * cw
                        switch optimizer {
                        case .rowWiseAdagrad?:
                            let weight = s.rowStateWeight(dim: d)
                            for (lr, row) in s.rows.enumerated() { state.pointer[row] += weight * st[lr] }
                        case .adagrad?:
                            s.copy(whole: state.pointer, dim: d, shard: st, toShard: false)
                        case .sgd?, nil: break
                        }
                        cursor[s.rank] += s.rows.count * cw + stateCount(s)
                    }
                }
                gathered += [weight, state]
                let name = e.prefix + "." + spec.name
                out.append(StateTensor(name: name + ".weight", shape: [spec.rows, d], role: .parameter, buffer: weight))
                if let shape = optimizer?.stateShape(rows: spec.rows, dim: d) {
                    out.append(StateTensor(name: name + ".adagrad_sum", shape: shape, role: .optimizerState, buffer: state))
                }
            }
        }
        return rank == root ? out : nil
    }
}
