// Argument types shared by the reference and optimized kernels.
// Notation used throughout RecKitKernels: B = batch (bags), N = number of indices (nnz), D = embedding dim,
// R = table rows, F = interacting vectors, M×K · K×N = GEMM shapes (row-major).

/// A row-major matrix view: element (r, c) is at `base[r * rowStride + c]`; `rowStride ≥ columns`.
/// A strided view lets a kernel write its D columns into a wider buffer (per-table outputs land side by side).
public struct MatrixView: @unchecked Sendable {
    public var base: UnsafeMutablePointer<Float>
    public var rows: Int
    public var columns: Int
    public var rowStride: Int

    public init(base: UnsafeMutablePointer<Float>, rows: Int, columns: Int, rowStride: Int? = nil) {
        self.base = base
        self.rows = rows
        self.columns = columns
        self.rowStride = rowStride ?? columns
    }

    /// The sub-view of `count` columns starting at `column` (same rows and stride).
    public func columns(_ column: Int, count: Int) -> MatrixView {
        MatrixView(base: base + column, rows: rows, columns: count, rowStride: rowStride)
    }

    @inline(__always) public func row(_ r: Int) -> UnsafeMutablePointer<Float> { base + r * rowStride }
}

/// An embedding table: R rows of D floats, contiguous (row stride D).
public struct EmbeddingTableView: @unchecked Sendable {
    public var weights: UnsafeMutablePointer<Float>
    public var rows: Int
    public var dim: Int
    public init(weights: UnsafeMutablePointer<Float>, rows: Int, dim: Int) {
        self.weights = weights
        self.rows = rows
        self.dim = dim
    }
}

/// How bag boundaries are given for a jagged batch.
public enum BagBoundaries: @unchecked Sendable {
    /// `B + 1` offsets: bag b holds positions `offsets[b] ..< offsets[b+1]`; `offsets[0] = 0`, `offsets[B] = N`.
    case offsets(UnsafePointer<Int32>)
    /// `B` lengths: bag b holds the next `lengths[b]` positions; lengths sum to N.
    case lengths(UnsafePointer<Int32>)
}

/// A jagged batch of bags for one table: B bags over N indices, with optional per-index weights.
public struct JaggedBags: @unchecked Sendable {
    /// Row ids, N of them (64-bit: a table may pass 2³¹ rows).
    public var indices: UnsafePointer<Int64>
    /// N.
    public var count: Int
    /// B.
    public var bagCount: Int
    public var boundaries: BagBoundaries
    /// Per-index weights (N) for weighted-sum pooling, or nil.
    public var weights: UnsafePointer<Float>?

    public init(indices: UnsafePointer<Int64>, count: Int, bagCount: Int, boundaries: BagBoundaries,
                weights: UnsafePointer<Float>? = nil) {
        self.indices = indices
        self.count = count
        self.bagCount = bagCount
        self.boundaries = boundaries
        self.weights = weights
    }
}

/// How the rows of a bag are pooled into one vector.
public enum PoolingMode: String, Sendable, CaseIterable, Codable {
    /// out_b = Σ_{p ∈ bag b} w_p · row(indices[p]), w_p = weights[p] or 1.
    case sum
    /// out_b = (1/|bag b|) Σ_p w_p · row(indices[p]); an empty bag gives zeros.
    case mean
}

/// Pointwise activation fused into the linear-layer epilogue.
public enum Activation: String, Sendable, CaseIterable {
    case identity, relu, sigmoid
}

/// Matrix transposition flag for GEMM (row-major storage).
public enum Transpose: Sendable {
    case none, transposed
}

/// The sparse optimizer fused into the embedding backward, FBGEMM-style.
///
/// With g the gradient of a row aggregated over all its occurrences in the batch (plus `weightDecay · w`):
/// - `sgd`:            w ← w − lr·g
/// - `adagrad`:        h_d ← h_d + g_d²;           w_d ← w_d − lr·g_d / (√h_d + eps)      (state: R×D)
/// - `rowWiseAdagrad`: h ← h + (1/D) Σ_d g_d²;     w_d ← w_d − lr·g_d / (√h + eps)        (state: R)
/// The accumulators start at 0; `eps` defaults to 1e-8 (FBGEMM/TorchRec's default for row-wise Adagrad).
public enum SparseOptimizerKind: String, Sendable, CaseIterable, Codable {
    case sgd
    case adagrad
    case rowWiseAdagrad = "rowwise_adagrad"

    /// Floats of optimizer state this optimizer keeps for a table of `rows × dim`.
    public func stateCount(rows: Int, dim: Int) -> Int {
        switch self {
        case .sgd: return 0
        case .adagrad: return rows * dim
        case .rowWiseAdagrad: return rows
        }
    }

    /// The shape of that state as a named tensor (`<table>.adagrad_sum`), nil when there is none.
    public func stateShape(rows: Int, dim: Int) -> [Int]? {
        switch self {
        case .sgd: return nil
        case .adagrad: return [rows, dim]
        case .rowWiseAdagrad: return [rows]
        }
    }
}

/// Hyper-parameters of one fused sparse update.
public struct SparseUpdate: Sendable {
    public var optimizer: SparseOptimizerKind
    public var learningRate: Float
    public var eps: Float
    /// L2 coefficient λ: the row gradient becomes g + λ·w before the update (applied to touched rows only).
    public var weightDecay: Float

    public init(optimizer: SparseOptimizerKind, learningRate: Float, eps: Float = 1e-8, weightDecay: Float = 0) {
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.eps = eps
        self.weightDecay = weightDecay
    }
}
