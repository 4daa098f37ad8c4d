import Foundation
import RecKitData
import RecKitKernels
import RecKitModels

/// RecKit's own header, stored as string values in the safetensors `__metadata__` (JSON where a value has structure):
///
/// | key | value |
/// |---|---|
/// | `format`, `format_version` | `reckit-checkpoint`, `2` |
/// | `model`, `config` | the `ModelKind` and its configuration (JSON) |
/// | `schema` | the data's `DatasetSchema` (JSON: preprocessing for raw rows), if known |
/// | `dense_optimizer`, `sparse_optimizer` | their kinds and hyper-parameters (JSON), as used |
/// | `step`, `seed`, `rows_seen`, `position` | training progress and the effective seed; `position` is JSON |
/// | `quantization` | fp16 / int8 / int4 for quantized tables |
/// | `recipe` | the training options (JSON), informational |
/// | `storage` | where the tables lived when written (JSON: tiered tables, cache), informational; the file's tensors are the same either way |
/// | `crc32c` | JSON object: tensor name → CRC-32C of its bytes |
public struct CheckpointMetadata: Sendable, Equatable {
    public static let formatName = "reckit-checkpoint"
    public static let formatVersion = 2

    public var model: ModelKind
    /// The model configuration's JSON.
    public var config: Data
    public var schema: DatasetSchema?
    public var denseOptimizer: OptimizerRecord?
    public var sparseOptimizer: OptimizerRecord?
    public var step: Int
    public var seed: UInt64
    public var rowsSeen: Int
    /// Where training stood (JSON of the trainer's position), for `--resume`.
    public var position: Data?
    public var quantization: QuantizedDType?
    /// The training options (JSON), informational.
    public var recipe: Data?
    /// Where the tables lived when written (JSON), informational.
    public var storage: Data?

    public init(model: ModelKind, config: Data, schema: DatasetSchema?, denseOptimizer: OptimizerRecord?, sparseOptimizer: OptimizerRecord?,
                step: Int, seed: UInt64, rowsSeen: Int, position: Data? = nil, quantization: QuantizedDType? = nil, recipe: Data? = nil) {
        self.model = model; self.config = config; self.schema = schema; self.denseOptimizer = denseOptimizer
        self.sparseOptimizer = sparseOptimizer; self.step = step; self.seed = seed; self.rowsSeen = rowsSeen
        self.position = position; self.quantization = quantization; self.recipe = recipe
    }

    /// An optimizer's kind and hyper-parameters.
    public struct OptimizerRecord: Codable, Sendable, Equatable {
        public var kind: String
        public var learningRate: Float?
        public var eps: Float?
        public var weightDecay: Float?
        public var beta1: Float?
        public var beta2: Float?
        /// Updates taken (dense optimizers: Adam's bias correction).
        public var step: Int?
        public init(kind: String, learningRate: Float? = nil, eps: Float? = nil, weightDecay: Float? = nil,
                    beta1: Float? = nil, beta2: Float? = nil, step: Int? = nil) {
            self.kind = kind; self.learningRate = learningRate; self.eps = eps; self.weightDecay = weightDecay
            self.beta1 = beta1; self.beta2 = beta2; self.step = step
        }
        enum CodingKeys: String, CodingKey {
            case kind, eps, beta1, beta2, step
            case learningRate = "learning_rate", weightDecay = "weight_decay"
        }
    }

    /// The model's configuration, decoded.
    public func modelConfiguration() throws(ModelError) -> any ModelConfiguration { try model.decodeConfig(config) }

    /// The sparse optimizer whose state the checkpoint holds (nil: none).
    public var sparseOptimizerKind: SparseOptimizerKind? { sparseOptimizer.flatMap { SparseOptimizerKind(rawValue: $0.kind) } }

    func encoded(crcs: [String: UInt32]) -> [String: String] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        func json<T: Encodable>(_ v: T) -> String { (try? e.encode(v)).map { String(decoding: $0, as: UTF8.self) } ?? "null" }
        var m: [String: String] = [
            "format": Self.formatName, "format_version": String(Self.formatVersion),
            "model": model.rawValue, "config": String(decoding: config, as: UTF8.self),
            "step": String(step), "seed": String(seed), "rows_seen": String(rowsSeen),
            "crc32c": json(crcs.mapValues { String(format: "%08x", $0) }),
        ]
        if let schema { m["schema"] = json(schema) }
        if let denseOptimizer { m["dense_optimizer"] = json(denseOptimizer) }
        if let sparseOptimizer { m["sparse_optimizer"] = json(sparseOptimizer) }
        if let position { m["position"] = String(decoding: position, as: UTF8.self) }
        if let quantization { m["quantization"] = quantization.rawValue }
        if let recipe { m["recipe"] = String(decoding: recipe, as: UTF8.self) }
        if let storage { m["storage"] = String(decoding: storage, as: UTF8.self) }
        return m
    }

    static func decode(_ m: [String: String], path: String) throws(CheckpointError) -> (CheckpointMetadata, crcs: [String: UInt32]) {
        guard m["format"] == formatName else {
            throw .invalid(path: path, reason: "__metadata__.format: \(m["format"].map { "'\($0)'" } ?? "missing"), expected '\(formatName)' (a safetensors file RecKit did not write?)")
        }
        guard let v = m["format_version"].flatMap(Int.init), v == formatVersion else {
            throw .invalid(path: path, reason: "__metadata__.format_version: \(m["format_version"] ?? "missing") is not supported (this RecKit reads \(formatVersion))")
        }
        func field(_ k: String) throws(CheckpointError) -> String {
            guard let s = m[k] else { throw .invalid(path: path, reason: "__metadata__.\(k): missing") }
            return s
        }
        func decodeJSON<T: Decodable>(_ k: String, _ t: T.Type) throws(CheckpointError) -> T? {
            guard let s = m[k] else { return nil }
            do { return try JSONDecoder().decode(T.self, from: Data(s.utf8)) } catch {
                throw .invalid(path: path, reason: "__metadata__.\(k): \(error)")
            }
        }
        guard let model = ModelKind(rawValue: try field("model")) else {
            throw .invalid(path: path, reason: "__metadata__.model: '\(m["model"]!)' is not a model kind (\(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let step = Int(try field("step")), step >= 0, let seed = UInt64(try field("seed")),
              let rowsSeen = Int(try field("rows_seen")), rowsSeen >= 0 else {
            throw .invalid(path: path, reason: "__metadata__: step, seed or rows_seen is not a non-negative integer")
        }
        var quantization: QuantizedDType?
        if let q = m["quantization"] {
            guard let d = QuantizedDType(rawValue: q) else { throw .invalid(path: path, reason: "__metadata__.quantization: '\(q)'") }
            quantization = d
        }
        let crcText = try decodeJSON("crc32c", [String: String].self) ?? [:]
        var crcs: [String: UInt32] = [:]
        for (k, v) in crcText {
            guard let c = UInt32(v, radix: 16) else { throw .invalid(path: path, reason: "__metadata__.crc32c[\(k)]: '\(v)'") }
            crcs[k] = c
        }
        var meta = CheckpointMetadata(
            model: model, config: Data(try field("config").utf8), schema: try decodeJSON("schema", DatasetSchema.self),
            denseOptimizer: try decodeJSON("dense_optimizer", OptimizerRecord.self),
            sparseOptimizer: try decodeJSON("sparse_optimizer", OptimizerRecord.self), step: step, seed: seed, rowsSeen: rowsSeen,
            position: m["position"].map { Data($0.utf8) }, quantization: quantization, recipe: m["recipe"].map { Data($0.utf8) })
        meta.storage = m["storage"].map { Data($0.utf8) }
        return (meta, crcs)
    }
}

/// Names of dense-optimizer state tensors, as PyTorch's optimizers name them: `optimizer.<parameter>.<moment>`.
public enum OptimizerStateNames {
    public static let prefix = "optimizer."
    /// Adam/AdamW's first moment.
    public static func firstMoment(_ parameter: String) -> String { prefix + parameter + ".exp_avg" }
    /// Adam/AdamW's second moment, or Adagrad's sum of squares (`.sum`).
    public static func secondMoment(_ parameter: String, adagrad: Bool) -> String { prefix + parameter + (adagrad ? ".sum" : ".exp_avg_sq") }
    /// Vocabulary tensors: `vocabulary.<feature>` (U64 raw keys, id = index + 1).
    public static func vocabulary(_ feature: String) -> String { "vocabulary." + feature }
}
