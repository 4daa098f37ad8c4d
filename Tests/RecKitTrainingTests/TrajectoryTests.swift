import Foundation
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels
@testable import RecKitTraining
import Testing

/// Numerics unchanged by the Seams-for-scale refactor: per-step losses and the validation logloss of seeded DLRM,
/// DCNv2, FM and LR runs (shuffle buffer 0), bit for bit, against trajectories recorded at b8f7830, the commit before
/// it (Fixtures/trajectories-*.json, written by the recorder that commit a82ab18 added and the refactor removed).
///
/// The reference-kernel fixture is machine-independent (plain loops, IEEE operations in a fixed order) and is checked
/// by `make test`'s reference pass; the optimized one holds for the CPU features and OpenBLAS kernels it was
/// recorded with and is skipped (reported) elsewhere.
@Suite("Loss trajectories equal the pre-refactor ones")
struct TrajectoryTests {
    struct Run: Codable {
        var name: String, model: String, denseOptimizer: String, sparseOptimizer: String
        var batchSize: Int, epochs: Int, warmupSteps: Int, clipNorm: Float?, embeddingL2: Float
        var lossBits: [String], validationLoglossBits: String, validationAUC: Double?
    }
    struct FixtureFile: Codable {
        var recordedAt: String, kernels: String, cpu: String, openblasCore: String, rows: Int, threads: Int, runs: [Run]
    }

    static func fixture(_ variant: KernelVariant) -> FixtureFile? {
        guard let url = Bundle.module.url(forResource: "trajectories-\(variant.rawValue)", withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(FixtureFile.self, from: data)
    }

    /// The fixture for the kernels this process runs, if it applies to this machine.
    static var applicable: FixtureFile? {
        guard let f = fixture(KernelVariant.active) else { return nil }
        if KernelVariant.active == .reference { return f }
        return f.cpu == CPUFeatures.host.summary && f.openblasCore == (BLASRuntime.available?.coreName ?? "none") ? f : nil
    }

    /// The recorder's dataset: 1500 synthetic rows, seed 11, tables 4 × 20 + 200, two user-side tables, shards of 500.
    static func dataset() throws -> ShardDataset {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-traj-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        var o = SynthOptions(rows: 1500, output: dir, seed: 11)
        o.tables = [20, 20, 20, 20, 200]
        o.userTables = 2
        o.shardRows = 500
        _ = try Synthesizer.run(o)
        return try ShardDataset(directory: dir)
    }

    @Test("DLRM, DCNv2, FM, LR: every step's loss and the validation logloss, bit for bit",
          .enabled(if: applicable != nil, "no trajectory fixture for these kernels on this CPU (recorded on another machine)"))
    func trajectories() throws {
        let f = try #require(Self.applicable)
        let ds = try Self.dataset()
        #expect(ds.manifest.rows == f.rows)
        for run in f.runs {
            var o = TrainOptions()
            o.epochs = run.epochs
            o.batchSize = run.batchSize
            o.threads = f.threads
            o.earlyStoppingPatience = 0
            o.denseOptimizer = try #require(DenseOptimizerKind(rawValue: run.denseOptimizer))
            o.sparseOptimizer = try #require(SparseOptimizerKind(rawValue: run.sparseOptimizer))
            o.warmupSteps = run.warmupSteps
            o.clipNorm = run.clipNorm
            o.embeddingL2 = run.embeddingL2
            o.seed = 5
            let kind = try #require(ModelKind(rawValue: run.model))
            let trainer = try makeTrainer(kind, ds, o)
            let (train, validation) = TrainingRun.sources(ds, options: o)
            var losses: [String] = []
            for epoch in 0..<o.epochs {
                let stream = try train.batches(epoch: epoch, skip: 0)
                while let b = try stream.next() { losses.append(String(try trainer.step(b, epoch: epoch).bitPattern, radix: 16)) }
            }
            // The recorder evaluated batches of the whole file cut at the split (rows 1344..<1408 became 1350..<1408); the
            // trainer now batches from the split's first row. Optimized GEMMs round by batch shape, so the old partition
            // is rebuilt here to compare the model itself; `fit` below checks the trainer's own evaluation is consistent.
            var logits: [Float] = [], labels: [Float] = []
            let all = try ShardBatchSource(dataset: ds, batchSize: o.batchSize).batches(epoch: 0, skip: 0)
            var row = 0
            let lo = o.trainRows(of: ds.manifest.rows)
            while let b = try all.next() {
                defer { row += b.size }
                if row + b.size <= lo { continue }
                let part = b.slice(max(0, lo - row)..<b.size, denseCount: 13)
                try trainer.model.forward(part, workspace: trainer.workspace, mode: .inference, pool: trainer.pool)
                logits += trainer.workspace.lastLogits
                labels += part.labels
            }
            let metrics = BinaryMetrics.compute(logits: logits, labels: labels)
            let own = try trainer.evaluate(try #require(validation))
            #expect(losses == run.lossBits, "\(run.name): first difference at step \(zip(losses, run.lossBits).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(losses.count, run.lossBits.count))")
            #expect(String(metrics.logloss.bitPattern, radix: 16) == run.validationLoglossBits && metrics.auc == run.validationAUC, "\(run.name)")
            // `fit` runs the same steps.
            let fitted = try makeTrainer(kind, ds, o).fit(train: train, validation: validation)
            #expect(fitted.finalLoss.map { String($0.bitPattern, radix: 16) } == run.lossBits.last && fitted.validation == own, "\(run.name) via fit")
        }
    }
}
