import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels
import RecKitTiered

/// `reckit train` as a library call: data (a shard directory, or raw files converted on the spot), the effective
/// options (the data-size recipe, then a resumed checkpoint's recipe, then `--config`, then the flags given), a new
/// or resumed model, the trainer, and the checkpoint with the data's schema and vocabularies.
public struct TrainingRun {
    public var model: ModelKind
    /// One shard directory, or raw files with `format`.
    public var data: [String]
    public var format: InputFormat?
    public var minCount: Int?
    public var maxIndRange: Int?
    public var configFile: String?
    /// Options given on the command line (nil fields: not given).
    public var flags = TrainOptions.File()
    public var threads = ThreadPool.hardwareConcurrency
    public var resume: String?
    public var output: String
    /// Tables larger than RAM: tier the large ones under these options (nil: every table in RAM).
    public var tiering: TierOptions?
    /// Write the checkpoint (atomically, to `output`) every this many steps, not only at the end.
    public var checkpointEvery: Int?
    /// Receives the effective recipe, logged intervals and validation passes (a run directory).
    public var observer: (any TrainingObserver)?
    /// Steps per logged interval (nil: about 50 per epoch).
    public var logEvery: Int?

    /// Set when this process is one rank of a distributed run (RecKitDistributed): tables sharded, dense layers
    /// replicated, each rank on its share of every batch; rank 0 writes the (single-process format) checkpoint.
    public var distribution: (any TrainingDistribution)?

    public init(model: ModelKind, data: [String], output: String) { self.model = model; self.data = data; self.output = output }

    /// What `run` did.
    public struct Outcome {
        public var report: TrainReport
        public var options: TrainOptions
        /// Malformed rows skipped while converting raw input.
        public var skippedRows: Int
        public var firstSkipped: RowIssue?
        public var trainer: Trainer
        /// Tiered tables: hit rate, misses, I/O (nil when every table was in RAM).
        public var tiering: Tiering.Report?
    }

    /// The training split (the first rows by file order, shuffled within themselves) and the validation split (the
    /// rest) of `ds` — taken by row index before any shuffling, so no validation row reaches a training batch.
    /// A rank's share of the training and validation sources (the sources themselves without a distribution).
    static func shard(_ train: ShardBatchSource, _ validation: ShardBatchSource?,
                      _ d: (any TrainingDistribution)?) -> (any BatchSource, (any BatchSource)?) {
        guard let d else { return (train, validation) }
        return (d.shard(train), validation.map { d.shard($0) })
    }

    /// The sharded model of a distributed rank: fresh, or holding a resumed (single-process) model's state.
    static func shardedModel(_ d: any TrainingDistribution, resumed: (any CTRModel)?, config: any ModelConfiguration,
                             options o: TrainOptions) throws(TrainingError) -> any CTRModel {
        guard let whole = resumed else { return try d.makeModel(config, options: o) }
        let m = try d.makeModel(whole.configuration, options: o)
        try d.adopt(whole, into: m)
        return m
    }

    public static func sources(_ ds: ShardDataset, options o: TrainOptions) -> (train: ShardBatchSource, validation: ShardBatchSource?) {
        let trainRows = o.trainRows(of: ds.manifest.rows)
        var train = ShardBatchSource(dataset: ds, rows: 0..<trainRows, batchSize: o.batchSize)
        train.shuffleBuffer = o.shuffleBuffer
        train.seed = o.seed
        train.dedup = o.dedup
        let validation = trainRows < ds.manifest.rows ? ShardBatchSource(dataset: ds, rows: trainRows..<ds.manifest.rows, batchSize: o.batchSize) : nil
        return (train, validation)
    }

    public func run(log: ((String) -> Void)? = nil, progress: ((TrainProgress) -> Void)? = nil) throws(TrainingError) -> Outcome {
        var temporary: TemporaryDataset?
        let ds: ShardDataset
        var vocabularies: [[UInt64]] = []
        // A config file may carry the vocabulary's min_count (a tuned recipe does); the flag wins.
        let configured = try configFile.map { (p) throws(TrainingError) in try TrainOptions.load(configFile: p) }
        do throws(DataError) {
            if let format {
                let t = try TemporaryDataset(files: data, format: format, minCount: minCount ?? configured?.min_count, maxIndRange: maxIndRange)
                temporary = t
                ds = t.dataset
                vocabularies = try t.vocabularies()
            } else {
                guard data.count == 1 else { throw DataError.invalidOptions("--data takes one shard directory (or raw files with --format)") }
                ds = try ShardDataset(directory: data[0])
                if case .vocabulary = ds.schema.preprocessing.categorical {
                    vocabularies = try CategoricalEncoder.readVocabulary(from: data[0])
                }
            }
        } catch { throw .data(error) }
        guard ds.schema.hasLabel else { throw .options("training needs labels; \(data.joined(separator: " ")) has none") }
        var o = TrainOptions.recipe(rows: ds.manifest.rows)
        let resumed = try resume.map { (p) throws(TrainingError) in try TrainingCheckpoint.resume(p, tiering: tiering) }
        if let r = resumed {
            guard r.model.kind == model else {
                throw .options("\(resume!) holds a \(r.model.kind.rawValue) model, not \(model.rawValue)")
            }
            if let recipe = r.recipe { o.apply(recipe) } else {
                o.denseOptimizer = r.optimizer.kind
                if let s = r.metadata.sparseOptimizerKind { o.sparseOptimizer = s }
                o.seed = r.metadata.seed
            }
        }
        if let configured { o.apply(configured) }
        o.apply(flags)
        o.threads = threads
        if let r = resumed {
            // State in the checkpoint was built for one optimizer and one architecture: refuse a change instead of
            // pairing, say, Adam's moments with an SGD recipe.
            guard o.denseOptimizer == r.optimizer.kind else {
                throw .options("\(resume!) was trained with the \(r.optimizer.kind.rawValue) dense optimizer (its moments are in the checkpoint); --optimizer \(o.denseOptimizer.rawValue) cannot continue it — omit the flag")
            }
            let sparse = r.model.sparseOptimizer ?? .sgd
            guard o.sparseOptimizer == sparse else {
                throw .options("\(resume!) was trained with the \(sparse.rawValue) sparse optimizer; --sparse-optimizer \(o.sparseOptimizer.rawValue) cannot continue it — omit the flag")
            }
            guard o.modelConfiguration(model, schema: ds.schema).encodedJSON() == r.model.configuration.encodedJSON() else {
                throw .options("\(resume!)'s model does not match this data and these architecture options (embedding dim, hidden sizes, cross layers)")
            }
        }
        let m: any CTRModel
        var provider = resumed?.tiering
        if distribution != nil, tiering != nil {
            throw .options("tiered tables (--tier-*) and --distributed cannot be combined yet: shard the tables across ranks instead")
        }
        if let d = distribution {
            m = try Self.shardedModel(d, resumed: resumed?.model, config: o.modelConfiguration(model, schema: ds.schema), options: o)
        } else if let r = resumed { m = r.model } else {
            let config = o.modelConfiguration(model, schema: ds.schema)
            if let tiering { provider = try Tiering.provider(tiering, config: config, optimizer: o.sparseOptimizer) }
            do throws(ModelError) {
                m = try config.makeModel(initialization: .random(seed: o.seed), sparseOptimizer: o.sparseOptimizer, quantization: nil,
                                         storage: provider)
            } catch { throw .model(error) }
        }
        if let provider { log?(Tiering.describe(provider)) }
        let pool = ThreadPool(threads: o.threads)
        let trainer = try Trainer(model: m, optimizer: resumed?.optimizer ?? DenseOptimizer(kind: o.denseOptimizer), options: o, pool: pool,
                                  position: resumed?.position ?? TrainPosition())
        try distribution?.attach(trainer)
        if let d = distribution { log?(d.summary) }
        let (wholeTrain, wholeValidation) = Self.sources(ds, options: o)
        let (train, validation) = Self.shard(wholeTrain, wholeValidation, distribution)
        let trainRows = train.rowCount
        trainer.observer = observer
        trainer.logEvery = logEvery
        try observer?.started(RunStart(model: model, options: o, trainRows: trainRows, validationRows: ds.manifest.rows - trainRows,
                                       datasetDirectory: ds.directory, minCount: minCount ?? configured?.min_count,
                                       resumedStep: resumed?.position.step ?? 0))
        if !trainer.precisionPlan.isEmpty { log?("mixed precision (probed on this CPU): " + describePrecisionPlan(trainer.precisionPlan)) }
        log?("training \(model.rawValue) on \(trainRows) rows (validation \(ds.manifest.rows - trainRows)), batch \(o.batchSize), \(o.denseOptimizer.rawValue) + \(o.sparseOptimizer.rawValue), seed \(o.seed)")
        let outputDir = (output as NSString).deletingLastPathComponent
        let rowsBefore = resumed?.metadata.rowsSeen ?? 0
        let distribution = self.distribution
        let save = { (position: TrainPosition, rows: Int) throws(TrainingError) in
            try TrainingCheckpoint.save(model: m, optimizer: trainer.optimizer, options: o, position: position, schema: ds.schema,
                                        vocabularies: vocabularies, rowsSeen: rowsBefore + rows, to: output, distribution: distribution)
        }
        var report = try trainer.fit(train: train, validation: validation, snapshotDirectory: outputDir.isEmpty ? "." : outputDir,
                                     checkpointEvery: checkpointEvery, checkpoint: save, progress: progress)
        try save(report.position, report.rowsTrained)
        report.checkpoint = output
        if BF16Runtime.fallbackGEMMs > 0 {
            log?("warning: \(BF16Runtime.fallbackGEMMs) bf16 GEMMs ran on the slow reference loops (oneDNN: \(BF16Runtime.status))")
        }
        let tierReport = provider.map(Tiering.report)
        if let t = tierReport, t.tables > 0 {
            log?(String(format: "tiering: hit rate %.4f (%d misses of %d lookups, %d from the prefetch), %d rows written back, %.1f MiB read, %.1f MiB written",
                        t.hitRate, t.misses, t.lookups, t.prefetchHits, t.writtenBack, Double(t.bytesRead) / 1_048_576, Double(t.bytesWritten) / 1_048_576))
        }
        return Outcome(report: report, options: o, skippedRows: temporary?.report.skipped ?? 0,
                       firstSkipped: temporary?.report.errors.first, trainer: trainer, tiering: tierReport)
    }
}

/// A checkpoint loaded for scoring, with what raw rows need: the data schema and the vocabularies.
public struct LoadedModel {
    public var model: any CTRModel
    public var metadata: CheckpointMetadata
    public var vocabularies: [[UInt64]]
    public var path: String

    /// Loads `path` for inference (no optimizer state) and packs constant weights.
    public static func load(_ path: String) throws(TrainingError) -> LoadedModel {
        do throws(CheckpointError) {
            let reader = try Checkpoint.open(path)
            let model = try reader.loadModel(optimizerState: false)
            let vocab = try reader.vocabularies(features: reader.metadata.schema?.sparse.map(\.name) ?? [])
            model.prepareForInference()
            return LoadedModel(model: model, metadata: reader.metadata, vocabularies: vocab, path: path)
        } catch { throw .checkpoint(error) }
    }

    /// The rows to score: a shard directory, or raw files converted with this model's preprocessing (every row must
    /// parse, so scores stay aligned with input rows). The temporary dataset, if any, lives as long as the result.
    public func dataset(_ data: [String], format: InputFormat?) throws(TrainingError) -> (ShardDataset, TemporaryDataset?) {
        guard let schema = metadata.schema else { throw .options("\(path) has no data schema, so its input cannot be checked") }
        let ds: ShardDataset, temporary: TemporaryDataset?
        do throws(DataError) {
            if let format {
                guard let encoder = try CategoricalEncoder.forSchema(schema, vocabularies: vocabularies) else {
                    throw DataError.invalidOptions("the model was trained on synthetic ids; raw files cannot be mapped to them")
                }
                let t = try TemporaryDataset(files: data, format: format, encoder: encoder)
                (ds, temporary) = (t.dataset, t)
            } else {
                guard data.count == 1 else { throw DataError.invalidOptions("--data takes one shard directory (or raw files with --format)") }
                (ds, temporary) = (try ShardDataset(directory: data[0]), nil)
            }
        } catch { throw .data(error) }
        let expected = model.configuration.sparse
        let names = Set(ds.schema.sparse.map(\.name))
        for f in expected where !names.contains(f.name) || ds.schema.sparse.first(where: { $0.name == f.name })?.cardinality != f.rows {
            throw .options("\(data.joined(separator: " ")) does not match the model: feature \(f.name) (\(f.rows) rows) is missing or has another cardinality (converted with other options?)")
        }
        return (ds, temporary)
    }
}
