import Foundation
import RecKitCore
import RecKitKernels
import RecKitModels
import RecKitTraining

/// A checkpoint loaded for serving: the model, the preprocessing that turns raw rows into its inputs, and a version
/// string reported with every score. Only the inference thread calls `score` (models keep per-batch buffers).
public final class ServedModel: @unchecked Sendable {
    public let model: any CTRModel
    public let preprocessor: Preprocessor
    /// "<file name>@step<N>" (plus the quantization, if any).
    public let version: String
    public let path: String
    /// Rows per model call; larger batches are scored in chunks.
    public let maxBatch: Int
    /// Feature keys of the batches handed to the model (one per table).
    private let keys: [String]

    public init(model: any CTRModel, preprocessor: Preprocessor, version: String, path: String, maxBatch: Int) {
        self.model = model; self.preprocessor = preprocessor; self.version = version; self.path = path; self.maxBatch = maxBatch
        keys = model.config.tableSizes.indices.map { "f\($0)" }
    }

    /// Loads `path` (a `reckit train` or `reckit quantize` checkpoint) for batches of up to `maxBatch` rows.
    public static func load(_ path: String, maxBatch: Int) throws -> ServedModel {
        let (model, _, header, vocabularies) = try Checkpoint.loadWithVocabularies(path, maxBatch: maxBatch, maxIndicesPerTable: maxBatch * 64)
        guard let schema = header.schema else {
            throw RequestError(.unavailable, "\(path): the checkpoint has no data schema, so raw rows cannot be preprocessed")
        }
        let pre = try Preprocessor(schema: schema, vocabularies: vocabularies, tableSizes: model.config.tableSizes)
        let name = (path as NSString).lastPathComponent
        model.prepareForInference()
        return ServedModel(model: model, preprocessor: pre, version: "\(name)@step\(header.step)" + (header.quantization.map { "+\($0.rawValue)" } ?? ""), path: path, maxBatch: maxBatch)
    }

    /// Click probabilities σ(logit) for `rows`, in order.
    public func score(_ rows: PreparedRows, pool: ThreadPool) throws(KernelError) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(rows.count)
        var start = 0
        while start < rows.count {
            let end = min(rows.count, start + maxBatch)
            let chunk = (start == 0 && end == rows.count) ? rows : rows.slice(start..<end)
            let b = chunk.count
            let offsets = chunk.lengths.map { lens -> [Int32] in
                var o = [Int32](repeating: 0, count: lens.count + 1)
                for i in 0..<lens.count { o[i + 1] = o[i] + lens[i] }
                return o
            }
            let kjt = KeyedJaggedTensor(keys: keys, values: chunk.ids,
                                        offsets: offsets, weights: chunk.ids.map { _ in [] })
            _ = try model.forward(dense: chunk.dense, sparse: kjt, labels: [Float](repeating: 0, count: b), pool: pool)
            for z in model.lastLogits { out.append(1 / (1 + Float(exp(-Double(z))))) }
            start = end
        }
        return out
    }
}
