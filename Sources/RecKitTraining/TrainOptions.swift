import Foundation
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels

/// How to train (defaults: the small-data recipe; see `TrainOptions.recipe(rows:)`).
public struct TrainOptions: Sendable, Equatable {
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
    /// Deduplicate each batch's sparse features (RecD) before the embedding lookups.
    public var dedup = false

    public init() {}

    /// Fields a `--config` JSON file may set (all optional; unknown keys are refused so typos are not ignored).
    public struct File: Codable, Sendable, Equatable {
        public var epochs: Int?, batch_size: Int?, learning_rate: Float?, dense_optimizer: DenseOptimizerKind?
        public var sparse_optimizer: SparseOptimizerKind?, sparse_learning_rate: Float?, validation_fraction: Double?
        public var shuffle_buffer: Int?, seed: UInt64?, embedding_dim: Int?, bottom_hidden: [Int]?, top_hidden: [Int]?
        public var early_stopping_patience: Int?, warmup_steps: Int?, lr_decay_per_epoch: Float?, clip_norm: Float?
        public var embedding_l2: Float?, cross_layers: Int?, cross_rank: Int?, cross_parallel: Bool?
        public var precision: Precision?, dedup: Bool?, max_steps: Int?
        /// Raw input only: the vocabulary's minimum count (read by `TrainingRun` before converting; `--min-count` wins).
        public var min_count: Int?
        public init() {}

        /// Every key a config file may set (the field names).
        public static let keys = Set(Mirror(reflecting: File()).children.compactMap(\.label))
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
        if let v = f.dedup { dedup = v }
        if let v = f.max_steps { maxSteps = v }
    }

    /// Every field of these options, as a config file would set them (what a checkpoint records as its recipe).
    public var file: File {
        var f = File()
        f.epochs = epochs; f.batch_size = batchSize; f.learning_rate = learningRate; f.dense_optimizer = denseOptimizer
        f.sparse_optimizer = sparseOptimizer; f.sparse_learning_rate = sparseLearningRate; f.validation_fraction = validationFraction
        f.shuffle_buffer = shuffleBuffer; f.seed = seed; f.embedding_dim = embeddingDim; f.bottom_hidden = bottomHidden
        f.top_hidden = topHidden; f.early_stopping_patience = earlyStoppingPatience; f.warmup_steps = warmupSteps
        f.lr_decay_per_epoch = lrDecayPerEpoch; f.clip_norm = clipNorm; f.embedding_l2 = embeddingL2; f.cross_layers = crossLayers
        f.cross_rank = crossRank; f.cross_parallel = crossParallel; f.precision = precision; f.dedup = dedup
        return f
    }

    /// Reads a JSON config file, refusing unknown keys with their names.
    public static func load(configFile path: String) throws(TrainingError) -> File {
        guard let data = FileManager.default.contents(atPath: path) else { throw .options("\(path): cannot read the config file") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw .options("\(path): a config must be a JSON object")
        }
        let unknown = object.keys.filter { !File.keys.contains($0) }.sorted()
        guard unknown.isEmpty else { throw .options("\(path): unknown config keys \(unknown.joined(separator: ", ")); known: \(File.keys.sorted().joined(separator: ", "))") }
        do { return try JSONDecoder().decode(File.self, from: data) } catch {
            throw .options("\(path): \(error)")
        }
    }

    /// A recipe from the data size: the DLRM Criteo Kaggle architecture (bottom 512-256-64, top 512-256,
    /// batch 2048, one epoch) from 10M rows up; below, a smaller network (bottom 64-32, top 128-64), Adam 1e-3,
    /// batch 256, and up to 10 epochs under 1M rows with early stopping (3 epochs in between).
    ///
    /// Under `tinyDataRows` rows the embedding learning rate drops from 0.05 to 0.005: with so few rows most ids
    /// are seen a handful of times, and Adagrad's first steps (≈ the learning rate per coordinate, whatever the
    /// gradient's scale) then mostly add noise. Derived from a grid (sparse optimizer × sparse learning rate
    /// 0.005…0.1 × three seeds, every model) on the Criteo sample (7.2k rows: 0.005 best for LR, FM and DLRM;
    /// DCNv2 within 0.001) and Frappe (58k rows: 0.05 best for every model); docs/experiments.md has the table.
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
        if rows < tinyDataRows { o.sparseLearningRate = 0.005 }
        return o
    }

    /// Below this many rows the recipe lowers the embedding learning rate (see `recipe(rows:)`).
    public static let tinyDataRows = 20_000

    /// The model configuration of `kind` these options describe for data of `schema`. Feature names are the
    /// schema's (the batch keys); data without dense features reads one zero column.
    public func modelConfiguration(_ kind: ModelKind, schema: DatasetSchema) -> any ModelConfiguration {
        let dense = max(schema.denseNames.count, 1)
        let sparse = schema.sparse.map { SparseFeatureSpec(name: $0.name, rows: $0.cardinality) }
        switch kind {
        case .dlrm: return DLRMConfig(denseCount: dense, sparse: sparse, embeddingDim: embeddingDim, bottomHidden: bottomHidden, topHidden: topHidden)
        case .dcnv2: return DCNv2Config(denseCount: dense, sparse: sparse, embeddingDim: embeddingDim, deepHidden: topHidden,
                                        crossLayers: crossLayers, crossRank: crossRank, parallel: crossParallel)
        case .fm: return FMConfig(denseCount: dense, sparse: sparse, embeddingDim: embeddingDim)
        case .lr: return LRConfig(denseCount: dense, sparse: sparse)
        }
    }

    /// Rows of the training split: the first (1 − validationFraction) of `rows` in file order.
    public func trainRows(of rows: Int) -> Int { Int(Double(rows) * (1 - validationFraction)) }
}

/// Where training stands: saved in checkpoints so `--resume` continues the same trajectory.
public struct TrainPosition: Codable, Sendable, Equatable {
    /// Optimizer steps taken.
    public var step = 0
    /// Current epoch (0-based) and rows of it already trained on.
    public var epoch = 0
    public var rowInEpoch = 0
    public init() {}
}

public struct TrainReport: Codable, Sendable {
    public var rowsTrained: Int
    public var steps: Int
    public var seconds: Double
    public var samplesPerSecond: Double
    public var finalLoss: Double?
    public var validation: BinaryMetrics?
    public var checkpoint: String?
    /// Epochs run, and the epoch (1-based) whose parameters were kept.
    public var epochs: Int
    public var bestEpoch: Int
    public var position: TrainPosition
    /// The effective seed and optimizers (after defaults, `--config`, flags and a resumed checkpoint).
    public var seed: UInt64?
    public var denseOptimizer: String?
    public var sparseOptimizer: String?

    enum CodingKeys: String, CodingKey {
        case steps, seconds, validation, checkpoint, epochs, position, seed
        case bestEpoch = "best_epoch"
        case rowsTrained = "rows_trained"
        case samplesPerSecond = "samples_per_s"
        case finalLoss = "final_loss"
        case denseOptimizer = "dense_optimizer"
        case sparseOptimizer = "sparse_optimizer"
    }
}

/// Progress of training, for a status line.
public struct TrainProgress: Sendable {
    public var epoch: Int, step: Int, rows: Int, totalRows: Int, loss: Double, samplesPerSecond: Double
    public var eta: Double { samplesPerSecond > 0 ? Double(totalRows - rows) / samplesPerSecond : .nan }
}
