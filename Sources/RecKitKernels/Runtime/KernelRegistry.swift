#if canImport(Glibc)
import Glibc
#endif

/// Which implementation of each kernel runs.
public enum KernelVariant: String, Sendable, CaseIterable {
    /// Plain loops: the definition, slow, used to test the optimized variants.
    case reference
    /// SIMD, threads, BLAS.
    case optimized

    /// `RECKIT_KERNELS=reference` forces the reference path for the whole process (any other value, or
    /// none, selects the optimized one). Read once at start.
    public static let environmentKey = "RECKIT_KERNELS"

    /// The variant selected by the environment.
    public static let active: KernelVariant = {
        guard let v = getenv(environmentKey) else { return .optimized }
        return String(cString: v).lowercased() == "reference" ? .reference : .optimized
    }()
}

// Kernels that can refuse their input return the error instead of throwing it: typed-throws function types
// used as generic arguments crash Swift 6.3's SIL generation. `Kernels` turns the result back into a throw.
@inline(__always) func captured(_ body: () throws(KernelError) -> Void) -> KernelError? {
    do { try body(); return nil } catch { return error }
}

/// One kernel: a reference twin and an optimized variant with the same signature.
public struct KernelPair<Signature: Sendable>: Sendable {
    public let name: String
    public let summary: String
    public let reference: Signature
    public let optimized: Signature

    public func variant(_ v: KernelVariant) -> Signature { v == .reference ? reference : optimized }
    /// The variant chosen by `KernelVariant.active`.
    public var active: Signature { variant(KernelVariant.active) }
}

public typealias GEMMKernel = @Sendable (GEMMArguments, ThreadPool) -> Void
public typealias LinearForwardKernel = @Sendable (LinearForwardArguments, ThreadPool) -> Void
public typealias LinearBackwardKernel = @Sendable (LinearBackwardArguments, ThreadPool) -> Void
/// (activation, x, y, count); y may alias x.
public typealias ActivationForwardKernel = @Sendable (Activation, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
/// (activation, y = forward output, dy, dx, count); dx may alias dy.
public typealias ActivationBackwardKernel = @Sendable (Activation, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
/// (logits, labels, count, gradient out or nil, gradient scale) → summed loss.
public typealias BCEKernel = @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>?, Float) -> Double
public typealias EmbeddingBagForwardKernel = @Sendable (EmbeddingTableView, JaggedBags, PoolingMode, MatrixView, ThreadPool) -> KernelError?
/// (table, optimizer state, state count, bags, mode, gradOutput, update, workspace, pool)
public typealias EmbeddingBagBackwardKernel = @Sendable (EmbeddingTableView, UnsafeMutablePointer<Float>?, Int, JaggedBags, PoolingMode, MatrixView, SparseUpdate, EmbeddingBackwardWorkspace, ThreadPool) -> KernelError?
public typealias TableBatchForwardKernel = @Sendable (TableBatch, PoolingMode, MatrixView, ThreadPool) -> KernelError?
/// (batch, per-table optimizer states, mode, gradOutput, update, workspace, pool)
public typealias TableBatchBackwardKernel = @Sendable (TableBatch, [UnsafeMutableBufferPointer<Float>], PoolingMode, MatrixView, SparseUpdate, EmbeddingBackwardWorkspace, ThreadPool) -> KernelError?
/// (src, dst, count): fp32 → bf16 bits, round to nearest even.
public typealias BF16ConvertKernel = @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<UInt16>, Int) -> Void
/// (src, dst, count): bf16 bits → fp32 (exact).
public typealias BF16WidenKernel = @Sendable (UnsafePointer<UInt16>, UnsafeMutablePointer<Float>, Int) -> Void
public typealias BF16GEMMKernel = @Sendable (BF16GEMMArguments) -> Void
public typealias BF16LinearForwardKernel = @Sendable (LinearForwardArguments, BF16Scratch, ThreadPool) -> Void
public typealias BF16LinearBackwardKernel = @Sendable (LinearBackwardArguments, BF16Scratch, ThreadPool) -> Void
/// (quantized table, bags, mode, output, pool)
public typealias QuantizedBagForwardKernel = @Sendable (QuantizedTableView, JaggedBags, PoolingMode, MatrixView, ThreadPool) -> KernelError?
public typealias InteractionForwardKernel = @Sendable (InteractionArguments, MatrixView, ThreadPool) -> KernelError?
public typealias InteractionBackwardKernel = @Sendable (InteractionArguments, MatrixView, MatrixView, ThreadPool) -> KernelError?

/// The one table of kernels: dispatch (`.active`), tests (both variants) and benchmarks all read it.
public enum KernelRegistry {
    public static let quantizedBagForward = KernelPair<QuantizedBagForwardKernel>(
        name: "quantized_embedding_bag_forward", summary: "sum/mean/weighted pooling over fp16/int8/int4 rows (per-row scale, bias)",
        reference: { t, b, m, o, p in captured { () throws(KernelError) in try ReferenceQuantized.forward(table: t, bags: b, mode: m, output: o, pool: p) } },
        optimized: { t, b, m, o, p in captured { () throws(KernelError) in try OptimizedQuantized.forward(table: t, bags: b, mode: m, output: o, pool: p) } })
    public static let toBF16 = KernelPair<BF16ConvertKernel>(
        name: "to_bf16", summary: "fp32 → bf16, round to nearest even (SIMD integer)",
        reference: { ReferenceBF16.toBF16($0, $1, $2) }, optimized: { OptimizedBF16.toBF16($0, $1, $2) })
    public static let fromBF16 = KernelPair<BF16WidenKernel>(
        name: "from_bf16", summary: "bf16 → fp32",
        reference: { ReferenceBF16.fromBF16($0, $1, $2) }, optimized: { OptimizedBF16.fromBF16($0, $1, $2) })
    public static let bf16GEMM = KernelPair<BF16GEMMKernel>(
        name: "bf16_gemm", summary: "C (+)= op(A)op(B), bf16 in, fp32 accumulate (oneDNN: AMX / AVX512-BF16)",
        reference: { ReferenceBF16.gemm($0) }, optimized: { OptimizedBF16.gemm($0) })
    public static let bf16LinearForward = KernelPair<BF16LinearForwardKernel>(
        name: "linear_forward_bf16", summary: "Y = act(bf16(X)·bf16(W)ᵀ + b), fp32 accumulate and epilogue",
        reference: { ReferenceBF16.linearForward($0, $1, pool: $2) }, optimized: { OptimizedBF16.linearForward($0, $1, pool: $2) })
    public static let bf16LinearBackward = KernelPair<BF16LinearBackwardKernel>(
        name: "linear_backward_bf16", summary: "dZ, db in fp32; dW, dX from bf16 GEMMs",
        reference: { ReferenceBF16.linearBackward($0, $1, pool: $2) }, optimized: { OptimizedBF16.linearBackward($0, $1, pool: $2) })
    public static let gemm = KernelPair<GEMMKernel>(
        name: "gemm", summary: "C = αop(A)op(B) + βC (OpenBLAS, pool-partitioned)",
        reference: { ReferenceDense.gemm($0, pool: $1) }, optimized: { OptimizedGEMM.gemm($0, pool: $1) })
    public static let linearForward = KernelPair<LinearForwardKernel>(
        name: "linear_forward", summary: "Y = act(X·Wᵀ + b), fused epilogue, GEMV for N = 1, packing-free M ≤ 32",
        reference: { ReferenceDense.linearForward($0, pool: $1) }, optimized: { OptimizedLinear.forward($0, pool: $1) })
    public static let linearBackward = KernelPair<LinearBackwardKernel>(
        name: "linear_backward", summary: "dZ, dW, db, dX of the linear layer",
        reference: { ReferenceDense.linearBackward($0, pool: $1) }, optimized: { OptimizedLinear.backward($0, pool: $1) })
    public static let activationForward = KernelPair<ActivationForwardKernel>(
        name: "activation_forward", summary: "ReLU / sigmoid / identity",
        reference: { ReferenceDense.activationForward($0, $1, $2, $3) },
        optimized: { OptimizedActivation.forward($0, $1, $2, $3) })
    public static let activationBackward = KernelPair<ActivationBackwardKernel>(
        name: "activation_backward", summary: "dx = dy ⊙ act′(y)",
        reference: { ReferenceDense.activationBackward($0, $1, $2, $3, $4) },
        optimized: { OptimizedActivation.backward($0, $1, $2, $3, $4) })
    public static let bceWithLogits = KernelPair<BCEKernel>(
        name: "bce_with_logits", summary: "stable binary cross-entropy with logits + gradient",
        reference: { ReferenceDense.bceWithLogits($0, $1, $2, $3, $4) },
        optimized: { OptimizedActivation.bceWithLogits($0, $1, $2, $3, $4) })
    public static let embeddingBagForward = KernelPair<EmbeddingBagForwardKernel>(
        name: "embedding_bag_forward", summary: "sum/mean/weighted pooling into a strided output",
        reference: { t, b, m, o, p in captured { () throws(KernelError) in try ReferenceEmbeddingBag.forward(table: t, bags: b, mode: m, output: o, pool: p) } },
        optimized: { t, b, m, o, p in captured { () throws(KernelError) in try OptimizedEmbeddingBag.forward(table: t, bags: b, mode: m, output: o, pool: p) } })
    public static let embeddingBagBackward = KernelPair<EmbeddingBagBackwardKernel>(
        name: "embedding_bag_backward", summary: "fused backward + SGD / Adagrad / row-wise Adagrad, duplicates aggregated",
        reference: { t, s, sc, b, m, g, u, w, p in captured { () throws(KernelError) in
            try ReferenceEmbeddingBag.backward(table: t, state: s, stateCount: sc, bags: b, mode: m, gradOutput: g,
                                               update: u, workspace: w, pool: p) } },
        optimized: { t, s, sc, b, m, g, u, w, p in captured { () throws(KernelError) in
            try OptimizedEmbeddingBackward.backward(table: t, state: s, stateCount: sc, bags: b, mode: m, gradOutput: g,
                                                    update: u, workspace: w, pool: p) } })
    public static let tableBatchForward = KernelPair<TableBatchForwardKernel>(
        name: "table_batch_forward", summary: "all tables of a batch in one region, output rows written whole",
        reference: { b, m, o, p in captured { () throws(KernelError) in try ReferenceTableBatch.forward(b, mode: m, output: o, pool: p) } },
        optimized: { b, m, o, p in captured { () throws(KernelError) in try OptimizedTableBatch.forward(b, mode: m, output: o, pool: p) } })
    public static let tableBatchBackward = KernelPair<TableBatchBackwardKernel>(
        name: "table_batch_backward", summary: "fused backward + optimizer for all tables in one region",
        reference: { b, s, m, g, u, w, p in captured { () throws(KernelError) in
            try ReferenceTableBatch.backward(b, states: s, mode: m, gradOutput: g, update: u, workspace: w, pool: p) } },
        optimized: { b, s, m, g, u, w, p in captured { () throws(KernelError) in
            try OptimizedTableBatch.backward(b, states: s, mode: m, gradOutput: g, update: u, workspace: w, pool: p) } })
    public static let interactionForward = KernelPair<InteractionForwardKernel>(
        name: "dot_interaction_forward", summary: "DLRM pairwise dots (lower triangle) after the dense vector",
        reference: { a, o, p in captured { () throws(KernelError) in try ReferenceInteraction.forward(a, output: o, pool: p) } },
        optimized: { a, o, p in captured { () throws(KernelError) in try OptimizedInteraction.forward(a, output: o, pool: p) } })
    public static let interactionBackward = KernelPair<InteractionBackwardKernel>(
        name: "dot_interaction_backward", summary: "gradient of the dot interaction",
        reference: { a, g, gf, p in captured { () throws(KernelError) in try ReferenceInteraction.backward(a, gradOutput: g, gradFeatures: gf, pool: p) } },
        optimized: { a, g, gf, p in captured { () throws(KernelError) in try OptimizedInteraction.backward(a, gradOutput: g, gradFeatures: gf, pool: p) } })

    /// Every kernel's name and summary, in a fixed order (for listings and reports).
    public static let catalogue: [(name: String, summary: String)] = [
        (gemm.name, gemm.summary), (linearForward.name, linearForward.summary),
        (linearBackward.name, linearBackward.summary), (activationForward.name, activationForward.summary),
        (activationBackward.name, activationBackward.summary), (bceWithLogits.name, bceWithLogits.summary),
        (embeddingBagForward.name, embeddingBagForward.summary), (embeddingBagBackward.name, embeddingBagBackward.summary),
        (tableBatchForward.name, tableBatchForward.summary), (tableBatchBackward.name, tableBatchBackward.summary),
        (interactionForward.name, interactionForward.summary), (interactionBackward.name, interactionBackward.summary),
        (quantizedBagForward.name, quantizedBagForward.summary), (toBF16.name, toBF16.summary), (fromBF16.name, fromBF16.summary),
        (bf16GEMM.name, bf16GEMM.summary), (bf16LinearForward.name, bf16LinearForward.summary),
        (bf16LinearBackward.name, bf16LinearBackward.summary),
    ]
}
