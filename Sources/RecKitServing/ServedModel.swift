import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitEmbeddings
import RecKitModels
import RecKitTiered

/// A checkpoint loaded for serving: the model, the preprocessing that turns raw rows into its inputs, and a version
/// string reported with every score. The model keeps no per-call state: each inference thread scores with its own
/// workspace (`makeWorkspace`).
public final class ServedModel: @unchecked Sendable {
    public let model: any CTRModel
    public let preprocessor: Preprocessor
    /// "<file name>@step<N>" (plus the quantization, if any).
    public let version: String
    public let path: String
    /// Rows per model call; larger batches are scored in chunks.
    public let maxBatch: Int
    /// A number no other loaded model has: the batcher's group, so a batch never mixes models.
    public let generation: UInt64 = ServedModel.nextGeneration()

    private static let counter = NSLock()
    nonisolated(unsafe) private static var last: UInt64 = 0
    static func nextGeneration() -> UInt64 { counter.withLock { last += 1; return last } }

    public init(model: any CTRModel, preprocessor: Preprocessor, version: String, path: String, maxBatch: Int) {
        self.model = model; self.preprocessor = preprocessor; self.version = version; self.path = path; self.maxBatch = max(1, maxBatch)
    }

    /// Loads `path` (a `reckit train` or `reckit quantize` checkpoint) for batches of up to `maxBatch` rows. The
    /// header is validated and every table's size checked against the file before anything is allocated; the model
    /// must read exactly the features its schema preprocesses (same names and cardinalities), or it is refused.
    ///
    /// With `cacheBytes`, the large tables are not loaded: their rows are read in place from the checkpoint file on
    /// demand, the hot ones kept in a cache of that many bytes (tables larger than RAM; quantized rows included).
    /// Tables under `minimumTieredTableBytes` are loaded whole either way.
    public static func load(_ path: String, maxBatch: Int, maxRowsPerRequest: Int = 65_536, cacheBytes: Int? = nil,
                            minimumTieredTableBytes: Int = 64 << 20) throws(RequestError) -> ServedModel {
        let model: any CTRModel
        let meta: CheckpointMetadata
        let vocabularies: [[UInt64]]
        do throws(CheckpointError) {
            let reader = try Checkpoint.open(path)
            model = try reader.loadModel(optimizerState: false, storage: try cacheBytes.map { (bytes) throws(CheckpointError) in try inPlace(reader, cacheBytes: bytes, minimumTableBytes: minimumTieredTableBytes, maxBatch: maxBatch) })
            meta = reader.metadata
            vocabularies = try reader.vocabularies(features: meta.schema?.sparse.map(\.name) ?? [])
        } catch {
            throw RequestError(.invalid, error.description)
        }
        guard let schema = meta.schema else {
            throw RequestError(.invalid, "\(path): the checkpoint has no data schema, so raw rows cannot be preprocessed")
        }
        let cards = Dictionary(schema.sparse.map { ($0.name, $0.cardinality) }, uniquingKeysWith: { a, _ in a })
        for f in model.configuration.sparse where cards[f.name] != f.rows {
            throw RequestError(.invalid, "\(path): the model's feature \(f.name) (\(f.rows) rows) is not what its schema preprocesses")
        }
        guard model.denseCount == max(schema.denseNames.count, 1) else {
            throw RequestError(.invalid, "\(path): the model reads \(model.denseCount) dense features, its schema has \(schema.denseNames.count)")
        }
        let pre = try Preprocessor(schema: schema, vocabularies: vocabularies, maxRows: maxRowsPerRequest)
        model.prepareForInference()
        let name = (path as NSString).lastPathComponent
        return ServedModel(model: model, preprocessor: pre, version: "\(name)@step\(meta.step)" + (meta.quantization.map { "+\($0.rawValue)" } ?? ""),
                           path: path, maxBatch: maxBatch)
    }

    /// A provider that reads the checkpoint's large tables in place, behind a cache of `cacheBytes`.
    static func inPlace(_ reader: CheckpointReader, cacheBytes: Int, minimumTableBytes: Int, maxBatch: Int) throws(CheckpointError) -> TieredStorageProvider {
        let config: any ModelConfiguration
        do { config = try reader.metadata.modelConfiguration() } catch { throw .model(path: reader.path, reason: error.description) }
        var offsets: [String: Int] = [:]
        for (collection, spec) in config.embeddingTables {
            let name = collection + "." + spec.name + ".weight"
            if let o = reader.dataOffset(of: name) { offsets[name] = o }
        }
        let q = reader.metadata.quantization
        do throws(EmbeddingError) {
            return try TieredStorageProvider(servingInPlace: reader.path, offsets: offsets, cacheBytes: cacheBytes,
                                             minimumTableBytes: minimumTableBytes, minimumSlots: min(16_384, 4 * maxBatch),
                                             tables: config.embeddingTables, rowBytes: { q?.rowBytes(dim: $0.dim) ?? 4 * $0.dim })
        } catch { throw .model(path: reader.path, reason: error.description) }
    }

    /// Counters of the tables read in place (nil when every table is in RAM).
    public var tierStats: TierStats? {
        let tiered = model.embeddingCollections.flatMap { $0.storages.compactMap { $0 as? TieredRowStorage } }
        return tiered.isEmpty ? nil : tiered.reduce(TierStats()) { $0 + $1.stats }
    }

    public func makeWorkspace() -> ModelWorkspace { model.makeWorkspace(maxBatch: maxBatch) }

    /// Click probabilities σ(logit) for `rows`, in order, in chunks of `maxBatch`. A non-finite score (a model that
    /// diverged) is an error, never a number in the response.
    public func score(_ rows: PreparedRows, workspace: ModelWorkspace, pool: ThreadPool) throws(RequestError) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(rows.count)
        var start = 0
        while start < rows.count {
            let end = min(rows.count, start + maxBatch)
            let chunk = (start == 0 && end == rows.count) ? rows : rows.slice(start..<end)
            do throws(ModelError) {
                try model.forward(chunk.batch, workspace: workspace, mode: .inference, pool: pool)
            } catch {
                throw RequestError(.invalid, "the model refused the batch: \(error)")
            }
            for i in 0..<chunk.count {
                let z = workspace.logits.pointer[i]
                let p = 1 / (1 + Float(exp(-Double(z))))
                guard !z.isNaN, p.isFinite else {
                    throw RequestError(.internalError, "the model produced a non-finite score (logit \(z)) for row \(start + i): the checkpoint is broken")
                }
                out.append(p)
            }
            start = end
        }
        return out
    }
}
