import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitData
@testable import RecKitDistributed
import RecKitEmbeddings
import RecKitKernels
import RecKitModels
import RecKitTestSupport
@testable import RecKitTraining
import Testing

/// Hybrid-parallel training on 1, 2 and 4 in-process ranks against the single-process trainer at the same global
/// batch: per-step losses, the final tables, and checkpoints written at one world size and read at another.
@Suite("Distributed training equals the single-process trainer", .serialized)
struct DistributedTrainingTests {
    /// 1200 synthetic rows, tables 30, 30, 7, 300 (multi-hot where the synthesizer makes them), two user tables.
    static let dataset: ShardDataset = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-dist-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        var o = SynthOptions(rows: 1200, output: dir, seed: 5)
        o.tables = [30, 30, 7, 300]
        o.userTables = 2
        o.shardRows = 400
        _ = try! Synthesizer.run(o)
        return try! ShardDataset(directory: dir)
    }()

    static func options(_ kind: ModelKind, sparse: SparseOptimizerKind = .rowWiseAdagrad) -> TrainOptions {
        var o = TrainOptions()
        o.batchSize = 100          // 11 full steps of 100 and one of 50 (rows 0 ..< 1150): shares of 25, 25, 25, 25 at np 4
        o.epochs = 1
        o.embeddingDim = 8
        o.bottomHidden = [16]
        o.topHidden = [16]
        o.crossLayers = 2
        o.sparseOptimizer = sparse
        o.seed = 3
        o.threads = 1
        return o
    }

    static var train: ShardBatchSource { ShardBatchSource(dataset: dataset, rows: 0..<1150, batchSize: 100) }

    /// Per-step losses of one process.
    static func single(_ kind: ModelKind, _ o: TrainOptions) throws -> (losses: [Double], tables: [String: [Float]], dense: [[Float]]) {
        let model = try o.modelConfiguration(kind, schema: dataset.schema).makeModel(initialization: .random(seed: o.seed), sparseOptimizer: o.sparseOptimizer,
                                                                                    quantization: nil)
        let trainer = try Trainer(model: model, optimizer: DenseOptimizer(kind: o.denseOptimizer), options: o, pool: ThreadPool(threads: 1))
        var losses: [Double] = []
        let stream = try train.batches(epoch: 0, skip: 0)
        while let b = try stream.next() { losses.append(try trainer.step(b, epoch: 0)) }
        let tables = Dictionary(uniqueKeysWithValues: model.embeddingCollections.flatMap { $0.stateTensors() }.map { ($0.name, Array($0.floats)) })
        return (losses, tables, model.denseParameters.map { Array(UnsafeBufferPointer(start: $0.value.pointer, count: $0.value.count)) })
    }

    /// Per-step losses on `ranks` in-process ranks (rank 0's view), the gathered tables and rank 0's dense parameters.
    static func distributed(_ kind: ModelKind, _ o: TrainOptions, ranks: Int, plan: ShardingPlan? = nil)
        throws -> (losses: [Double], tables: [String: [Float]], dense: [[Float]]) {
        let results = try InProcessGroup.run(size: ranks) { comm -> ([Double], [String: [Float]], [[Float]]) in
            let dt = DistributedTraining(comm: comm, plan: plan, deterministic: true)
            let model = try dt.makeModel(o.modelConfiguration(kind, schema: dataset.schema), options: o)
            let trainer = try Trainer(model: model, optimizer: DenseOptimizer(kind: o.denseOptimizer), options: o, pool: ThreadPool(threads: 1))
            try dt.attach(trainer)
            var losses: [Double] = []
            let stream = try dt.shard(train).batches(epoch: 0, skip: 0)
            while let b = try stream.next() { losses.append(try trainer.step(b, epoch: 0)) }
            let tables = try dt.gatherTables(model) ?? []
            return (losses, Dictionary(uniqueKeysWithValues: tables.map { ($0.name, Array($0.floats)) }),
                    model.denseParameters.map { Array(UnsafeBufferPointer(start: $0.value.pointer, count: $0.value.count)) })
        }
        // Every rank saw the same global losses and holds the same dense parameters.
        for r in results.dropFirst() { #expect(r.0 == results[0].0); #expect(r.2 == results[0].2) }
        return results[0]
    }

    /// |a − b| ≤ rtol·max(|a|, |b|) + atol per step.
    static func close(_ a: [Double], _ b: [Double], rtol: Double) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= rtol * max(abs($0), abs($1)) + 1e-9 }
    }

    @Test("DLRM, DCNv2 and FM: np 1, 2, 4 give the single process's loss trajectory (np 1 bit for bit, 2 and 4 within 1e-6)",
          arguments: [ModelKind.dlrm, .dcnv2, .fm])
    func trajectories(kind: ModelKind) throws {
        let o = Self.options(kind)
        let reference = try Self.single(kind, o)
        #expect(reference.losses.count == 12)
        let one = try Self.distributed(kind, o, ranks: 1)
        #expect(one.losses == reference.losses, "np 1 is the single-process computation")
        for ranks in [2, 4] {
            let d = try Self.distributed(kind, o, ranks: ranks)
            #expect(Self.close(d.losses, reference.losses, rtol: 1e-6), "np \(ranks) losses \(d.losses) vs \(reference.losses)")
            for (name, table) in reference.tables {
                let got = try #require(d.tables[name], "gathered \(name)")
                assertClose(got, table, Tolerance(rtol: 1e-4, atol: 1e-6, reason: "rounding of the dense gradient sums, carried for 12 steps"), "np \(ranks) \(name)")
            }
            // Bit-reproducible at a given world size.
            let again = try Self.distributed(kind, o, ranks: ranks)
            #expect(again.losses == d.losses)
        }
    }

    @Test("row-wise and column-wise shards (SGD tables) on 2 and 4 ranks follow the same trajectory")
    func shardingKinds() throws {
        let o = Self.options(.dlrm, sparse: .sgd)
        let reference = try Self.single(.dlrm, o)
        let names = Self.dataset.schema.sparse.map(\.name)
        for ranks in [2, 4] {
            var tables: [TablePlacement] = []
            for (i, n) in names.enumerated() {
                switch i % 3 {
                case 0: tables.append(TablePlacement(name: n, sharding: .rowWise, ranks: Array((0..<ranks).reversed())))
                case 1: tables.append(TablePlacement(name: n, sharding: .columnWise, ranks: Array(0..<min(ranks, 2))))
                default: tables.append(TablePlacement(name: n, sharding: .tableWise, ranks: [i % ranks]))
                }
            }
            let d = try Self.distributed(.dlrm, o, ranks: ranks, plan: ShardingPlan(worldSize: ranks, tables: tables))
            #expect(Self.close(d.losses, reference.losses, rtol: 1e-5), "np \(ranks): \(d.losses) vs \(reference.losses)")
        }
    }

    @Test("every rank writes its shards into the one checkpoint: table-, row- and column-wise shards with row-wise Adagrad or Adagrad state load as the gathered tables, bit for bit; a file rank 0 cannot create fails every rank")
    func shardsWrittenByEveryRank() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-dist-shards-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let names = Self.dataset.schema.sparse.map(\.name)
        let ranks = 4
        var tables: [TablePlacement] = []
        for (i, n) in names.enumerated() {
            switch i % 3 {
            case 0: tables.append(TablePlacement(name: n, sharding: .rowWise, ranks: [3, 1, 0]))
            case 1: tables.append(TablePlacement(name: n, sharding: .columnWise, ranks: [2, 0]))
            default: tables.append(TablePlacement(name: n, sharding: .tableWise, ranks: [i % ranks]))
            }
        }
        let plan = ShardingPlan(worldSize: ranks, tables: tables)
        let half = ShardBatchSource(dataset: Self.dataset, rows: 0..<600, batchSize: 100)
        for sparse in [SparseOptimizerKind.rowWiseAdagrad, .adagrad] {
            let o = Self.options(.dlrm, sparse: sparse)
            let path = dir + "/\(sparse.rawValue).safetensors", missing = dir + "/no-such-dir/x.safetensors"
            let results = try InProcessGroup.run(size: ranks) { comm -> [String: [Float]] in
                let dt = DistributedTraining(comm: comm, plan: plan)
                let model = try dt.makeModel(o.modelConfiguration(.dlrm, schema: Self.dataset.schema), options: o)
                let trainer = try Trainer(model: model, optimizer: DenseOptimizer(kind: o.denseOptimizer), options: o, pool: ThreadPool(threads: 1))
                try dt.attach(trainer)
                let stream = try dt.shard(half).batches(epoch: 0, skip: 0)
                while let b = try stream.next() { try trainer.step(b, epoch: 0) }
                let gathered = try dt.gatherTables(model) ?? []
                try TrainingCheckpoint.save(model: model, optimizer: trainer.optimizer, options: o, position: trainer.position,
                                            schema: Self.dataset.schema, rowsSeen: 600, to: path, distribution: dt)
                // Rank 0 cannot create the file: every rank hears it and throws, none waits forever.
                #expect(throws: TrainingError.self) {
                    try TrainingCheckpoint.save(model: model, optimizer: trainer.optimizer, options: o, position: trainer.position,
                                                schema: Self.dataset.schema, rowsSeen: 600, to: missing, distribution: dt)
                }
                return Dictionary(uniqueKeysWithValues: gathered.map { ($0.name, Array($0.floats)) })
            }
            let resumed = try TrainingCheckpoint.resume(path)
            let loaded = Dictionary(uniqueKeysWithValues: resumed.model.embeddingCollections.flatMap { $0.stateTensors() }.map { ($0.name, Array($0.floats)) })
            #expect(Set(loaded.keys) == Set(results[0].keys) && loaded.count == names.count * 2, "\(loaded.keys.sorted())")
            for (name, values) in results[0] { #expect(loaded[name] == values, "\(sparse.rawValue): \(name) differs from the gathered table") }
            #expect(resumed.position.step == 6)
        }
        // Nothing but the two checkpoints is left (no temporary files).
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["adagrad.safetensors", "rowwise_adagrad.safetensors"])
    }

    @Test("a checkpoint written at np 4 (each rank its shards) is the single-process format: it loads at np 2 and in one process, and training continues")
    func worldSizeFreeCheckpoint() throws {
        let o = Self.options(.dlrm)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-dist-ckpt-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/np4.safetensors"
        let half = ShardBatchSource(dataset: Self.dataset, rows: 0..<600, batchSize: 100)
        let rest = ShardBatchSource(dataset: Self.dataset, rows: 600..<1150, batchSize: 100)
        // np 4 trains on the first half and writes the checkpoint, each rank its shards.
        _ = try InProcessGroup.run(size: 4) { comm -> Int in
            let dt = DistributedTraining(comm: comm)
            let model = try dt.makeModel(o.modelConfiguration(.dlrm, schema: Self.dataset.schema), options: o)
            let trainer = try Trainer(model: model, optimizer: DenseOptimizer(kind: o.denseOptimizer), options: o, pool: ThreadPool(threads: 1))
            try dt.attach(trainer)
            let stream = try dt.shard(half).batches(epoch: 0, skip: 0)
            while let b = try stream.next() { try trainer.step(b, epoch: 0) }
            try TrainingCheckpoint.save(model: model, optimizer: trainer.optimizer, options: o, position: trainer.position,
                                        schema: Self.dataset.schema, rowsSeen: 600, to: path, distribution: dt)
            return 0
        }
        // One process resumes from it, and so does np 2: the same continued trajectory.
        let resumed = try TrainingCheckpoint.resume(path)
        #expect(resumed.position.step == 6)
        let trainer = try Trainer(model: resumed.model, optimizer: resumed.optimizer, options: o, pool: ThreadPool(threads: 1), position: resumed.position)
        var single: [Double] = []
        let stream = try rest.batches(epoch: 0, skip: 0)
        while let b = try stream.next() { single.append(try trainer.step(b, epoch: 0)) }
        let np2 = try InProcessGroup.run(size: 2) { comm -> [Double] in
            let r = try TrainingCheckpoint.resume(path)
            let dt = DistributedTraining(comm: comm)
            let model = try dt.makeModel(r.model.configuration, options: o)
            try dt.adopt(r.model, into: model)
            let trainer = try Trainer(model: model, optimizer: r.optimizer, options: o, pool: ThreadPool(threads: 1), position: r.position)
            try dt.attach(trainer)
            var losses: [Double] = []
            let stream = try dt.shard(rest).batches(epoch: 0, skip: 0)
            while let b = try stream.next() { losses.append(try trainer.step(b, epoch: 0)) }
            return losses
        }
        #expect(single.count == 6)
        #expect(Self.close(np2[0], single, rtol: 1e-6), "np 2 resumed \(np2[0]) vs one process \(single)")
        // And the whole run from scratch in one process passes through the same losses (within rounding).
        let reference = try Self.single(.dlrm, o)
        #expect(Self.close(Array(reference.losses.suffix(6)), single, rtol: 1e-5))
    }
}
