import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels
import RecKitTestSupport
@testable import RecKitTraining
import Testing

/// A synthetic dataset in a fresh temp directory.
func synthDataset(_ name: String, rows: Int = 3000, seed: UInt64 = 9, tables: [Int] = Array(repeating: 20, count: 8) + [500],
                  userTables: Int = 13, shardRows: Int = 1000) throws -> (ShardDataset, SynthReport) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-train-\(getpid())-\(name)").path
    try? FileManager.default.removeItem(atPath: dir)
    var o = SynthOptions(rows: rows, output: dir, seed: seed)
    o.tables = tables
    o.userTables = min(userTables, tables.count)
    o.shardRows = shardRows
    let r = try Synthesizer.run(o)
    return (try ShardDataset(directory: dir), r)
}

/// A trainer for `kind` on `ds` with options `o` (fresh model from o.seed).
func makeTrainer(_ kind: ModelKind, _ ds: ShardDataset, _ o: TrainOptions) throws -> Trainer {
    let model = try o.modelConfiguration(kind, schema: ds.schema).makeModel(initialization: .random(seed: o.seed),
                                                                            sparseOptimizer: o.sparseOptimizer, quantization: nil)
    return try Trainer(model: model, optimizer: DenseOptimizer(kind: o.denseOptimizer), options: o, pool: ThreadPool(threads: o.threads))
}

@Suite("Training: metrics, optimizers, checkpoints")
struct TrainingTests {
    @Test("metrics against hand-computed values (ties in AUC count ½)")
    func metrics() throws {
        // p = σ(z): z = 0 → 0.5. Scores 0,0 tie across classes.
        let m = BinaryMetrics.compute(logits: [0, 0, 2, -2], labels: [1, 0, 1, 0])
        let p2 = 1 / (1 + exp(-2.0))
        let ll = -(log(0.5) + log(0.5) + log(p2) + log(p2)) / 4
        #expect(abs(m.logloss - ll) < 1e-9)
        #expect(m.auc == 0.875)  // pairs: (2>−2)=1, (2>0)=1, (0 vs 0)=½, (0>−2)=1 → 3.5/4
        #expect(abs(m.ne! - ll / log(2.0)) < 1e-9)
        #expect(abs(m.calibration! - 1) < 1e-9)
        #expect(m.accuracy == 0.75)  // p = 0.5 counts as positive
        #expect(BinaryMetrics.compute(logits: [1, 2], labels: [1, 1]).auc == nil)
    }

    static func parameter(_ values: [Float], grad: [Float]) -> DenseParameter {
        DenseParameter(name: "p", shape: [values.count], value: AlignedBuffer(values), grad: AlignedBuffer(grad))
    }

    @Test("dense optimizers: one step equals the documented formula", arguments: DenseOptimizerKind.allCases)
    func optimizerStep(kind: DenseOptimizerKind) throws {
        let p = Self.parameter([1, -2], grad: [0.5, -0.25])
        let opt = DenseOptimizer(kind: kind, weightDecay: 0.1)
        try opt.apply([p], lr: 0.01)
        for i in 0..<2 {
            let w0 = Float([1, -2][i]), g0 = Float([0.5, -0.25][i])
            let expected: Float
            switch kind {
            case .sgd: expected = w0 - 0.01 * (g0 + 0.1 * w0)
            case .adagrad: let gi = g0 + 0.1 * w0; expected = w0 - 0.01 * gi / ((gi * gi).squareRoot() + 1e-10)
            case .adam: let gi = g0 + 0.1 * w0; expected = w0 - 0.01 * gi / (abs(gi) + 1e-8)
            case .adamw: let wd = w0 - 0.01 * 0.1 * w0; expected = wd - 0.01 * g0 / (abs(g0) + 1e-8)
            }
            #expect(abs(p.value.pointer[i] - expected) < 1e-6, "\(kind) [\(i)] \(p.value.pointer[i]) vs \(expected)")
        }
    }

    @Test("dense optimizers: the SIMD, pool-split update equals a scalar loop bit for bit over three steps",
          arguments: DenseOptimizerKind.allCases)
    func optimizerParallel(kind: DenseOptimizerKind) throws {
        let n = DenseOptimizer.chunk * 2 + 23  // several tasks and a tail shorter than 16 lanes
        var data = SeededRandom(seed: 77)
        let w0 = (0..<n).map { _ in Float(data.nextUniform() * 2 - 1) }
        let grads = (0..<3).map { _ in (0..<n).map { _ in Float(data.nextUniform() * 2 - 1) } }
        let p = Self.parameter(w0, grad: [Float](repeating: 0, count: n))
        let opt = DenseOptimizer(kind: kind, weightDecay: 0.01)
        var rw = w0, m = [Float](repeating: 0, count: n), v = [Float](repeating: 0, count: n)
        let (b1, b2, eps, lr, wd): (Float, Float, Float, Float, Float) = (0.9, 0.999, opt.eps, 0.05, 0.01)
        for step in 1...3 {
            for i in 0..<n { p.grad.pointer[i] = grads[step - 1][i] }
            try opt.apply([p], lr: lr, pool: ThreadPool(threads: 2))
            let c1 = 1 - Float(pow(Double(b1), Double(step))), c2 = 1 - Float(pow(Double(b2), Double(step)))
            for i in 0..<n {
                let gr = grads[step - 1][i]
                switch kind {
                case .sgd: rw[i] -= lr * (gr + wd * rw[i])
                case .adagrad:
                    let gi = gr + wd * rw[i]
                    v[i] += gi * gi
                    rw[i] -= lr * gi / (v[i].squareRoot() + eps)
                case .adam, .adamw:
                    var gi = gr
                    if kind == .adam { gi += wd * rw[i] } else { rw[i] -= lr * wd * rw[i] }
                    m[i] = b1 * m[i] + (1 - b1) * gi
                    v[i] = b2 * v[i] + (1 - b2) * gi * gi
                    rw[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
                }
            }
        }
        let mismatches = (0..<n).filter { p.value.pointer[$0].bitPattern != rw[$0].bitPattern }
        #expect(mismatches.isEmpty, "\(kind): \(mismatches.count) elements differ, first at \(mismatches.first ?? -1)")
    }

    @Test("dense optimizer state must match the parameters: moments of another model are refused")
    func optimizerStateShape() throws {
        let opt = DenseOptimizer(kind: .adam)
        try opt.apply([Self.parameter([1, 2, 3], grad: [1, 1, 1])], lr: 0.1)
        #expect(throws: TrainingError.self) { try opt.apply([Self.parameter([1, 2], grad: [1, 1]), Self.parameter([1], grad: [1])], lr: 0.1) }
        #expect(try opt.stateTensors([Self.parameter([1, 2, 3], grad: [1, 1, 1])]).map(\.name) == ["optimizer.p.exp_avg", "optimizer.p.exp_avg_sq"])
    }

    @Test("training is deterministic for a seed and learns (validation AUC above chance)")
    func deterministicTraining() throws {
        let (ds, synth) = try synthDataset("det", rows: 8000)
        var o = TrainOptions()
        o.epochs = 4
        o.threads = 2
        func run() throws -> (TrainReport, [Float]) {
            let t = try makeTrainer(.dlrm, ds, o)
            let (train, validation) = TrainingRun.sources(ds, options: o)
            let r = try t.fit(train: train, validation: validation)
            return (r, t.model.stateTensors().flatMap { Array($0.floats) })
        }
        let a = try run(), b = try run()
        #expect(a.0.finalLoss == b.0.finalLoss && a.0.validation == b.0.validation && a.1 == b.1)
        let auc = a.0.validation?.auc ?? 0
        #expect(auc > 0.6 && auc > synth.plantedAUC - 0.1, "validation AUC \(auc), planted \(synth.plantedAUC)")
    }

    @Test("a diverging run (learning rate 1e30) stops with a typed error and writes no checkpoint")
    func divergence() throws {
        let (ds, _) = try synthDataset("diverge", rows: 2000)
        let out = ds.directory + "/never.safetensors"
        var run = TrainingRun(model: .dlrm, data: [ds.directory], output: out)
        run.flags.learning_rate = 1e30
        run.flags.sparse_learning_rate = 1e30
        run.flags.epochs = 2
        run.threads = 2
        do {
            _ = try run.run()
            Issue.record("training with lr 1e30 finished as a success")
        } catch {
            guard case .diverged(let step, let loss) = error else { Issue.record("\(error)"); return }
            #expect(step >= 1 && !loss.isFinite)
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}

@Suite("Training schedule, clipping, early stopping")
struct TrainingScheduleTests {
    @Test("gradient clipping scales to the max norm; warm-up and decay scale the learning rate")
    func clipAndSchedule() {
        let p = DenseParameter(name: "p", shape: [2], value: AlignedBuffer(count: 2), grad: AlignedBuffer<Float>([3, 4]))
        Trainer.clip([p], maxNorm: 1)
        #expect(abs(p.grad.pointer[0] - 0.6) < 1e-6 && abs(p.grad.pointer[1] - 0.8) < 1e-6)
        Trainer.clip([p], maxNorm: 10)
        #expect(abs(p.grad.pointer[0] - 0.6) < 1e-6, "below the max: unchanged")
        var o = TrainOptions()
        o.warmupSteps = 4
        o.lrDecayPerEpoch = 0.5
        #expect(Trainer.learningRateScale(step: 0, epoch: 0, options: o) == 0.25)
        #expect(Trainer.learningRateScale(step: 10, epoch: 0, options: o) == 1)
        #expect(Trainer.learningRateScale(step: 10, epoch: 2, options: o) == 0.25)
    }

    @Test("early stopping keeps the best epoch (spilled to a file, not RAM): same metrics as training exactly that many epochs")
    func earlyStopping() throws {
        let (ds, _) = try synthDataset("early", rows: 4000)
        var o = TrainOptions()
        o.epochs = 12
        o.threads = 2
        o.earlyStoppingPatience = 1
        let snapshots = ds.directory + "/snapshots"
        try FileManager.default.createDirectory(atPath: snapshots, withIntermediateDirectories: true)
        let t = try makeTrainer(.dlrm, ds, o)
        let (train, validation) = TrainingRun.sources(ds, options: o)
        let stopped = try t.fit(train: train, validation: validation, snapshotDirectory: snapshots)
        #expect(stopped.bestEpoch <= stopped.epochs && stopped.epochs <= 12)
        #expect(t.snapshotsWritten >= 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: snapshots).isEmpty, "snapshot files are removed")
        var exact = o
        exact.epochs = stopped.bestEpoch
        exact.earlyStoppingPatience = 0
        let e = try makeTrainer(.dlrm, ds, exact)
        let fixed = try e.fit(train: train, validation: validation)
        #expect(fixed.validation == stopped.validation)
        // One epoch only: no later epoch can be worse, so no snapshot is taken.
        var one = o
        one.epochs = 1
        let single = try makeTrainer(.dlrm, ds, one)
        _ = try single.fit(train: train, validation: validation, snapshotDirectory: snapshots)
        #expect(single.snapshotsWritten == 0)
    }
}

@Suite("Validation split")
struct ValidationSplitTests {
    @Test("tagged rows: no validation row reaches a training batch, for shuffle buffers 0, 1 and 1000", arguments: [0, 1, 1000])
    func noLeak(shuffle: Int) throws {
        // One feature's id is the row number (identity ids), so every batch says which rows it holds.
        let rows = 3_000
        let dir = tempDirectory("tagged-\(shuffle)")
        let schema = DatasetSchema(source: "test", hasLabel: true, denseNames: ["x"], sparse: [SparseFeature(name: "row", cardinality: rows)],
                                   preprocessing: PreprocessingSpec(categorical: .identity, rawIDs: "decimal"))
        var shards: [Manifest.Shard] = []
        for s in 0..<3 {
            var c = ShardColumns(denseCount: 1, sparseCount: 1)
            for r in (s * 1000)..<((s + 1) * 1000) { c.labels.append(Float(r % 2)); c.dense.append(0); c.ids[0].append(Int64(r)); c.commitRow() }
            try ShardFile.write(c, schema: schema, to: dir + "/s\(s).rks")
            shards.append(Manifest.Shard(file: "s\(s).rks", rows: 1000, bytes: 0))
        }
        try Manifest(schema: schema, shards: shards).write(to: dir)
        let ds = try ShardDataset(directory: dir)
        var o = TrainOptions()
        o.batchSize = 128
        o.shuffleBuffer = shuffle
        o.validationFraction = 0.1
        let (train, validation) = TrainingRun.sources(ds, options: o)
        let trainRows = o.trainRows(of: rows)
        for epoch in 0..<2 {
            var seen: [Int64] = []
            let stream = try train.batches(epoch: epoch, skip: 0)
            while let b = try stream.next() { seen += b.sparse.values[0] }
            #expect(seen.allSatisfy { $0 < Int64(trainRows) }, "a validation row in a training batch (shuffle \(shuffle))")
            #expect(seen.sorted() == (0..<Int64(trainRows)).map { $0 }, "every training row once per epoch")
            if shuffle > 1 { #expect(seen != seen.sorted()) }
        }
        var held: [Int64] = []
        let v = try #require(validation).batches(epoch: 0, skip: 0)
        while let b = try v.next() { held += b.sparse.values[0] }
        #expect(held == (Int64(trainRows)..<Int64(rows)).map { $0 })
    }
}

func tempDirectory(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-tt-\(getpid())-\(name)").path
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
