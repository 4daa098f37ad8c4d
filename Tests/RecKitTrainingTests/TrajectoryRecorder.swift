import Foundation
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels
@testable import RecKitTraining
import Testing

/// Records the per-step loss trajectories of seeded runs (the trainer's loop, step by step) into a JSON fixture,
/// at the commit before the "Seams for scale" refactor. Runs only with RECKIT_RECORD_TRAJECTORIES=<output path>.
@Suite("Trajectory recorder (pre-refactor)")
struct TrajectoryRecorder {
    struct Run: Codable {
        var name: String
        var model: String
        var denseOptimizer: String
        var sparseOptimizer: String
        var batchSize: Int
        var epochs: Int
        var warmupSteps: Int
        var clipNorm: Float?
        var embeddingL2: Float
        /// Loss per step as Double bit patterns (hex), in step order.
        var lossBits: [String]
        var validationLoglossBits: String
        var validationAUC: Double?
    }

    struct FixtureFile: Codable {
        var recordedAt: String
        var kernels: String
        var cpu: String
        var openblasCore: String
        var rows: Int
        var threads: Int
        var runs: [Run]
    }

    static let configs: [(String, String, DenseOptimizerKind, SparseOptimizerKind, Int, Int, Float?, Float)] = [
        // name, model, dense opt, sparse opt, warmup, epochs, clip, embedding L2
        ("dlrm-adam-rowwise", "dlrm", .adam, .rowWiseAdagrad, 0, 2, nil, 0),
        ("dlrm-sgd-adagrad-warmup-clip", "dlrm", .sgd, .adagrad, 5, 2, 1.0, 1e-4),
        ("dcnv2-adam-rowwise", "dcnv2", .adam, .rowWiseAdagrad, 0, 2, nil, 0),
        ("fm-adagrad-sgd", "fm", .adagrad, .sgd, 0, 2, nil, 0),
        ("fm-adamw-rowwise", "fm", .adamw, .rowWiseAdagrad, 0, 2, nil, 1e-4),
        ("lr-adam-rowwise", "lr", .adam, .rowWiseAdagrad, 0, 2, nil, 0),
    ]

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

    @Test("record", .enabled(if: ProcessInfo.processInfo.environment["RECKIT_RECORD_TRAJECTORIES"] != nil))
    func record() throws {
        let out = ProcessInfo.processInfo.environment["RECKIT_RECORD_TRAJECTORIES"]!
        let ds = try Self.dataset()
        var runs: [Run] = []
        for (name, kind, dense, sparse, warmup, epochs, clip, l2) in Self.configs {
            var o = TrainOptions()
            o.epochs = epochs
            o.batchSize = 64
            o.threads = 2
            o.earlyStoppingPatience = 0
            o.denseOptimizer = dense
            o.sparseOptimizer = sparse
            o.warmupSteps = warmup
            o.clipNorm = clip
            o.embeddingL2 = l2
            o.seed = 5
            // The trainer's loop, step by step (Trainer.train with shuffle buffer 0), recording each loss.
            let rows = ds.manifest.rows
            let trainRows = Int(Double(rows) * (1 - o.validationFraction))
            var config = DLRMConfig(denseCount: ds.schema.denseNames.count, tableSizes: ds.schema.sparse.map(\.cardinality),
                                    embeddingDim: o.embeddingDim, bottomHidden: o.bottomHidden, topHidden: o.topHidden)
            if kind == "dcnv2" { config.crossLayers = o.crossLayers; config.crossRank = o.crossRank; config.crossParallel = o.crossParallel }
            let model = try #require(makeCTRModel(kind: kind, config: config, maxBatch: o.batchSize, maxIndicesPerTable: o.batchSize * 64, seed: o.seed))
            let optimizer = DenseOptimizer(kind: o.denseOptimizer)
            let pool = ThreadPool(threads: o.threads)
            var steps = 0
            var losses: [Double] = []
            for epoch in 0..<o.epochs {
                var lo = LoaderOptions(batchSize: o.batchSize)
                lo.seed = o.seed &+ UInt64(epoch)
                let loader = try BatchLoader(dataset: ds, options: lo)
                var row = 0
                while let batch = loader.next() {
                    let take = min(batch.size, trainRows - row)
                    row += batch.size
                    if take <= 0 { break }
                    let b = take == batch.size ? batch : Trainer.prefix(batch, take, denseCount: ds.schema.denseNames.count)
                    let loss = try model.forward(dense: b.dense, sparse: b.sparse, labels: b.labels, pool: pool)
                    losses.append(loss)
                    model.zeroGrad()
                    let scale = Trainer.learningRateScale(step: steps, epoch: epoch, options: o)
                    try model.backward(dense: b.dense, update: SparseUpdate(optimizer: o.sparseOptimizer, learningRate: o.sparseLearningRate * scale,
                                                                            weightDecay: o.embeddingL2), pool: pool)
                    if let c = o.clipNorm { Trainer.clip(model.denseParameters, maxNorm: c) }
                    optimizer.apply(model.denseParameters, lr: o.learningRate * scale, pool: pool)
                    steps += 1
                }
            }
            let validation = try Trainer.evaluate(model, ds, rows: trainRows..<rows, batchSize: o.batchSize, pool: pool)
            // The same run through Trainer.train must end on the same loss and metrics (the loop above is the trainer's).
            let (_, _, report) = try Trainer.train(kind: kind, ds, options: o)
            #expect(report.finalLoss.bitPattern == losses.last!.bitPattern, "\(name): recorder loop differs from Trainer.train")
            #expect(report.validation == validation, "\(name)")
            runs.append(Run(name: name, model: kind, denseOptimizer: dense.rawValue, sparseOptimizer: sparse.rawValue, batchSize: o.batchSize,
                            epochs: o.epochs, warmupSteps: warmup, clipNorm: clip, embeddingL2: l2,
                            lossBits: losses.map { String($0.bitPattern, radix: 16) },
                            validationLoglossBits: String(validation.logloss.bitPattern, radix: 16), validationAUC: validation.auc))
        }
        let file = FixtureFile(recordedAt: "b8f7830 (before the Seams-for-scale refactor)", kernels: KernelVariant.active.rawValue,
                               cpu: CPUFeatures.host.summary, openblasCore: BLASRuntime.available?.coreName ?? "none",
                               rows: ds.manifest.rows, threads: 2, runs: runs)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(file).write(to: URL(fileURLWithPath: out))
    }
}
