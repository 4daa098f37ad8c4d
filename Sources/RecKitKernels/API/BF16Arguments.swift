import RecKitCore

/// Which precision the MLP GEMMs run in. `bf16` = mixed precision: weights, activations and gradients are rounded
/// to bfloat16 (round-to-nearest-even) as GEMM inputs, products accumulate in fp32, and everything else — master
/// weights, biases, activations between layers, optimizer state, embeddings — stays fp32.
public enum Precision: String, Sendable, Codable, CaseIterable {
    case fp32, bf16
}

/// C (m×n, fp32, row stride ldc) = op(A)·op(B) (+ C when `accumulate`), A and B bfloat16 (raw bits).
/// op(A) is m×k: A is row-major with row stride `lda`, read transposed when `transA` (A is then k×m); op(B) is k×n.
public struct BF16GEMMArguments: @unchecked Sendable {
    public var transA: Transpose, transB: Transpose
    public var m: Int, n: Int, k: Int
    public var a: UnsafePointer<UInt16>, lda: Int
    public var b: UnsafePointer<UInt16>, ldb: Int
    public var accumulate: Bool
    public var c: UnsafeMutablePointer<Float>, ldc: Int

    public init(transA: Transpose = .none, transB: Transpose = .none, m: Int, n: Int, k: Int,
                a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int, accumulate: Bool = false,
                c: UnsafeMutablePointer<Float>, ldc: Int) {
        self.transA = transA; self.transB = transB; self.m = m; self.n = n; self.k = k
        self.a = a; self.lda = lda; self.b = b; self.ldb = ldb; self.accumulate = accumulate; self.c = c; self.ldc = ldc
    }

    public func validate() throws(KernelError) {
        guard m >= 0, n >= 0, k >= 0 else { throw .shapeMismatch("bf16 GEMM dims must be ≥ 0 (m=\(m), n=\(n), k=\(k))") }
        let aCols = transA == .none ? k : m, bCols = transB == .none ? n : k
        guard lda >= max(1, aCols) else { throw .shapeMismatch("bf16 GEMM lda=\(lda) < \(aCols)") }
        guard ldb >= max(1, bCols) else { throw .shapeMismatch("bf16 GEMM ldb=\(ldb) < \(bCols)") }
        guard ldc >= max(1, n) else { throw .shapeMismatch("bf16 GEMM ldc=\(ldc) < \(n)") }
    }
}

/// The bf16 copies a mixed-precision linear layer keeps between its forward and backward: X (B×K), W (N×K) and
/// dZ (B×N), contiguous. Grows on demand; one per layer. `backward` must follow `forward` on the same input and
/// weights (as in training), because it reuses the bf16 X and W of that forward.
public final class BF16Scratch: @unchecked Sendable {
    public private(set) var input = AlignedBuffer<UInt16>(count: 0)
    public private(set) var weight = AlignedBuffer<UInt16>(count: 0)
    public private(set) var gradOutput = AlignedBuffer<UInt16>(count: 0)

    public init() {}

    func reserve(input x: Int, weight w: Int, gradOutput g: Int) {
        if input.count < x { input = AlignedBuffer(count: x) }
        if weight.count < w { weight = AlignedBuffer(count: w) }
        if gradOutput.count < g { gradOutput = AlignedBuffer(count: g) }
    }
}

/// Which linear layers mixed precision runs in bf16: both widths at least `minWidth`. Narrower layers stay fp32 in
/// both kernel twins — N = 1 (a GEMV: nothing for bf16 to speed up), K < 32 (DLRM's 13→512 input layer, whose
/// cost is writing its output) and N < 32 (64→16, where oneDNN 2.6 falls back to a generic kernel: measured
/// 0.07 ms per half-batch GEMM, ~30 GFLOP/s, against 0.10 ms for the whole batch in fp32).
public enum BF16Policy {
    public static let minWidth = 32
    @inline(__always) public static func usesBF16(inFeatures k: Int, outFeatures n: Int) -> Bool { k >= minWidth && n >= minWidth }
}

