import RecKitKernels

/// One embedding table of a collection: its name (the path segment of its tensors, e.g. `embeddings.C1.weight`),
/// the batch feature it pools (a key of the batch's KeyedJaggedTensor), and its shape.
public struct EmbeddingTableSpec: Codable, Sendable, Equatable {
    /// Table name, unique within a collection.
    public var name: String
    /// Key of the sparse feature this table looks up.
    public var feature: String
    /// R.
    public var rows: Int
    /// D.
    public var dim: Int
    public var pooling: PoolingMode

    public init(name: String, feature: String? = nil, rows: Int, dim: Int, pooling: PoolingMode = .sum) {
        self.name = name; self.feature = feature ?? name; self.rows = rows; self.dim = dim; self.pooling = pooling
    }

    /// Checks the shape before any allocation: rows ≥ 0, dim ≥ 1, rows·dim·4 bytes representable.
    public func validate() throws(EmbeddingError) {
        guard rows >= 0, dim >= 1 else { throw .invalidSpec(name, "rows \(rows), dim \(dim): rows must be ≥ 0 and dim ≥ 1") }
        let (elements, o1) = rows.multipliedReportingOverflow(by: dim)
        let (_, o2) = elements.multipliedReportingOverflow(by: 8)
        guard !o1, !o2 else { throw .invalidSpec(name, "\(rows) rows × \(dim) does not fit in memory arithmetic") }
    }
}

/// Errors of the embeddings module; each names the table or feature.
public enum EmbeddingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The batch lacks a feature a table needs.
    case missingFeature(table: String, feature: String, available: [String])
    /// A table spec that cannot be built.
    case invalidSpec(String, String)
    /// The batch does not have the promised structure (see `KeyedJaggedTensor.validate`).
    case shape(String)
    /// A kernel refused a table's input (an id out of range, ...).
    case kernel(table: String, KernelError)
    /// Training was asked of a read-only storage (quantized rows).
    case readOnly(table: String)
    /// A storage could not provide rows (I/O of a tiered store, a remote shard).
    case storage(table: String, String)

    public var description: String {
        switch self {
        case let .missingFeature(table, feature, available):
            return "embedding table \(table) needs feature '\(feature)', the batch has \(available.prefix(8).joined(separator: ", "))\(available.count > 8 ? ", …" : "")"
        case let .invalidSpec(table, reason): return "embedding table \(table): \(reason)"
        case .shape(let s): return s
        case let .kernel(table, e): return "embedding table \(table): \(e)"
        case .readOnly(let table): return "embedding table \(table) is read-only (quantized rows serve inference only)"
        case let .storage(table, reason): return "embedding table \(table): \(reason)"
        }
    }
}
