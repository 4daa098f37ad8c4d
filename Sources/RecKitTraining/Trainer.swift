import Foundation
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels

/// How to train (defaults: the small-data recipe; see `TrainOptions.recipe(rows:)`).
public struct TrainOptions: Sendable {
    public var epochs = 3
    public var batchSize = 256
    public var learningRate: Float = 1e-3
    public var denseOptimizer = DenseOptimizerKind.adam
    public var sparseOptimizer = SparseOptimizerKind.rowWiseAdagrad
    public var sparseLearningRate: Float = 0.05
    /// Fraction of rows, taken from the end (time order), held out for validation.
    public var validationFraction = 0.1
    public var shuffleBuffer = 0
    public var seed: UInt64 = 1
    public var threads = ThreadPool.hardwareConcurrency
    public var embeddingDim = 16
    public var bottomHidden = [64, 32]
    public var topHidden = [128, 64]
    /// Stop when validation AUC has not improved for this many epochs, keeping the best epoch's parameters
    /// (0 = train all epochs). Needs a validation split.
    public var earlyStoppingPatience = 1
    /// Linear learning-rate warm-up over this many steps (dense and sparse), then `lrDecayPerEpoch`.
    public var warmupSteps = 0
    /// Multiplies both learning rates after every epoch (1 = constant).
    public var lrDecayPerEpoch: Float = 1
    /// Clip the global L2 norm of the dense gradients to this value (nil = no clipping).
    public var clipNorm: Float?
    /// L2 coefficient on the embedding rows touched by a batch.
    public var embeddingL2: Float = 0
    /// Stop after this many optimizer steps in total (nil = run the epochs).
    public var maxSteps: Int?
    /// DCNv2: cross layers, low rank (nil = full), parallel (false = stacked).
    public var crossLayers = 3
    public var crossRank: Int?
    public var crossParallel = false
    /// Precision of the MLP GEMMs: fp32, or bf16 mixed precision (fp32 master weights; needs oneDNN).
    public var precision = Precision.fp32

    public init() {}

    /// Fields a `--config` JSON file may set (all optional; unknown keys are refused so typos are not ignored):
    /// epochs, batch_size, learning_rate, dense_optimizer, sparse_optimizer, sparse_learning_rate,
    /// validation_fraction, shuffle_buffer, seed, embedding_dim, bottom_hidden, top_hidden,
    /// early_stopping_patience, warmup_steps, lr_decay_per_epoch, clip_norm, embedding_l2, cross_layers,
    /// cross_rank, cross_parallel, precision ("fp32" | "bf16").
    public struct File: Codable, Sendable {
        public var epochs: Int?, batch_size: Int?, learning_rate: Float?, dense_optimizer: DenseOptimizerKind?
        public var sparse_optimizer: SparseOptimizerKind?, sparse_learning_rate: Float?, validation_fraction: Double?
        public var shuffle_buffer: Int?, seed: UInt64?, embedding_dim: Int?, bottom_hidden: [Int]?, top_hidden: [Int]?
        public var early_stopping_patience: Int?, warmup_steps: Int?, lr_decay_per_epoch: Float?, clip_norm: Float?
        public var embedding_l2: Float?, cross_layers: Int?, cross_rank: Int?, cross_parallel: Bool?
        public var precision: Precision?
    }

    /// Applies a config file over these options.
    public mutating func apply(_ f: File) {
        if let v = f.epochs { epochs = max(1, v) }
        if let v = f.batch_size { batchSize = max(1, v) }
        if let v = f.learning_rate { learningRate = v }
        if let v = f.dense_optimizer { denseOptimizer = v }
        if let v = f.sparse_optimizer { sparseOptimizer = v }
        if let v = f.sparse_learning_rate { sparseLearningRate = v }
        if let v = f.validation_fraction { validationFraction = min(max(v, 0), 0.9) }
        if let v = f.shuffle_buffer { shuffleBuffer = max(0, v) }
        if let v = f.seed { seed = v }
        if let v = f.embedding_dim { embeddingDim = max(1, v) }
        if let v = f.bottom_hidden { bottomHidden = v }
        if let v = f.top_hidden { topHidden = v }
        if let v = f.early_stopping_patience { earlyStoppingPatience = max(0, v) }
        if let v = f.warmup_steps { warmupSteps = max(0, v) }
        if let v = f.lr_decay_per_epoch { lrDecayPerEpoch = v }
        if let v = f.clip_norm { clipNorm = v }
        if let v = f.embedding_l2 { embeddingL2 = v }
        if let v = f.cross_layers { crossLayers = max(1, v) }
        if let v = f.cross_rank { crossRank = v }
        if let v = f.cross_parallel { crossParallel = v }
        if let v = f.precision { precision = v }
    }

    /// Reads a JSON config file, refusing unknown keys with their names.
    public static func load(configFile path: String) throws -> File {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.io(path: path, reason: "cannot read config") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw DataError.invalidOptions("\(path): a config must be a JSON object")
        }
        let known = Set(Mirror(reflecting: File()).children.compactMap(\.label))
        let unknown = object.keys.filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else { throw DataError.invalidOptions("\(path): unknown config keys \(unknown.joined(separator: ", ")); known: \(known.sorted().joined(separator: ", "))") }
        do { return try JSONDecoder().decode(File.self, from: data) } catch {
            throw DataError.invalidOptions("\(path): \(error)")
        }
    }

    /// A recipe from the data size: the DLRM Criteo Kaggle architecture (bottom 512-256-64, top 512-256,
    /// batch 2048, one epoch) from 10M rows up; below, a smaller network (bottom 64-32, top 128-64), Adam 1e-3,
    /// batch 256, and up to 10 epochs under 1M rows with early stopping (3 epochs in between).
    public static func recipe(rows: Int) -> TrainOptions {
        var o = TrainOptions()
        if rows >= 10_000_000 {
            o.bottomHidden = [512, 256, 64]
            o.topHidden = [512, 256]
            o.batchSize = 2048
            o.epochs = 1
        } else if rows < 1_000_000 {
            o.epochs = 10  // small data: early stopping on the validation split picks the epoch
        }
        return o
    }
}

/// Where training stands: saved in checkpoints so `--resume` continues the same trajectory.
public struct TrainPosition: Codable, Sendable, Equatable {
    /// Optimizer steps taken.
    public var step = 0
    /// Current epoch (0-based) and rows of it already trained on (a multiple of the batch size).
    public var epoch = 0
    public var rowInEpoch = 0
    public init() {}
}

public struct TrainReport: Codable, Sendable {
    public var rowsTrained: Int
    public var steps: Int
    public var seconds: Double
    public var samplesPerSecond: Double
    public var finalLoss: Double
    public var validation: BinaryMetrics?
    public var checkpoint: String?
    /// Epochs run, and the epoch (1-based) whose parameters were kept.
    public var epochs: Int
    public var bestEpoch: Int
    public var position: TrainPosition

    enum CodingKeys: String, CodingKey {
        case steps, seconds, validation, checkpoint, epochs, position
        case bestEpoch = "best_epoch"
        case rowsTrained = "rows_trained"
        case samplesPerSecond = "samples_per_s"
        case finalLoss = "final_loss"
    }
}

/// Progress of training, for a status line.
public struct TrainProgress: Sendable {
    public var epoch: Int, step: Int, rows: Int, totalRows: Int, loss: Double, samplesPerSecond: Double
    public var eta: Double { samplesPerSecond > 0 ? Double(totalRows - rows) / samplesPerSecond : .nan }
}

public enum Trainer {
    /// Trains DLRM on the first (1 − validationFraction) of the rows in file order, evaluates on the rest.
    ///
    /// With `resume` (a model, its optimizer and position from a checkpoint) training continues exactly where it
    /// stopped: same batches, same learning-rate schedule, bit-identical results to an uninterrupted run
    /// (early stopping's best-epoch snapshot is not checkpointed; use patience 0 for exact resumption across epochs).
    public static func trainDLRM(_ ds: ShardDataset, options o: TrainOptions,
                                 resume: (DLRM, DenseOptimizer, TrainPosition)? = nil,
                                 progress: ((TrainProgress) -> Void)? = nil) throws -> (DLRM, DenseOptimizer, TrainReport) {
        let (m, opt, r) = try train(kind: "dlrm", ds, options: o, resume: resume.map { ($0.0 as any CTRModel, $0.1, $0.2) }, progress: progress)
        return (m as! DLRM, opt, r)  // allowed: train(kind: "dlrm") always builds a DLRM
    }

    /// Trains a model of `kind` ("lr", "fm", "dlrm"); see `trainDLRM`.
    public static func train(kind: String, _ ds: ShardDataset, options o: TrainOptions,
                             resume: ((any CTRModel), DenseOptimizer, TrainPosition)? = nil,
                             progress: ((TrainProgress) -> Void)? = nil) throws -> ((any CTRModel), DenseOptimizer, TrainReport) {
        let schema = ds.schema
        guard schema.hasLabel else { throw DataError.invalidOptions("training needs labels; \(ds.directory) has none") }
        let rows = ds.manifest.rows
        let trainRows = Int(Double(rows) * (1 - o.validationFraction))
        var config = DLRMConfig(denseCount: max(schema.denseNames.count, 1), tableSizes: schema.sparse.map(\.cardinality),
                                embeddingDim: o.embeddingDim, bottomHidden: o.bottomHidden, topHidden: o.topHidden)
        if kind == "dcnv2" { config.crossLayers = o.crossLayers; config.crossRank = o.crossRank; config.crossParallel = o.crossParallel }
        let maxIndices = o.batchSize * 64
        guard let fresh = resume?.0 ?? makeCTRModel(kind: kind, config: config, maxBatch: o.batchSize, maxIndicesPerTable: maxIndices, seed: o.seed) else {
            throw DataError.invalidOptions("unknown model '\(kind)'")
        }
        let model = fresh
        model.precision = o.precision
        let optimizer = resume?.1 ?? DenseOptimizer(kind: o.denseOptimizer)
        if let r = resume?.0, r.config != config || r.maxBatch < o.batchSize {
            throw DataError.invalidOptions("the checkpoint's model does not match this dataset and batch size")
        }
        var position = resume?.2 ?? TrainPosition()
        let pool = ThreadPool(threads: o.threads)
        let t0 = Date()
        var steps = position.step, seen = 0, lastLoss = Double.nan
        var lastReport = Date.distantPast
        var best: (auc: Double, epoch: Int, snapshot: [[Float]], metrics: BinaryMetrics)? = nil
        var epochsRun = 0
        let validating = trainRows < rows
        var stoppedEarly = false
        for epoch in position.epoch..<max(position.epoch, o.epochs) {
            epochsRun = epoch + 1
            let skipRows = epoch == position.epoch ? position.rowInEpoch : 0
            var lo = LoaderOptions(batchSize: o.batchSize)
            lo.shuffleBuffer = o.shuffleBuffer
            lo.seed = o.seed &+ UInt64(epoch)
            let loader = try BatchLoader(dataset: ds, options: lo)
            var row = 0
            while let batch = loader.next() {
                if let m = o.maxSteps, steps >= m { stoppedEarly = true; break }
                let take = min(batch.size, trainRows - row)
                row += batch.size
                if take <= 0 { break }
                if row <= skipRows { continue }  // resumed: these batches were trained on before the checkpoint
                let b = take == batch.size ? batch : Self.prefix(batch, take, denseCount: schema.denseNames.count)
                let dense = schema.denseNames.isEmpty ? [Float](repeating: 0, count: b.size) : b.dense
                lastLoss = try model.forward(dense: dense, sparse: b.sparse, labels: b.labels, pool: pool)
                model.zeroGrad()
                let scale = Self.learningRateScale(step: steps, epoch: epoch, options: o)
                let update = SparseUpdate(optimizer: o.sparseOptimizer, learningRate: o.sparseLearningRate * scale,
                                          weightDecay: o.embeddingL2)
                try model.backward(dense: dense, update: update, pool: pool)
                if let c = o.clipNorm { Self.clip(model.denseParameters, maxNorm: c) }
                optimizer.apply(model.denseParameters, lr: o.learningRate * scale, pool: pool)
                steps += 1
                seen += b.size
                position = TrainPosition()
                position.step = steps
                position.epoch = epoch
                position.rowInEpoch = row
                if let progress, Date().timeIntervalSince(lastReport) > 2 {
                    lastReport = Date()
                    let el = Date().timeIntervalSince(t0)
                    progress(TrainProgress(epoch: epoch, step: steps, rows: seen, totalRows: trainRows * o.epochs,
                                           loss: lastLoss, samplesPerSecond: Double(seen) / el))
                }
            }
            if let e = loader.error { throw e }
            if stoppedEarly { break }
            position.epoch = epoch + 1
            position.rowInEpoch = 0
            if validating && o.earlyStoppingPatience > 0 {
                let metrics = try evaluate(model, ds, rows: trainRows..<rows, batchSize: o.batchSize, pool: pool)
                let auc = metrics.auc ?? 0
                if best == nil || auc > best!.auc {
                    best = (auc, epoch + 1, Self.snapshot(model), metrics)
                } else if epoch + 1 - best!.epoch >= o.earlyStoppingPatience {
                    break
                }
            }
        }
        let seconds = Date().timeIntervalSince(t0)
        if let best, best.epoch != epochsRun { Self.restore(model, best.snapshot) }
        // The kept epoch was already evaluated; evaluate only when early stopping did not run.
        let validation = try best?.metrics ?? (validating ? evaluate(model, ds, rows: trainRows..<rows, batchSize: o.batchSize, pool: pool) : nil)
        let report = TrainReport(rowsTrained: seen, steps: steps, seconds: seconds, samplesPerSecond: Double(seen) / max(seconds, 1e-9),
                                 finalLoss: lastLoss, validation: validation, checkpoint: nil, epochs: epochsRun,
                                 bestEpoch: best?.epoch ?? epochsRun, position: position)
        return (model, optimizer, report)
    }

    /// Warm-up then per-epoch decay: min(1, (step+1)/warmup) · decay^epoch.
    static func learningRateScale(step: Int, epoch: Int, options o: TrainOptions) -> Float {
        let warm: Float = o.warmupSteps > 0 ? min(1, Float(step + 1) / Float(o.warmupSteps)) : 1
        return warm * Float(pow(Double(o.lrDecayPerEpoch), Double(epoch)))
    }

    /// Scales all gradients so their global L2 norm is at most `maxNorm`.
    static func clip(_ params: [(AlignedBuffer<Float>, AlignedBuffer<Float>)], maxNorm: Float) {
        var sq: Double = 0
        for (_, g) in params { for i in 0..<g.count { sq += Double(g.pointer[i]) * Double(g.pointer[i]) } }
        let norm = Float(sq.squareRoot())
        guard norm > maxNorm, norm > 0 else { return }
        let s = maxNorm / norm
        for (_, g) in params { for i in 0..<g.count { g.pointer[i] *= s } }
    }

    /// Copies of every parameter (dense, tables, sparse-optimizer state) for early stopping.
    static func snapshot(_ m: any CTRModel) -> [[Float]] {
        m.denseParameters.map { $0.0.toArray() } + m.tables.map { $0.toArray() } + m.states.map { $0.toArray() }
    }

    static func restore(_ m: any CTRModel, _ s: [[Float]]) {
        let buffers = m.denseParameters.map(\.0) + m.tables + m.states
        for (b, v) in zip(buffers, s) { v.withUnsafeBufferPointer { b.pointer.update(from: $0.baseAddress!, count: v.count) } }
    }

    /// Metrics of `model` on rows `range` (file order) of `ds`.
    public static func evaluate(_ model: any CTRModel, _ ds: ShardDataset, rows range: Range<Int>, batchSize: Int,
                                pool: ThreadPool) throws -> BinaryMetrics {
        let dc = ds.schema.denseNames.count
        let loader = try BatchLoader(dataset: ds, options: LoaderOptions(batchSize: min(batchSize, model.maxBatch)))
        var logits: [Float] = [], labels: [Float] = []
        var row = 0
        while let batch = loader.next() {
            defer { row += batch.size }
            if row + batch.size <= range.lowerBound { continue }
            if row >= range.upperBound { break }
            let lo = max(0, range.lowerBound - row), hi = min(batch.size, range.upperBound - row)
            var b = batch
            if lo > 0 || hi < batch.size { b = Self.slice(batch, lo..<hi, denseCount: dc) }
            let dense = dc == 0 ? [Float](repeating: 0, count: b.size) : b.dense
            _ = try model.forward(dense: dense, sparse: b.sparse, labels: b.labels.isEmpty ? Array(repeating: 0, count: b.size) : b.labels, pool: pool)
            logits += model.lastLogits
            labels += b.labels
        }
        if let e = loader.error { throw e }
        return BinaryMetrics.compute(logits: logits, labels: labels)
    }

    static func prefix(_ b: Batch, _ n: Int, denseCount: Int) -> Batch { slice(b, 0..<n, denseCount: denseCount) }

    /// Samples `range` of a batch.
    static func slice(_ b: Batch, _ range: Range<Int>, denseCount: Int) -> Batch {
        let kjt = b.sparse
        var values: [[Int32]] = [], offsets: [[Int32]] = [], weights: [[Float]] = []
        for f in 0..<kjt.values.count {
            let s = Int(kjt.offsets[f][range.lowerBound]), e = Int(kjt.offsets[f][range.upperBound])
            values.append(Array(kjt.values[f][s..<e]))
            offsets.append(kjt.offsets[f][range.lowerBound...range.upperBound].map { $0 - Int32(s) })
            weights.append(kjt.weights[f].isEmpty ? [] : Array(kjt.weights[f][s..<e]))
        }
        return Batch(labels: b.labels.isEmpty ? [] : Array(b.labels[range]),
                     dense: Array(b.dense[(range.lowerBound * denseCount)..<(range.upperBound * denseCount)]),
                     sparse: KeyedJaggedTensor(keys: kjt.keys, values: values, offsets: offsets, weights: weights), deduped: nil)
    }
}
