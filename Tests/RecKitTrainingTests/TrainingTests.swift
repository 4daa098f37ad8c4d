import Foundation
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels
@testable import RecKitTraining
import Testing

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

    @Test("dense optimizers: one step equals the documented formula", arguments: DenseOptimizerKind.allCases)
    func optimizerStep(kind: DenseOptimizerKind) {
        let w = AlignedBuffer<Float>([1, -2]), g = AlignedBuffer<Float>([0.5, -0.25])
        let opt = DenseOptimizer(kind: kind, weightDecay: 0.1)
        opt.apply([(w, g)], lr: 0.01)
        for i in 0..<2 {
            let w0 = Float([1, -2][i]), g0 = Float([0.5, -0.25][i])
            let expected: Float
            switch kind {
            case .sgd: expected = w0 - 0.01 * (g0 + 0.1 * w0)
            case .adagrad: let gi = g0 + 0.1 * w0; expected = w0 - 0.01 * gi / ((gi * gi).squareRoot() + 1e-10)
            case .adam: let gi = g0 + 0.1 * w0; expected = w0 - 0.01 * gi / (abs(gi) + 1e-8)
            case .adamw: let wd = w0 - 0.01 * 0.1 * w0; expected = wd - 0.01 * g0 / (abs(g0) + 1e-8)
            }
            #expect(abs(w.pointer[i] - expected) < 1e-6, "\(kind) [\(i)] \(w.pointer[i]) vs \(expected)")
        }
    }

    @Test("dense optimizers: the SIMD, pool-split update equals a scalar loop bit for bit over three steps",
          arguments: DenseOptimizerKind.allCases)
    func optimizerParallel(kind: DenseOptimizerKind) {
        let n = DenseOptimizer.chunk * 2 + 23  // several tasks and a tail shorter than 16 lanes
        var data = SeededRandom(seed: 77)
        let w0 = (0..<n).map { _ in Float(data.nextUniform() * 2 - 1) }
        let grads = (0..<3).map { _ in (0..<n).map { _ in Float(data.nextUniform() * 2 - 1) } }
        let w = AlignedBuffer<Float>(w0), g = AlignedBuffer<Float>(count: n)
        let opt = DenseOptimizer(kind: kind, weightDecay: 0.01)
        // The scalar formulas, in the documented order of operations.
        var rw = w0, m = [Float](repeating: 0, count: n), v = [Float](repeating: 0, count: n)
        let (b1, b2, eps, lr, wd): (Float, Float, Float, Float, Float) = (0.9, 0.999, opt.eps, 0.05, 0.01)
        for step in 1...3 {
            for i in 0..<n { g.pointer[i] = grads[step - 1][i] }
            opt.apply([(w, g)], lr: lr, pool: ThreadPool(threads: 2))
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
        let mismatches = (0..<n).filter { w.pointer[$0].bitPattern != rw[$0].bitPattern }
        #expect(mismatches.isEmpty, "\(kind): \(mismatches.count) elements differ, first at \(mismatches.first ?? -1)")
    }

    static func dataset(_ name: String, rows: Int = 3000) throws -> (ShardDataset, SynthReport) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-train-\(getpid())-\(name)").path
        try? FileManager.default.removeItem(atPath: dir)
        var o = SynthOptions(rows: rows, output: dir, seed: 9)
        o.tables = Array(repeating: 20, count: 8) + [500]
        o.shardRows = 1000
        let r = try Synthesizer.run(o)
        return (try ShardDataset(directory: dir), r)
    }

    @Test("checkpoint round trip: identical evaluation; truncated or corrupted files give errors naming the file")
    func checkpoint() throws {
        let (ds, _) = try Self.dataset("ckpt")
        var o = TrainOptions()
        o.epochs = 1
        o.threads = 2
        let (model, opt, _) = try Trainer.trainDLRM(ds, options: o)
        let path = ds.directory + "/m.ckpt"
        let header = CheckpointHeader(model: "dlrm", dlrm: model.config, schema: ds.schema, step: opt.step, rowsSeen: 0,
                                      denseOptimizer: .adam, sparseOptimizer: "rowwise_adagrad", seed: 1)
        try Checkpoint.save(model, optimizer: opt, header: header, to: path)
        let pool = ThreadPool(threads: 2)
        let before = try Trainer.evaluate(model, ds, rows: 0..<3000, batchSize: 256, pool: pool)
        let (loaded, lopt, lheader) = try Checkpoint.load(path, maxBatch: 256, maxIndicesPerTable: 256 * 8)
        let after = try Trainer.evaluate(loaded, ds, rows: 0..<3000, batchSize: 256, pool: pool)
        #expect(before == after)
        #expect(lheader.schema == ds.schema && lopt.step == opt.step)
        #expect(loaded.states.map { $0.toArray() } == model.states.map { $0.toArray() })
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        try good.prefix(good.count - 10).write(to: URL(fileURLWithPath: path + ".trunc"))
        var corrupt = good
        corrupt[corrupt.count - 100] ^= 0x55
        try corrupt.write(to: URL(fileURLWithPath: path + ".bad"))
        for (file, fragment) in [(path + ".trunc", "truncated"), (path + ".bad", "checksum mismatch")] {
            let r = Result { () throws(CheckpointError) in try Checkpoint.load(file, maxBatch: 8, maxIndicesPerTable: 64) }
            guard case .failure(let e) = r else { Issue.record("loaded a broken checkpoint"); continue }
            #expect(e.description.contains(file) && e.description.contains(fragment), "\(e)")
        }
    }

    @Test("training is deterministic for a seed and learns (validation AUC above chance)")
    func deterministicTraining() throws {
        let (ds, synth) = try Self.dataset("det", rows: 8000)
        var o = TrainOptions()
        o.epochs = 4
        o.threads = 2
        let a = try Trainer.trainDLRM(ds, options: o), b = try Trainer.trainDLRM(ds, options: o)
        #expect(a.2.finalLoss == b.2.finalLoss && a.2.validation == b.2.validation)
        #expect(a.0.tables.map { $0.toArray() } == b.0.tables.map { $0.toArray() })
        let auc = a.2.validation?.auc ?? 0
        #expect(auc > 0.6 && auc > synth.plantedAUC - 0.1, "validation AUC \(auc), planted \(synth.plantedAUC)")
    }
}

@Suite("Training schedule, clipping, early stopping")
struct TrainingScheduleTests {
    @Test("gradient clipping scales to the max norm; warm-up and decay scale the learning rate")
    func clipAndSchedule() {
        let g = AlignedBuffer<Float>([3, 4]), w = AlignedBuffer<Float>(count: 2)
        Trainer.clip([(w, g)], maxNorm: 1)
        #expect(abs(g.pointer[0] - 0.6) < 1e-6 && abs(g.pointer[1] - 0.8) < 1e-6)
        Trainer.clip([(w, g)], maxNorm: 10)
        #expect(abs(g.pointer[0] - 0.6) < 1e-6, "below the max: unchanged")
        var o = TrainOptions()
        o.warmupSteps = 4
        o.lrDecayPerEpoch = 0.5
        #expect(Trainer.learningRateScale(step: 0, epoch: 0, options: o) == 0.25)
        #expect(Trainer.learningRateScale(step: 10, epoch: 0, options: o) == 1)
        #expect(Trainer.learningRateScale(step: 10, epoch: 2, options: o) == 0.25)
    }

    @Test("early stopping keeps the best epoch: same metrics as training exactly that many epochs")
    func earlyStopping() throws {
        let (ds, _) = try TrainingTests.dataset("early", rows: 4000)
        var o = TrainOptions()
        o.epochs = 12
        o.threads = 2
        o.earlyStoppingPatience = 1
        let stopped = try Trainer.trainDLRM(ds, options: o).2
        #expect(stopped.bestEpoch <= stopped.epochs && stopped.epochs <= 12)
        var exact = o
        exact.epochs = stopped.bestEpoch
        exact.earlyStoppingPatience = 0
        let fixed = try Trainer.trainDLRM(ds, options: exact).2
        #expect(fixed.validation == stopped.validation)
    }
}

@Suite("Checkpoint and resume")
struct ResumeTests {
    @Test("N steps straight equal k steps + checkpoint + resume + N−k steps, bit for bit", arguments: [7, 23])
    func resumeIsExact(k: Int) throws {
        let (ds, _) = try TrainingTests.dataset("resume-\(k)", rows: 3000)
        var o = TrainOptions()
        o.epochs = 3
        o.batchSize = 128
        o.threads = 2
        o.earlyStoppingPatience = 0
        o.warmupSteps = 10
        o.maxSteps = 40
        let straight = try Trainer.trainDLRM(ds, options: o)
        var first = o
        first.maxSteps = k
        let part = try Trainer.trainDLRM(ds, options: first)
        let path = ds.directory + "/k.ckpt"
        try Checkpoint.save(part.0, optimizer: part.1, header: CheckpointHeader(
            model: "dlrm", dlrm: part.0.config, schema: ds.schema, step: part.1.step, rowsSeen: 0, denseOptimizer: o.denseOptimizer,
            sparseOptimizer: o.sparseOptimizer.rawValue, seed: o.seed, position: part.2.position), to: path)
        let (m, opt, h) = try Checkpoint.load(path, maxBatch: o.batchSize, maxIndicesPerTable: o.batchSize * 64)
        let resumed = try Trainer.trainDLRM(ds, options: o, resume: (try #require(m as? RecKitModels.DLRM), opt, try #require(h.position)))
        func state(_ r: (RecKitModels.DLRM, DenseOptimizer, TrainReport)) -> [[Float]] {
            r.0.denseParameters.map { $0.0.toArray() } + r.0.tables.map { $0.toArray() } + r.0.states.map { $0.toArray() }
                + r.1.first.map { $0.toArray() } + r.1.second.map { $0.toArray() }
        }
        #expect(straight.2.position == resumed.2.position && straight.2.position.step == 40)
        #expect(state(straight) == state(resumed))
        #expect(straight.2.finalLoss == resumed.2.finalLoss)
    }
}
