import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitData
import RecKitEmbeddings
import RecKitKernels
import RecKitModels

/// `reckit quantize` as a library call: the model's embedding tables as row-wise quantized rows (fp16, int8, int4),
/// written as an inference-only checkpoint (no optimizer state), with sizes and the AUC change on evaluation data.
public enum Quantization {
    public struct Report: Codable, Sendable {
        public var dtype: String
        public var fp32Bytes: Int, quantizedBytes: Int, sizeRatio: Double
        public var embeddingFP32Bytes: Int, embeddingQuantizedBytes: Int, embeddingRatio: Double
        public var aucFP32: Double?, aucQuantized: Double?, deltaAUC: Double?
        public var evalRows: Int?
        public var output: String
        enum CodingKeys: String, CodingKey {
            case dtype, output
            case fp32Bytes = "fp32_bytes", quantizedBytes = "quantized_bytes", sizeRatio = "size_ratio"
            case embeddingFP32Bytes = "embedding_fp32_bytes", embeddingQuantizedBytes = "embedding_quantized_bytes"
            case embeddingRatio = "embedding_ratio", aucFP32 = "auc_fp32", aucQuantized = "auc_quantized", deltaAUC = "delta_auc"
            case evalRows = "eval_rows"
        }
    }

    public static func run(model path: String, dtype: QuantizedDType, output: String, eval: [String] = [], format: InputFormat? = nil,
                           pool: ThreadPool) throws(TrainingError) -> Report {
        let loaded = try LoadedModel.load(path)
        guard loaded.metadata.quantization == nil else { throw .options("\(path) is already quantized") }
        var evalSet: (ShardDataset, TemporaryDataset?)?
        var fp32: BinaryMetrics?
        if !eval.isEmpty {
            evalSet = try loaded.dataset(eval, format: format)
            fp32 = try Evaluation.metrics(loaded.model, ShardBatchSource(dataset: evalSet!.0, batchSize: 1024), pool: pool)
        }
        var tensors = loaded.model.denseParameters.map(\.stateTensor)
        var quantized: [EmbeddingCollection] = []
        for c in loaded.model.embeddingCollections {
            do throws(EmbeddingError) { quantized.append(try c.quantizing(to: dtype)) } catch { throw .options(error.description) }
        }
        tensors += quantized.flatMap { $0.stateTensors() }
        var meta = loaded.metadata
        meta.quantization = dtype
        meta.position = nil
        meta.denseOptimizer = nil
        meta.sparseOptimizer = nil
        let features = meta.schema?.sparse.map(\.name) ?? []
        do throws(CheckpointError) {
            try Checkpoint.write(tensors, vocabularies: loaded.vocabularies.isEmpty ? [] : zip(features, loaded.vocabularies).map { (feature: $0, keys: $1) },
                                 metadata: meta, to: output)
        } catch { throw .checkpoint(error) }
        var q: BinaryMetrics?
        if let (ds, _) = evalSet {
            let reloaded = try LoadedModel.load(output)
            q = try Evaluation.metrics(reloaded.model, ShardBatchSource(dataset: ds, batchSize: 1024), pool: pool)
        }
        func size(_ p: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: p))?[.size] as? Int) ?? 0 }
        let embF = loaded.model.embeddingCollections.flatMap(\.specs).reduce(0) { $0 + $1.rows * $1.dim * 4 }
        let embQ = quantized.flatMap(\.storages).reduce(0) { $0 + (($1 as? QuantizedRowStorage)?.table.byteCount ?? 0) }
        withExtendedLifetime(evalSet) {}
        return Report(dtype: dtype.rawValue, fp32Bytes: size(path), quantizedBytes: size(output),
                      sizeRatio: Double(size(output)) / Double(max(size(path), 1)), embeddingFP32Bytes: embF,
                      embeddingQuantizedBytes: embQ, embeddingRatio: Double(embQ) / Double(max(embF, 1)),
                      aucFP32: fp32?.auc, aucQuantized: q?.auc, deltaAUC: fp32?.auc.flatMap { a in q?.auc.map { $0 - a } },
                      evalRows: fp32?.rows, output: output)
    }
}
