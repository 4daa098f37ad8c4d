import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels
import RecKitTiered

/// A training run's state in a checkpoint: the model, the dense optimizer's moments, the options used (the recipe),
/// where training stands, and the data's schema and vocabularies (so raw rows can be scored later).
public enum TrainingCheckpoint {
    /// Writes everything needed to serve the model and to resume training exactly. The optimizer kinds recorded are
    /// the ones the state was built with.
    public static func save(model: any CTRModel, optimizer: DenseOptimizer?, options: TrainOptions, position: TrainPosition?,
                            schema: DatasetSchema?, vocabularies: [[UInt64]] = [], rowsSeen: Int,
                            tables: [StateTensor]? = nil, to path: String,
                            external: ((_ temporaryPath: String, _ fileOffsets: [String: Int]) throws(CheckpointError) -> Void)? = nil) throws(TrainingError) {
        // `tables`: the embedding tables' tensors when they are not the model's own (a distributed run's, written by
        // the shards' owners through `external`).
        var tensors = tables.map { model.denseParameters.map(\.stateTensor) + $0 } ?? model.stateTensors()
        if let optimizer { tensors += try optimizer.stateTensors(model.denseParameters) }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let features = schema?.sparse.map(\.name) ?? []
        guard vocabularies.isEmpty || vocabularies.count == features.count else {
            throw .options("\(vocabularies.count) vocabularies for \(features.count) sparse features")
        }
        let sparse = model.sparseOptimizer.map {
            CheckpointMetadata.OptimizerRecord(kind: $0.rawValue, learningRate: options.sparseLearningRate, eps: 1e-8,
                                               weightDecay: options.embeddingL2)
        }
        var dense = optimizer?.record
        dense?.learningRate = options.learningRate
        let base = CheckpointMetadata(
            model: model.kind, config: model.configuration.encodedJSON(), schema: schema, denseOptimizer: dense,
            sparseOptimizer: sparse, step: position?.step ?? optimizer?.step ?? 0, seed: options.seed, rowsSeen: rowsSeen,
            position: position.flatMap { try? enc.encode($0) }, quantization: model.quantization,
            recipe: try? enc.encode(options.file))
        var withStorage = base
        withStorage.storage = Tiering.record(model)
        let meta = withStorage
        do throws(CheckpointError) {
            try Checkpoint.write(tensors, vocabularies: zip(features, vocabularies).map { (feature: $0, keys: $1) }, metadata: meta, to: path,
                                 external: external)
        } catch { throw .checkpoint(error) }
    }

    /// Saves as `save` does, or, with a `distribution`, as a collective of its ranks (every rank calls it): rank 0 lays
    /// out the single-process file and writes the dense state, every rank writes its shards into it
    /// (`TrainingDistribution.writeShards`), and rank 0 checksums, completes and renames it. Every rank returns once
    /// the file is in place, or throws.
    public static func save(model: any CTRModel, optimizer: DenseOptimizer?, options: TrainOptions, position: TrainPosition?,
                            schema: DatasetSchema?, vocabularies: [[UInt64]] = [], rowsSeen: Int, to path: String,
                            distribution d: (any TrainingDistribution)?) throws(TrainingError) {
        guard let d else {
            try save(model: model, optimizer: optimizer, options: options, position: position, schema: schema, vocabularies: vocabularies,
                     rowsSeen: rowsSeen, to: path)
            return
        }
        guard d.rank == 0 else {
            try d.writeShards(nil, optimizer: model.sparseOptimizer)
            try d.checkpointCommitted(true)
            return
        }
        var handedOff = false, agreed = false
        do throws(TrainingError) {
            try save(model: model, optimizer: optimizer, options: options, position: position, schema: schema, vocabularies: vocabularies,
                     rowsSeen: rowsSeen, tables: d.checkpointTables(model), to: path) { (temporary, offsets) throws(CheckpointError) in
                handedOff = true
                do throws(TrainingError) { try d.writeShards(.success((temporary, offsets)), optimizer: model.sparseOptimizer); agreed = true } catch {
                    throw error.checkpointError(path: path)
                }
            }
        } catch {
            // The others wait for the hand-off if it never came, or for the commit if every shard was written: tell
            // them it failed. (A failed shard write has already failed every rank together.)
            if !handedOff {
                try? d.writeShards(.failure(error.checkpointError(path: path)), optimizer: model.sparseOptimizer)
            } else if agreed {
                try? d.checkpointCommitted(false)
            }
            throw error
        }
        try d.checkpointCommitted(true)
    }

    /// A checkpoint opened to continue training.
    public struct Resumed {
        public var model: any CTRModel
        public var optimizer: DenseOptimizer
        public var position: TrainPosition
        public var metadata: CheckpointMetadata
        /// The options it was trained with (nil for checkpoints that did not record them).
        public var recipe: TrainOptions.File?
        /// The provider of its tiered tables, when resumed with tiering.
        public var tiering: TieredStorageProvider?
    }

    /// Opens `path` for resuming: the model with its sparse optimizer state, the dense optimizer with its moments and
    /// step, the position and recipe. Refuses inference-only (quantized) checkpoints and ones without a position.
    public static func resume(_ path: String, tiering: TierOptions? = nil) throws(TrainingError) -> Resumed {
        let reader: CheckpointReader
        let model: any CTRModel
        var provider: TieredStorageProvider?
        do throws(CheckpointError) {
            reader = try Checkpoint.open(path)
            if let tiering {
                let config: any ModelConfiguration
                do { config = try reader.metadata.modelConfiguration() } catch { throw CheckpointError.model(path: path, reason: error.description) }
                do throws(TrainingError) {
                    provider = try Tiering.provider(tiering, config: config, optimizer: reader.metadata.sparseOptimizerKind)
                } catch { throw CheckpointError.model(path: path, reason: error.description) }
            }
            model = try reader.loadModel(optimizerState: true, storage: provider)
        } catch { throw .checkpoint(error) }
        let meta = reader.metadata
        guard let positionData = meta.position, let position = try? JSONDecoder().decode(TrainPosition.self, from: positionData) else {
            throw .checkpoint(.invalid(path: path, reason: "__metadata__.position: missing (not a training checkpoint, cannot resume)"))
        }
        guard let record = meta.denseOptimizer, let kind = DenseOptimizerKind(rawValue: record.kind) else {
            throw .checkpoint(.invalid(path: path, reason: "__metadata__.dense_optimizer: missing or unknown"))
        }
        let optimizer = DenseOptimizer(kind: kind, weightDecay: record.weightDecay ?? 0, eps: record.eps)
        if let b1 = record.beta1 { optimizer.beta1 = b1 }
        if let b2 = record.beta2 { optimizer.beta2 = b2 }
        do {
            // The moments must be exactly the model's: same names, same shapes (never "any length").
            try reader.read(into: try optimizer.stateTensors(model.denseParameters)) { name in !name.hasPrefix(OptimizerStateNames.prefix) }
        } catch let e as CheckpointError { throw .checkpoint(e) } catch let e as TrainingError { throw e } catch {
            throw .options("\(error)")
        }
        optimizer.setStep(record.step ?? meta.step)
        let recipe = meta.recipe.flatMap { try? JSONDecoder().decode(TrainOptions.File.self, from: $0) }
        return Resumed(model: model, optimizer: optimizer, position: position, metadata: meta, recipe: recipe, tiering: provider)
    }
}

extension TrainingError {
    /// The checkpoint error this is, or one saying what went wrong while writing `path`.
    func checkpointError(path: String) -> CheckpointError {
        if case .checkpoint(let e) = self { return e }
        return .io(path: path, reason: description)
    }
}
