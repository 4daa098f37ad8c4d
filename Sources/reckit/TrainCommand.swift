import ArgumentParser
import Foundation
import RecKitCarbon
import RecKitData
import RecKitKernels
import RecKitModels
import RecKitTraining

extension DenseOptimizerKind: ExpressibleByArgument {}
extension SparseOptimizerKind: ExpressibleByArgument {}

/// Model families `reckit train` accepts; only DLRM is available in this build.
enum ModelKind: String, ExpressibleByArgument, CaseIterable { case lr, fm, dlrm, dcnv2 }

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a CTR model on a shard dataset and save a checkpoint.")

    @Option(name: .long, help: "Model: dlrm (lr, fm, dcnv2: not in this build yet).")
    var model: ModelKind

    @Option(name: .long, help: "Shard dataset directory (from `reckit data convert` or `reckit data synth`).")
    var data: String

    @Option(name: .long, help: "Raw input format (raw files are not accepted by this build: convert them first).")
    var format: InputFormat?

    @Option(name: .long, help: "Checkpoint to write.")
    var output: String

    @Option(name: .long, help: "Epochs (default: from the data size).")
    var epochs: Int?

    @Option(name: .customLong("batch-size"), help: "Batch size (default: from the data size).")
    var batchSize: Int?

    @Option(name: .long, help: "Dense learning rate (default 1e-3).")
    var lr: Float?

    @Option(name: .customLong("sparse-lr"), help: "Embedding learning rate (default 0.05).")
    var sparseLR: Float?

    @Option(name: .long, help: "Dense optimizer: sgd, adagrad, adam, adamw (default adam).")
    var optimizer: DenseOptimizerKind?

    @Option(name: .customLong("sparse-optimizer"), help: "Embedding optimizer: sgd, adagrad, rowwise_adagrad (default).")
    var sparseOptimizer: SparseOptimizerKind?

    @Option(name: .long, help: "Fraction of rows (the last ones) held out for validation (default 0.1).")
    var validation: Double?

    @Option(name: .long, help: "Seed (same seed, data and threads: identical results).")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Early stopping: epochs without validation-AUC gain before stopping (0 = off; default 1).")
    var patience: Int?

    @Option(name: .customLong("warmup-steps"), help: "Linear learning-rate warm-up steps.")
    var warmupSteps: Int?

    @Option(name: .customLong("lr-decay"), help: "Multiply learning rates by this after each epoch.")
    var lrDecay: Float?

    @Option(name: .customLong("clip-norm"), help: "Clip the global L2 norm of dense gradients.")
    var clipNorm: Float?

    @Option(name: .customLong("embedding-l2"), help: "L2 coefficient on the embedding rows a batch touches.")
    var embeddingL2: Float?

    @OptionGroup var common: CommonOptions
    @OptionGroup var carbon: CarbonOptions

    func run() throws {
        let log = CLILog.logger("reckit.train")
        try CLILog.checkEnvironment(log)
        guard model == .dlrm else {
            throw ValidationError("model '\(model.rawValue)' is not available in this build; available: dlrm")
        }
        if format != nil {
            throw ValidationError("--data must be a shard dataset in this build; convert raw files first with `reckit data convert --format \(format!.rawValue)`")
        }
        let run = try CarbonRun(command: "train", model: model.rawValue, options: carbon, threads: common.resolvedThreads)
        let ds: ShardDataset
        do throws(DataError) { ds = try ShardDataset(directory: data) } catch { throw CLIError(message: error.description, code: 66) }
        var o = TrainOptions.recipe(rows: ds.manifest.rows)
        if let epochs { o.epochs = max(1, epochs) }
        if let batchSize { o.batchSize = max(1, batchSize) }
        if let lr { o.learningRate = lr }
        if let sparseLR { o.sparseLearningRate = sparseLR }
        if let optimizer { o.denseOptimizer = optimizer }
        if let sparseOptimizer { o.sparseOptimizer = sparseOptimizer }
        if let validation { o.validationFraction = min(max(validation, 0), 0.9) }
        o.seed = seed
        o.threads = common.resolvedThreads
        if let patience { o.earlyStoppingPatience = max(0, patience) }
        if let warmupSteps { o.warmupSteps = max(0, warmupSteps) }
        if let lrDecay { o.lrDecayPerEpoch = lrDecay }
        o.clipNorm = clipNorm
        if let embeddingL2 { o.embeddingL2 = embeddingL2 }
        let (m, opt, r) = try Trainer.trainDLRM(ds, options: o) { p in
            log.info("epoch \(p.epoch + 1) step \(p.step): loss \(String(format: "%.4f", p.loss)), \(Int(p.samplesPerSecond)) samples/s, ETA \(Int(p.eta)) s")
        }
        var report = r
        let header = CheckpointHeader(model: "dlrm", dlrm: m.config, schema: ds.schema, step: opt.step, rowsSeen: r.rowsTrained,
                                      denseOptimizer: o.denseOptimizer, sparseOptimizer: o.sparseOptimizer.rawValue, seed: seed)
        do throws(CheckpointError) { try Checkpoint.save(m, optimizer: opt, header: header, to: output) } catch {
            throw CLIError(message: error.description, code: 73)
        }
        report.checkpoint = output
        run.finish(samples: r.rowsTrained)
        if common.json { try printJSON(report); return }
        var line = String(format: "trained DLRM on %d rows in %.1f s (%.0f samples/s), final loss %.4f", r.rowsTrained, r.seconds, r.samplesPerSecond, r.finalLoss)
        if let v = r.validation {
            line += String(format: "; validation AUC %.4f, logloss %.4f on %d rows", v.auc ?? .nan, v.logloss, v.rows)
        }
        print(line + "; checkpoint: \(output)")
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluate a checkpoint on a shard dataset.")

    @Option(name: .long, help: "Checkpoint from `reckit train`.")
    var model: String

    @Option(name: .long, help: "Shard dataset directory.")
    var data: String

    @Option(name: .long, help: "Raw input format (not accepted by this build: convert first).")
    var format: InputFormat?

    @OptionGroup var common: CommonOptions
    @OptionGroup var carbon: CarbonOptions

    func run() throws {
        if format != nil { throw ValidationError("--data must be a shard dataset in this build; convert raw files first") }
        let run = try CarbonRun(command: "eval", model: "dlrm", options: carbon, threads: common.resolvedThreads)
        let ds: ShardDataset
        do throws(DataError) { ds = try ShardDataset(directory: data) } catch { throw CLIError(message: error.description, code: 66) }
        let loaded: (RecKitModels.DLRM, DenseOptimizer, CheckpointHeader)
        do throws(CheckpointError) { loaded = try Checkpoint.load(model, maxBatch: 1024, maxIndicesPerTable: 1024 * 64) } catch {
            throw CLIError(message: error.description, code: 65)
        }
        guard loaded.0.config.tableSizes == ds.schema.sparse.map(\.cardinality) else {
            throw CLIError(message: "\(data) does not match the checkpoint's tables (was it converted with the same options?)", code: 65)
        }
        let metrics = try Trainer.evaluate(loaded.0, ds, rows: 0..<ds.manifest.rows, batchSize: 1024, pool: ThreadPool(threads: common.resolvedThreads))
        run.finish(samples: metrics.rows)
        if common.json { try printJSON(metrics); return }
        print(String(format: "AUC %.4f, logloss %.4f, NE %.4f, calibration %.3f, accuracy %.4f on %d rows",
                     metrics.auc ?? .nan, metrics.logloss, metrics.ne ?? .nan, metrics.calibration ?? .nan, metrics.accuracy, metrics.rows))
    }
}
