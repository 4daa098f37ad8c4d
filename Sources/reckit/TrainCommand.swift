import ArgumentParser
import Foundation
import Logging
import RecKitCarbon
import RecKitCheckpoint
import RecKitData
import RecKitDistributed
import RecKitExperiments
import RecKitKernels
import RecKitModels
import RecKitTraining

extension DenseOptimizerKind: ExpressibleByArgument {}
extension SparseOptimizerKind: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
extension ModelKind: ExpressibleByArgument {}

/// Refuses bf16 where it cannot run natively, with oneDNN's reason (never a silent slow fallback).
func checkPrecision(_ p: Precision?) throws {
    guard p == .bf16 else { return }
    guard BF16Runtime.isAvailable else { throw ValidationError("--precision bf16 is unavailable: \(BF16Runtime.status)") }
}

extension CLIError {
    /// A training-side failure as a one-line error: input (data, checkpoints, options) 65, divergence 70, a
    /// checkpoint that cannot be written 73.
    static func training(_ e: TrainingError) -> CLIError {
        switch e {
        case .diverged: return CLIError(message: e.description, code: 70)
        case .observer: return CLIError(message: e.description, code: 73)
        case .checkpoint(.io(_, let reason)) where reason.contains("write") || reason.contains("create") || reason.contains("rename") || reason.contains("fsync"):
            return CLIError(message: e.description, code: 73)
        default: return CLIError(message: e.description, code: 65)
        }
    }

    static func onTrainingError<T>(_ body: () throws(TrainingError) -> T) throws -> T {
        do throws(TrainingError) { return try body() } catch { throw training(error) }
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a CTR model on a shard dataset and save a checkpoint.")

    @Option(name: .long, help: "Model: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var model: ModelKind

    @Option(name: .long, parsing: .upToNextOption, help: "A shard dataset directory, or raw files with --format.")
    var data: [String]

    @Option(name: .long, help: "Raw input format: the files are converted first (vocabulary with --min-count, or --max-ind-range hashing).")
    var format: InputFormat?

    @Option(name: .customLong("min-count"), help: "Raw input: vocabulary minimum count (default 1).")
    var minCount: Int?

    @Option(name: .customLong("max-ind-range"), help: "Raw input: hash categorical ids modulo this size instead.")
    var maxIndRange: Int?

    @Option(name: .long, help: "Checkpoint to write (safetensors; default: checkpoint.safetensors in the run directory).")
    var output: String?

    @Option(name: .customLong("run-name"), help: "Name of the run directory (default: UTC time and model, e.g. 20261206-205501-dlrm).")
    var runName: String?

    @OptionGroup var runs: RunsDirOption

    @Option(name: .customLong("log-every"), help: "Steps per logged interval in metrics.csv and TensorBoard (default: about 50 per epoch).")
    var logEvery: Int?

    @Option(name: .long, help: "JSON config file (keys: see TrainOptions.File); flags given on the command line win.")
    var config: String?

    @Option(name: .long, help: "Epochs (default: from the data size).")
    var epochs: Int?

    @Option(name: .customLong("batch-size"), help: "Batch size (default: from the data size).")
    var batchSize: Int?

    @Option(name: .long, help: "Dense learning rate (default 1e-3).")
    var lr: Float?

    @Option(name: .customLong("sparse-lr"), help: "Embedding learning rate (default 0.05).")
    var sparseLR: Float?

    @Option(name: .long, help: "Dense optimizer: sgd, adagrad, adam, adamw (default adam; a resumed run keeps its own).")
    var optimizer: DenseOptimizerKind?

    @Option(name: .customLong("sparse-optimizer"), help: "Embedding optimizer: sgd, adagrad, rowwise_adagrad (default; a resumed run keeps its own).")
    var sparseOptimizer: SparseOptimizerKind?

    @Option(name: .long, help: "Fraction of rows (the last ones) held out for validation (default 0.1).")
    var validation: Double?

    @Option(name: .customLong("shuffle-buffer"), help: "Rows held to shuffle the training split (default 0: file order).")
    var shuffleBuffer: Int?

    @Option(name: .customLong("seed"), help: "Seed (same seed, data and threads: identical results; default 1; a resumed run keeps its own).")
    var seed: UInt64?

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

    @Option(name: .customLong("max-steps"), help: "Stop after this many optimizer steps in total (then --resume later).")
    var maxSteps: Int?

    @Option(name: .long, help: "Continue from this checkpoint, on the same trajectory (same data; options default to the checkpoint's).")
    var resume: String?

    @Option(name: .customLong("checkpoint-every"), help: "Also write the checkpoint every N steps (a run killed at any moment resumes from the last one).")
    var checkpointEvery: Int?

    @Option(name: .customLong("cross-layers"), help: "DCNv2: cross layers (default 3).")
    var crossLayers: Int?

    @Option(name: .customLong("low-rank"), help: "DCNv2: rank of the cross layers' weights (default: full rank).")
    var lowRank: Int?

    @Flag(name: .long, help: "DCNv2: parallel cross and deep networks (default stacked).")
    var parallel = false

    @Flag(name: .long, help: "Deduplicate each batch's sparse features before the embedding lookups (RecD).")
    var dedup = false

    @Option(name: .long, help: "MLP GEMM precision: fp32 (default) or bf16 (mixed precision, fp32 master weights; oneDNN AMX/AVX512-BF16).")
    var precision: Precision?

    @OptionGroup var tier: TierFlags
    @OptionGroup var distribution: DistributedFlags
    @OptionGroup var common: CommonOptions
    @OptionGroup var carbon: CarbonOptions

    /// The flags given, as config-file fields (nil = not given).
    var flags: TrainOptions.File {
        var f = TrainOptions.File()
        f.epochs = epochs; f.batch_size = batchSize; f.learning_rate = lr; f.sparse_learning_rate = sparseLR
        f.dense_optimizer = optimizer; f.sparse_optimizer = sparseOptimizer; f.validation_fraction = validation
        f.shuffle_buffer = shuffleBuffer; f.seed = seed; f.early_stopping_patience = patience; f.warmup_steps = warmupSteps
        f.lr_decay_per_epoch = lrDecay; f.clip_norm = clipNorm; f.embedding_l2 = embeddingL2; f.max_steps = maxSteps
        f.cross_layers = crossLayers; f.cross_rank = lowRank; f.cross_parallel = parallel ? true : nil
        f.dedup = dedup ? true : nil; f.precision = precision
        return f
    }

    func run() throws {
        let log = CLILog.logger("reckit.train")
        try CLILog.checkEnvironment(log)
        try checkPrecision(precision)
        if let logEvery, logEvery < 1 { throw ValidationError("--log-every must be at least 1") }
        try distribution.run(threads: common.threads, log: log) { d, threads in try train(distribution: d, threads: threads, log: log) }
    }

    /// One process's (or one rank's) training. Rank 0 alone owns the run directory, the carbon record, the
    /// checkpoint and the printed result.
    func train(distribution d: DistributedTraining?, threads: Int, log: Logger) throws {
        let root = (d?.rank ?? 0) == 0
        let directory = root ? try CLIError.onExperimentError { () throws(ExperimentError) in
            try RunDirectory.create(root: runs.root, name: runName, model: model.rawValue, appending: resume != nil)
        } : nil
        let output = self.output ?? directory?.file(RunDirectory.checkpointFile) ?? NSTemporaryDirectory() + "/reckit-rank-\(d?.rank ?? 0).safetensors"
        var context = RunRecorder.Context(data: data, threads: threads, checkpoint: output)
        context.format = format?.rawValue
        context.maxIndRange = maxIndRange
        context.resumeFrom = resume
        let recorder = try directory.map { dir in try CLIError.onExperimentError { () throws(ExperimentError) in try RunRecorder(directory: dir, context: context) } }
        // Every rank measures itself; rank 0 records the ranks' combined energy (`finishDistributed`).
        let run = try CarbonRun(command: "train", model: model.rawValue, options: carbon, threads: threads)
        var request = TrainingRun(model: model, data: data, output: output)
        request.distribution = d
        request.observer = recorder
        request.logEvery = logEvery
        request.format = format
        request.minCount = minCount
        request.maxIndRange = maxIndRange
        request.configFile = config
        request.flags = flags
        request.threads = threads
        request.resume = resume
        request.tiering = try tier.options()
        request.checkpointEvery = checkpointEvery
        let outcome: TrainingRun.Outcome
        do {
            outcome = try CLIError.onTrainingError { () throws(TrainingError) in
                try request.run(log: { if root { log.info("\($0)") } }) { p in
                    guard root else { return }
                    log.info("epoch \(p.epoch + 1) step \(p.step): loss \(String(format: "%.4f", p.loss)), \(Int(p.samplesPerSecond)) samples/s, ETA \(Int(p.eta)) s")
                }
            }
        } catch {
            if root { _ = run.finish() }
            if let directory { rmdir(directory.path) }  // a run that failed before its first file leaves nothing behind
            throw error
        }
        let r = outcome.report
        let ledgerRow = try d.map { d in try run.finishDistributed(samples: r.rowsTrained, comm: d.comm) } ?? run.finish(samples: r.rowsTrained)
        guard root, let recorder, let directory else { return }
        if outcome.skippedRows > 0 { log.warning("skipped \(outcome.skippedRows) malformed rows; first: \(outcome.firstSkipped.map { "\($0)" } ?? "")") }
        let summary = WithTiering(report: r, tiering: outcome.tiering)
        try CLIError.onExperimentError { () throws(ExperimentError) in try recorder.finish(summary: summary, carbon: ledgerRow) }
        log.info("run directory: \(directory.path), recorded in \(String(format: "%.1f", recorder.seconds * 1000)) ms (\(String(format: "%.2f", 100 * recorder.seconds / max(r.seconds, 1e-9)))% of training); see it with: reckit report \(directory.path) --output report.html, or tensorboard --logdir \(runs.root)")
        if common.json { try printJSON(summary); return }
        var line = "trained \(model.rawValue.uppercased()) on \(r.rowsTrained) rows in \(String(format: "%.1f", r.seconds)) s (\(Int(r.samplesPerSecond)) samples/s)"
        if let l = r.finalLoss { line += String(format: ", final loss %.4f", l) }
        if let v = r.validation { line += String(format: "; validation AUC %@, logloss %.4f on %d rows", v.auc.map { String(format: "%.4f", $0) } ?? "n/a", v.logloss, v.rows) }
        print(line + "; checkpoint: \(output)")
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluate a checkpoint on labelled data.")

    @Option(name: .long, help: "Checkpoint from `reckit train` or `reckit quantize`.")
    var model: String

    @Option(name: .long, parsing: .upToNextOption, help: "A shard dataset directory, or raw files with --format.")
    var data: [String]

    @Option(name: .long, help: "Raw input format; rows get the checkpoint's preprocessing.")
    var format: InputFormat?

    @OptionGroup var common: CommonOptions
    @OptionGroup var carbon: CarbonOptions

    func run() throws {
        let run = try CarbonRun(command: "eval", model: nil, options: carbon, threads: common.resolvedThreads)
        let metrics = try CLIError.onTrainingError { () throws(TrainingError) -> BinaryMetrics in
            let loaded = try LoadedModel.load(model)
            let (ds, temporary) = try loaded.dataset(data, format: format)
            defer { withExtendedLifetime(temporary) {} }
            guard ds.schema.hasLabel else { throw .options("\(data.joined(separator: " ")) has no labels to evaluate against (use `reckit predict`)") }
            return try Evaluation.metrics(loaded.model, ShardBatchSource(dataset: ds, batchSize: 1024), pool: ThreadPool(threads: common.resolvedThreads))
        }
        run.finish(samples: metrics.rows)
        if common.json { try printJSON(WithPeakRSS(metrics)); return }
        print(String(format: "AUC %@, logloss %.4f, NE %@, calibration %@, accuracy %.4f on %d rows", metrics.auc.map { String(format: "%.4f", $0) } ?? "n/a",
                     metrics.logloss, metrics.ne.map { String(format: "%.4f", $0) } ?? "n/a",
                     metrics.calibration.map { String(format: "%.3f", $0) } ?? "n/a", metrics.accuracy, metrics.rows))
    }
}

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Score rows with a checkpoint: one probability per input row, in input order.")

    @Option(name: .long, help: "Checkpoint from `reckit train` or `reckit quantize`.")
    var model: String

    @Option(name: .long, parsing: .upToNextOption, help: "A shard dataset directory, or raw files with --format.")
    var data: [String]

    @Option(name: .long, help: "Raw input format; rows get the checkpoint's preprocessing (every row must parse).")
    var format: InputFormat?

    @Option(name: .long, help: "Output file: one score per line.")
    var output: String

    @OptionGroup var common: CommonOptions
    @OptionGroup var carbon: CarbonOptions

    func run() throws {
        let run = try CarbonRun(command: "predict", model: nil, options: carbon, threads: common.resolvedThreads)
        let scores = try CLIError.onTrainingError { () throws(TrainingError) -> [Float] in
            let loaded = try LoadedModel.load(model)
            let (ds, temporary) = try loaded.dataset(data, format: format)
            defer { withExtendedLifetime(temporary) {} }
            return try Evaluation.probabilities(loaded.model, ShardBatchSource(dataset: ds, batchSize: 1024), pool: ThreadPool(threads: common.resolvedThreads))
        }
        var text = ""
        text.reserveCapacity(scores.count * 9)
        for p in scores { text += String(format: "%.6f\n", p) }
        try CLIError.onDataError(code: 73) { () throws(DataError) in try AtomicFile.write(Data(text.utf8), to: output) }
        run.finish(samples: scores.count)
        print("wrote \(scores.count) scores to \(output)")
    }
}

/// `train --json`: the report, and `tiering` (hit rate, misses, I/O) when tables were tiered.
struct WithTiering: Encodable {
    let report: TrainReport
    let tiering: Tiering.Report?
    private enum Keys: String, CodingKey { case tiering }
    func encode(to encoder: Encoder) throws {
        try report.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encodeIfPresent(tiering, forKey: .tiering)
    }
}
