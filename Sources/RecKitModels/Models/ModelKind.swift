import Foundation
import RecKitEmbeddings
import RecKitKernels

/// The model families, one name everywhere: CLI flags, checkpoints, the factory.
public enum ModelKind: String, Sendable, Codable, CaseIterable {
    case lr, fm, dlrm, dcnv2

    /// The configuration type of this kind.
    public var configType: any ModelConfiguration.Type {
        switch self {
        case .lr: return LRConfig.self
        case .fm: return FMConfig.self
        case .dlrm: return DLRMConfig.self
        case .dcnv2: return DCNv2Config.self
        }
    }

    /// Decodes this kind's configuration from JSON (a checkpoint's `config`).
    public func decodeConfig(_ json: Data) throws(ModelError) -> any ModelConfiguration {
        do { return try JSONDecoder().decode(configType, from: json) } catch {
            throw .config("not a valid \(rawValue) configuration: \(error)")
        }
    }
}

/// One sparse feature of a model: the batch key its table pools, and the table's rows.
public struct SparseFeatureSpec: Codable, Sendable, Equatable {
    public var name: String
    public var rows: Int
    public init(name: String, rows: Int) { self.name = name; self.rows = rows }

    /// Features named C1…Cn for the given table sizes (Criteo's names).
    public static func criteo(_ sizes: [Int]) -> [SparseFeatureSpec] {
        sizes.enumerated().map { SparseFeatureSpec(name: "C\($0.offset + 1)", rows: $0.element) }
    }
}

/// A model kind's configuration: what a checkpoint stores to rebuild the model, and how to build it.
public protocol ModelConfiguration: Codable, Sendable {
    static var kind: ModelKind { get }
    /// Dense features per sample (≥ 1: data without dense features reads one zero column).
    var denseCount: Int { get }
    var sparse: [SparseFeatureSpec] { get }
    /// Checks every size before anything is allocated.
    func validate() throws(ModelError)
    /// The embedding tables the model will hold, by collection prefix (what a checkpoint reader checks against the
    /// file before allocating them).
    var embeddingTables: [(collection: String, spec: EmbeddingTableSpec)] { get }
    /// A model of this configuration; `sparseOptimizer` sizes the rows' optimizer state (nil: none, inference),
    /// `quantization` makes the tables read-only quantized rows, `storage` chooses where each table's rows live
    /// (nil: all in RAM).
    func makeModel(initialization: ModelInitialization, sparseOptimizer: SparseOptimizerKind?,
                   quantization: QuantizedDType?, storage: (any RowStorageProvider)?) throws(ModelError) -> any CTRModel
}

extension ModelConfiguration {
    /// A model with every table in RAM.
    public func makeModel(initialization: ModelInitialization, sparseOptimizer: SparseOptimizerKind?,
                          quantization: QuantizedDType?) throws(ModelError) -> any CTRModel {
        try makeModel(initialization: initialization, sparseOptimizer: sparseOptimizer, quantization: quantization, storage: nil)
    }
}

extension ModelConfiguration {
    public var kind: ModelKind { Self.kind }
    public var tableSizes: [Int] { sparse.map(\.rows) }

    /// JSON with sorted keys (what checkpoints store).
    public func encodedJSON() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return (try? e.encode(self)) ?? Data("{}".utf8)
    }

    /// Common checks: a dense width, named features with rows ≥ 1, unique names, sizes that fit the arithmetic.
    func validateFeatures(dim: Int) throws(ModelError) {
        guard denseCount >= 1, denseCount <= 1 << 20 else { throw .config("dense features \(denseCount) outside 1...2²⁰") }
        guard dim >= 1, dim <= 1 << 16 else { throw .config("embedding dim \(dim) outside 1...65536") }
        guard Set(sparse.map(\.name)).count == sparse.count else { throw .config("sparse feature names must be unique") }
        for f in sparse {
            guard !f.name.isEmpty, f.rows >= 1 else { throw .config("feature '\(f.name)': rows \(f.rows) must be ≥ 1") }
            let (e, o1) = f.rows.multipliedReportingOverflow(by: dim)
            let (_, o2) = e.multipliedReportingOverflow(by: 8)
            guard !o1, !o2 else { throw .config("feature '\(f.name)': \(f.rows) rows × dim \(dim) overflows") }
        }
    }

    /// The embedding tables of `sparse` at dim `dim`, in `prefix`.
    func tables(dim: Int) -> [EmbeddingTableSpec] {
        sparse.map { EmbeddingTableSpec(name: $0.name, feature: $0.name, rows: $0.rows, dim: dim) }
    }
}

/// Hidden sizes must be positive.
func validateHidden(_ sizes: [Int], _ what: String) throws(ModelError) {
    for h in sizes where h < 1 || h > 1 << 16 { throw .config("\(what) hidden size \(h) outside 1...65536") }
}

/// Builds the embedding collection a configuration asks for.
func makeCollection(prefix: String, specs: [EmbeddingTableSpec], initialization: ModelInitialization, stream: UInt64,
                    bound: @escaping @Sendable (Int) -> Float, zeros: Bool = false, sparseOptimizer: SparseOptimizerKind?,
                    quantization: QuantizedDType?, storage: (any RowStorageProvider)?) throws(ModelError) -> EmbeddingCollection {
    do {
        if let q = quantization { return try EmbeddingCollection.quantized(prefix: prefix, specs: specs, dtype: q, provider: storage) }
        let initializer: EmbeddingInitializer
        switch initialization {
        case .none: initializer = .none
        case .random(let seed): initializer = zeros ? .zeros : .uniform(seed: seed, firstStream: stream, bound: bound)
        }
        return try EmbeddingCollection.dense(prefix: prefix, specs: specs, optimizer: sparseOptimizer, initializer: initializer, provider: storage)
    } catch { throw .embedding(error) }
}
