// Argument bundles for the kernel signatures in `KernelRegistry`. Shapes use the notation of KernelTypes.swift.

/// C ← alpha·op(A)·op(B) + beta·C, row-major. op(A) is M×K, op(B) is K×N, C is M×N.
/// `beta = 1` accumulates into C (gradient accumulation); `beta = 0` ignores C's old contents (even NaN).
public struct GEMMArguments: @unchecked Sendable {
    public var transA: Transpose
    public var transB: Transpose
    public var m: Int, n: Int, k: Int
    public var alpha: Float
    public var a: UnsafePointer<Float>, lda: Int
    public var b: UnsafePointer<Float>, ldb: Int
    public var beta: Float
    public var c: UnsafeMutablePointer<Float>, ldc: Int

    public init(transA: Transpose = .none, transB: Transpose = .none, m: Int, n: Int, k: Int, alpha: Float = 1,
                a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
                c: UnsafeMutablePointer<Float>, ldc: Int) {
        self.transA = transA; self.transB = transB
        self.m = m; self.n = n; self.k = k
        self.alpha = alpha; self.a = a; self.lda = lda; self.b = b; self.ldb = ldb
        self.beta = beta; self.c = c; self.ldc = ldc
    }

    /// Checks leading dimensions against the shapes (what cblas would otherwise reject by printing).
    public func validate() throws(KernelError) {
        guard m >= 0, n >= 0, k >= 0 else { throw .shapeMismatch("GEMM dims must be ≥ 0 (m=\(m), n=\(n), k=\(k))") }
        let aCols = transA == .none ? k : m, bCols = transB == .none ? n : k
        guard lda >= max(1, aCols) else { throw .shapeMismatch("GEMM lda=\(lda) < \(aCols)") }
        guard ldb >= max(1, bCols) else { throw .shapeMismatch("GEMM ldb=\(ldb) < \(bCols)") }
        guard ldc >= max(1, n) else { throw .shapeMismatch("GEMM ldc=\(ldc) < \(n)") }
    }
}

/// A fully connected layer, PyTorch layout: Y = act(X·Wᵀ + b).
/// X: M×K (strided), W: N×K contiguous, b: N, Y: M×N (strided).
public struct LinearForwardArguments: @unchecked Sendable {
    public var input: MatrixView
    public var weight: UnsafePointer<Float>
    public var bias: UnsafePointer<Float>?
    public var output: MatrixView
    public var activation: Activation
    /// Optional: W already laid out by `Kernels.packLinearWeight` (constant weights, e.g. serving), so the optimized
    /// forward skips packing it per call. It must be the packing of the current `weight`; the reference ignores it.
    public var packedWeight: UnsafePointer<Float>?

    public init(input: MatrixView, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, output: MatrixView,
                activation: Activation, packedWeight: UnsafePointer<Float>? = nil) {
        self.input = input; self.weight = weight; self.bias = bias; self.output = output; self.activation = activation
        self.packedWeight = packedWeight
    }

    public func validate() throws(KernelError) {
        guard input.rows == output.rows else {
            throw .shapeMismatch("linear: input has \(input.rows) rows, output \(output.rows)")
        }
        guard input.rowStride >= input.columns, output.rowStride >= output.columns else {
            throw .shapeMismatch("linear: row stride smaller than columns")
        }
    }
}

/// Backward of `LinearForwardArguments` with Z = X·Wᵀ + b, Y = act(Z):
///   dZ = dY ⊙ act′(Y)            (written over `gradOutput`)
///   dW (+)= dZᵀ·X   N×K,   db (+)= Σ_rows dZ   N,   dX = dZ·W   M×K (skipped when `gradInput` is nil)
/// `accumulate` adds into dW/db (several micro-batches); otherwise they are overwritten.
public struct LinearBackwardArguments: @unchecked Sendable {
    public var input: MatrixView
    public var weight: UnsafePointer<Float>
    public var output: MatrixView
    public var gradOutput: MatrixView
    public var gradInput: MatrixView?
    public var gradWeight: UnsafeMutablePointer<Float>
    public var gradBias: UnsafeMutablePointer<Float>?
    public var activation: Activation
    public var accumulate: Bool

    public init(input: MatrixView, weight: UnsafePointer<Float>, output: MatrixView, gradOutput: MatrixView,
                gradInput: MatrixView?, gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?,
                activation: Activation, accumulate: Bool = false) {
        self.input = input; self.weight = weight; self.output = output; self.gradOutput = gradOutput
        self.gradInput = gradInput; self.gradWeight = gradWeight; self.gradBias = gradBias
        self.activation = activation; self.accumulate = accumulate
    }

    public func validate() throws(KernelError) {
        let m = input.rows
        guard output.rows == m, gradOutput.rows == m, gradOutput.columns == output.columns else {
            throw .shapeMismatch("linear backward: output/gradOutput shapes differ from input rows \(m)")
        }
        if let gi = gradInput, gi.rows != m || gi.columns != input.columns {
            throw .shapeMismatch("linear backward: gradInput must be \(m)×\(input.columns)")
        }
    }
}

/// DLRM dot interaction over F vectors of dimension D per sample.
/// features: B × (F·D) (vector f of sample b at columns f·D ..< (f+1)·D; vector 0 is the dense/bottom-MLP one).
/// output: B × (D + P): the dense vector, then the P = F(F−1)/2 (or F(F+1)/2 with the diagonal) dot products
/// ⟨v_i, v_j⟩ for i > j (i ≥ j), ordered by i then j — the DLRM reference's `li, lj` order.
public struct InteractionArguments: @unchecked Sendable {
    public var features: MatrixView
    public var vectorCount: Int
    public var dim: Int
    public var includeDiagonal: Bool

    public init(features: MatrixView, vectorCount: Int, dim: Int, includeDiagonal: Bool = false) {
        self.features = features; self.vectorCount = vectorCount; self.dim = dim; self.includeDiagonal = includeDiagonal
    }

    /// P, the number of pairwise products.
    public var pairCount: Int { includeDiagonal ? vectorCount * (vectorCount + 1) / 2 : vectorCount * (vectorCount - 1) / 2 }
    /// D + P, the output width.
    public var outputWidth: Int { dim + pairCount }

    public func validate(output: MatrixView) throws(KernelError) {
        guard vectorCount >= 1, dim >= 1 else { throw .shapeMismatch("interaction needs F ≥ 1 and D ≥ 1") }
        guard features.columns == vectorCount * dim, features.rowStride >= features.columns else {
            throw .shapeMismatch("interaction features must be B×\(vectorCount * dim), got \(features.rows)×\(features.columns)")
        }
        guard output.rows == features.rows, output.columns == outputWidth, output.rowStride >= output.columns else {
            throw .shapeMismatch("interaction output must be \(features.rows)×\(outputWidth)")
        }
    }
}
