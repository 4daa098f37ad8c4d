import ArgumentParser
import Foundation
import RecKitCarbon
import RecKitData
import RecKitKernels
import RecKitModels
import RecKitTraining

extension DenseOptimizerKind: ExpressibleByArgument {}
extension SparseOptimizerKind: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// Refuses bf16 where it cannot run natively, with oneDNN's reason (never a silent slow fallback).
func checkPrecision(_ p: Precision?) throws {
    guard p == .bf16 else { return }
    guard BF16Runtime.isAvailable else { throw ValidationError("--precision bf16 is unavailable: \(BF16Runtime.status)") }
}

/// Model families `reckit train` accepts; only DLRM is available in this build.
enum ModelKind: String, ExpressibleByArgument, CaseIterable { case lr, fm, dlrm, dcnv2 }

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a CTR model on a shard dataset and save a checkpoint.")

    @Option(name: .long, help: "Model: lr, fm, dlrm, dcnv2.")
    var model: ModelKind

    @Option(name: .long, parsing: .upToNextOption, help: "A shard dataset directory, or raw files with --format.")
    var data: [String]

    @Option(name: .long, help: "Raw input format: the files are converted first (vocabulary with --min-count, or --max-ind-range hashing).")
    var format: InputFormat?

    @Option(name: .customLong("min-count"), help: "Raw input: vocabulary minimum count (default 1).")
    var minCount: Int?

    @Option(name: .customLong("max-ind-range"), help: "Raw input: hash categorical ids modulo this size instead.")
    var maxIndRange: Int?

    @Option(name: .long, help: "Checkpoint to write.")
    var output: String

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

    @Option(name: .long, help: "Dense optimizer: sgd, adagrad, adam, adamw (default adam).")
    var optimizer: DenseOptimizerKind?

    @Option(name: .customLong("sparse-optimizer"), help: "Embedding optimizer: sgd, adagrad, rowwise_adagrad (default).")
    var sparseOptimizer: SparseOptimizerKind?

    @Option(name: .long, help: "Fraction of rows (the last ones) held out for validation (default 0.1).")
    var validation: Double?

    @Option(name: .customLong("seed"), help: "Seed (same seed, data and threads: identical results; default 1).")
    var seedOption: UInt64?
    var seed: UInt64 { seedOption ?? 1 }

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

    @Option(name: .long, help: "Continue from this checkpoint, on the same trajectory (same data and options).")
    var resume: String?

    @Option(name: .customLong("cross-layers"), help: "DCNv2: cross layers (default 3).")
    var crossLayers: Int?

    @Option(name: .customLong("low-rank"), help: "DCNv2: rank of the cross layers' weights (default: full rank).")
    var lowRank: Int?

    @Flag(name: .long, help: "DCNv2: parallel cross and deep networks (default stacked).")
    var parallel = false

    @Option(name: .long, help: "MLP GEMM precision: fp32 (default) or bf16 (mixed precision, fp32 master weights; oneDNN AMX/AVX512-BF16).")
    var precision: Precision?

    @OptionGroup var common: CommonOptions
    @OptionGroup var carbon: CarbonOptions

    func run() throws {
        let log = CLILog.logger("reckit.train")
        try CLILog.checkEnvironment(log)
        let run = try CarbonRun(command: "train", model: model.rawValue, options: carbon, threads: common.resolvedThreads)
        // Raw files: converted into a temporary shard dataset with the usual preprocessing (skip policy), whose
        // schema and vocabularies then go into the checkpoint.
        var dataDir = data.first ?? ""
        var temporary: String?
        if let format {
            let dir = NSTemporaryDirectory() + "reckit-train-\(getpid())"
            try? FileManager.default.removeItem(atPath: dir)
            var co = ConvertOptions(format: format, inputs: data, output: dir)
            co.minCount = minCount
            co.maxIndRange = maxIndRange
            do throws(DataError) {
                let rep = try Converter.run(co)
                if rep.skipped > 0 { log.warning("skipped \(rep.skipped) malformed rows; first: \(rep.errors[0])") }
            } catch { throw CLIError(message: error.description, code: 65) }
            dataDir = dir
            temporary = dir
        } else if data.count != 1 {
            throw ValidationError("--data takes one shard directory (or raw files with --format)")
        }
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        let ds = try CLIError.openDataset(dataDir)
        var o = TrainOptions.recipe(rows: ds.manifest.rows)
        if let config {
            do { o.apply(try TrainOptions.load(configFile: config)) } catch { throw CLIError(message: "\(error)", code: 64) }
        }
        if let epochs { o.epochs = max(1, epochs) }
        if let batchSize { o.batchSize = max(1, batchSize) }
        if let lr { o.learningRate = lr }
        if let sparseLR { o.sparseLearningRate = sparseLR }
        if let optimizer { o.denseOptimizer = optimizer }
        if let sparseOptimizer { o.sparseOptimizer = sparseOptimizer }
        if let validation { o.validationFraction = min(max(validation, 0), 0.9) }
        if seedOption != nil || config == nil { o.seed = seed }
        o.threads = common.resolvedThreads
        if let patience { o.earlyStoppingPatience = max(0, patience) }
        if let warmupSteps { o.warmupSteps = max(0, warmupSteps) }
        if let lrDecay { o.lrDecayPerEpoch = lrDecay }
        o.clipNorm = clipNorm
        if let embeddingL2 { o.embeddingL2 = embeddingL2 }
        o.maxSteps = maxSteps
        if let crossLayers { o.crossLayers = max(1, crossLayers) }
        o.crossRank = lowRank
        o.crossParallel = parallel
        if let precision { o.precision = precision }
        try checkPrecision(o.precision)
        var resumeState: ((any CTRModel), DenseOptimizer, TrainPosition)?
        if let resume {
            do throws(CheckpointError) {
                let (rm, ro, rh) = try Checkpoint.load(resume, maxBatch: o.batchSize, maxIndicesPerTable: o.batchSize * 64)
                guard let pos = rh.position else { throw CheckpointError.invalid(path: resume, reason: "no training position saved") }
                guard rm.kind == model.rawValue else {
                    throw CheckpointError.invalid(path: resume, reason: "holds a \(rm.kind) model, not \(model.rawValue)")
                }
                resumeState = (rm, ro, pos)
            } catch {
                throw CLIError(message: error.description, code: 65)
            }
        }
        let (m, opt, r) = try Trainer.train(kind: model.rawValue, ds, options: o, resume: resumeState) { p in
            log.info("epoch \(p.epoch + 1) step \(p.step): loss \(String(format: "%.4f", p.loss)), \(Int(p.samplesPerSecond)) samples/s, ETA \(Int(p.eta)) s")
        }
        var report = r
        let header = CheckpointHeader(model: model.rawValue, dlrm: m.config, schema: ds.schema, step: opt.step, rowsSeen: r.rowsTrained,
                                      denseOptimizer: o.denseOptimizer, sparseOptimizer: o.sparseOptimizer.rawValue, seed: seed,
                                      position: r.position)
        var vocabularies: [[UInt64]] = []
        if case .vocabulary = ds.schema.preprocessing.categorical {
            do throws(DataError) { vocabularies = try CategoricalEncoder.readVocabulary(from: dataDir) } catch {
                throw CLIError(message: error.description, code: 66)
            }
        }
        do throws(CheckpointError) {
            try Checkpoint.save(m, optimizer: opt, header: header, vocabularies: vocabularies, to: output)
        } catch {
            throw CLIError(message: error.description, code: 73)
        }
        report.checkpoint = output
        run.finish(samples: r.rowsTrained)
        if common.json { try printJSON(report); return }
        var line = String(format: "trained \(model.rawValue.uppercased()) on %d rows in %.1f s (%.0f samples/s), final loss %.4f", r.rowsTrained, r.seconds, r.samplesPerSecond, r.finalLoss)
        if let v = r.validation {
            line += String(format: "; validation AUC %.4f, logloss %.4f on %d rows", v.auc ?? .nan, v.logloss, v.rows)
        }
        print(line + "; checkpoint: \(output)")
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluate a checkpoint on labelled data.")

    @Option(name: .long, help: "Checkpoint from `reckit train`.")
    var model: String

    @Option(name: .long, parsing: .upToNextOption, help: "A shard dataset directory, or raw files with --format.")
    var data: [String]

    @Option(name: .long, help: "Raw input format; rows get the checkpoint's preprocessing.")
    var format: InputFormat?

    @OptionGroup var common: CommonOptions
    @OptionGroup var carbon: CarbonOptions

    func run() throws {
        let run = try CarbonRun(command: "eval", model: nil, options: carbon, threads: common.resolvedThreads)
        let loaded = try ModelInput.load(model)
        let (ds, temporary) = try ModelInput.dataset(data, format: format, checkpoint: loaded)
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        guard ds.schema.hasLabel else { throw CLIError(message: "\(data.joined(separator: " ")) has no labels to evaluate against (use `reckit predict`)", code: 65) }
        let metrics = try Trainer.evaluate(loaded.model, ds, rows: 0..<ds.manifest.rows, batchSize: ModelInput.batch,
                                           pool: ThreadPool(threads: common.resolvedThreads))
        run.finish(samples: metrics.rows)
        if common.json { try printJSON(metrics); return }
        print(String(format: "AUC %.4f, logloss %.4f, NE %.4f, calibration %.3f, accuracy %.4f on %d rows",
                     metrics.auc ?? .nan, metrics.logloss, metrics.ne ?? .nan, metrics.calibration ?? .nan, metrics.accuracy, metrics.rows))
    }
}

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Score rows with a checkpoint: one probability per input row, in input order.")

    @Option(name: .long, help: "Checkpoint from `reckit train`.")
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
        let loaded = try ModelInput.load(model)
        let (ds, temporary) = try ModelInput.dataset(data, format: format, checkpoint: loaded)
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        let pool = ThreadPool(threads: common.resolvedThreads)
        let loader = try BatchLoader(dataset: ds, options: LoaderOptions(batchSize: ModelInput.batch))
        var text = ""
        var rows = 0
        let dc = ds.schema.denseNames.count
        while let b = loader.next() {
            let dense = dc == 0 ? [Float](repeating: 0, count: b.size) : b.dense
            _ = try loaded.model.forward(dense: dense, sparse: b.sparse, labels: [Float](repeating: 0, count: b.size), pool: pool)
            for z in loaded.model.lastLogits { text += String(format: "%.6f\n", 1 / (1 + exp(-Double(z)))) }
            rows += b.size
        }
        if let e = loader.error { throw CLIError(message: e.description, code: 65) }
        try CLIError.onDataError(code: 73) { () throws(DataError) in try AtomicFile.write(Data(text.utf8), to: output) }
        run.finish(samples: rows)
        print("wrote \(rows) scores to \(output)")
    }
}

/// Loading a checkpoint and turning the --data argument into shards with the checkpoint's preprocessing.
enum ModelInput {
    static let batch = 1024

    struct Loaded {
        var model: any CTRModel
        var header: CheckpointHeader
        var vocabularies: [[UInt64]]
    }

    static func load(_ path: String) throws -> Loaded {
        do throws(CheckpointError) {
            let (m, _, h, v) = try Checkpoint.loadWithVocabularies(path, maxBatch: batch, maxIndicesPerTable: batch * 64)
            m.prepareForInference()  // eval/predict only read the weights
            return Loaded(model: m, header: h, vocabularies: v)
        } catch {
            throw CLIError(message: error.description, code: 65)
        }
    }

    /// A shard dataset for `data`: the directory itself, or raw files converted (in a temp directory) with the
    /// checkpoint's categorical mapping and `fail` on any malformed row, so scores stay aligned with input rows.
    static func dataset(_ data: [String], format: InputFormat?, checkpoint: Loaded) throws -> (ShardDataset, temporary: String?) {
        guard let schema = checkpoint.header.schema else { throw CLIError(message: "checkpoint has no data schema", code: 65) }
        let dir: String
        if let format {
            let encoder: CategoricalEncoder
            switch schema.preprocessing.categorical {
            case .hash(let m): encoder = CategoricalEncoder(mode: .hash(modulo: m), featureCount: schema.sparse.count)
            case .vocabulary(let k, _):
                guard checkpoint.vocabularies.count == schema.sparse.count else {
                    throw CLIError(message: "checkpoint lacks the vocabularies needed for raw \(format.rawValue) rows", code: 65)
                }
                encoder = CategoricalEncoder(minCount: k, vocabularies: checkpoint.vocabularies)
            case .identity:
                throw CLIError(message: "the model was trained on synthetic ids; raw files cannot be mapped to them", code: 65)
            }
            dir = NSTemporaryDirectory() + "reckit-input-\(getpid())"
            try? FileManager.default.removeItem(atPath: dir)
            var o = ConvertOptions(format: format, inputs: data, output: dir)
            o.onError = .fail
            o.fixedEncoder = encoder
            _ = try CLIError.onDataError(code: 65) { () throws(DataError) in try Converter.run(o) }
        } else {
            guard data.count == 1 else { throw ValidationError("--data takes one shard directory (or raw files with --format)") }
            dir = data[0]
        }
        let ds = try CLIError.openDataset(dir)
        guard checkpoint.model.config.tableSizes == ds.schema.sparse.map(\.cardinality) else {
            throw CLIError(message: "\(data.joined(separator: " ")) does not match the checkpoint's tables (converted with other options?)", code: 65)
        }
        return (ds, format == nil ? nil : dir)
    }
}
