import RecKitCore

/// The public entry points: validate shapes, then call the variant chosen by `KernelVariant.active`.
///
/// ```swift
/// let pool = ThreadPool(threads: 2)
/// try Kernels.linearForward(.init(input: x, weight: w.pointer, bias: b.pointer, output: y, activation: .relu), pool: pool)
/// try Kernels.embeddingBagForward(table: t, bags: bags, mode: .sum, output: concat.columns(16, count: 16), pool: pool)
/// ```
public enum Kernels {
    public static func gemm(_ g: GEMMArguments, pool: ThreadPool) throws(KernelError) {
        try g.validate()
        KernelRegistry.gemm.active(g, pool)
    }

    public static func linearForward(_ a: LinearForwardArguments, pool: ThreadPool) throws(KernelError) {
        try a.validate()
        KernelRegistry.linearForward.active(a, pool)
    }

    /// W (N × K, contiguous) laid out as the optimized linear forward reads it (Wᵀ in 64-byte-aligned 32-column
    /// panels), for `LinearForwardArguments.packedWeight` when the weights stay constant over many calls.
    public static func packLinearWeight(_ weight: UnsafePointer<Float>, inFeatures k: Int, outFeatures n: Int) -> AlignedBuffer<Float> {
        let packed = AlignedBuffer<Float>(count: max(OptimizedPackedGEMM.packedCount(k: k, n: n), 1))
        OptimizedPackedGEMM.packTransposed(weight, ldw: k, n: n, k: k, panels: 0..<OptimizedPackedGEMM.panelCount(n),
                                           into: packed.pointer)
        return packed
    }

    public static func linearBackward(_ a: LinearBackwardArguments, pool: ThreadPool) throws(KernelError) {
        try a.validate()
        KernelRegistry.linearBackward.active(a, pool)
    }

    /// `linearForward` in mixed precision (`Precision.bf16`): GEMM inputs rounded to bf16, fp32 accumulation,
    /// bias and activation in fp32. Keeps the bf16 X and W in `scratch` for `linearBackwardBF16`.
    public static func linearForwardBF16(_ a: LinearForwardArguments, scratch: BF16Scratch, pool: ThreadPool) throws(KernelError) {
        try a.validate()
        KernelRegistry.bf16LinearForward.active(a, scratch, pool)
    }

    /// `linearBackward` in mixed precision, after `linearForwardBF16` on the same input/weights and scratch.
    public static func linearBackwardBF16(_ a: LinearBackwardArguments, scratch: BF16Scratch, pool: ThreadPool) throws(KernelError) {
        try a.validate()
        KernelRegistry.bf16LinearBackward.active(a, scratch, pool)
    }

    /// Embedding-bag forward over a quantized table (inference): output row b = pooled dequantized rows of bag b.
    public static func quantizedEmbeddingBagForward(table: QuantizedTableView, bags: JaggedBags, mode: PoolingMode,
                                                    output: MatrixView, pool: ThreadPool) throws(KernelError) {
        guard output.columns == table.dim, output.rows >= bags.bagCount else {
            throw .shapeMismatch("output \(output.rows)×\(output.columns) for \(bags.bagCount) bags of dim \(table.dim)")
        }
        if let e = KernelRegistry.quantizedBagForward.active(table, bags, mode, output, pool) { throw e }
    }

    /// C (+)= op(A)·op(B) with bf16 A, B and fp32 C.
    public static func bf16GEMM(_ g: BF16GEMMArguments) throws(KernelError) {
        try g.validate()
        KernelRegistry.bf16GEMM.active(g)
    }

    /// fp32 → bf16 bits (round to nearest even; NaN stays NaN).
    public static func toBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
        KernelRegistry.toBF16.active(src, dst, count)
    }

    /// bf16 bits → fp32.
    public static func fromBF16(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        KernelRegistry.fromBF16.active(src, dst, count)
    }

    /// y = act(x) elementwise over `count` floats; `y` may be `x`.
    public static func activationForward(_ act: Activation, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int) {
        KernelRegistry.activationForward.active(act, x, y, count)
    }

    /// dx = dy ⊙ act′(y); `dx` may be `dy`.
    public static func activationBackward(_ act: Activation, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                          dx: UnsafeMutablePointer<Float>, count: Int) {
        KernelRegistry.activationBackward.active(act, y, dy, dx, count)
    }

    /// Summed BCE-with-logits loss; writes gradScale·(σ(z) − y) into `grad` when given (use 1/B for the mean).
    public static func bceWithLogits(logits: UnsafePointer<Float>, labels: UnsafePointer<Float>, count: Int,
                                     grad: UnsafeMutablePointer<Float>?, gradScale: Float) -> Double {
        KernelRegistry.bceWithLogits.active(logits, labels, count, grad, gradScale)
    }

    public static func embeddingBagForward(table: EmbeddingTableView, bags: JaggedBags, mode: PoolingMode,
                                           output: MatrixView, pool: ThreadPool) throws(KernelError) {
        if let e = KernelRegistry.embeddingBagForward.active(table, bags, mode, output, pool) { throw e }
    }

    /// Fused backward + sparse optimizer; `state` holds `update.optimizer.stateCount(rows:dim:)` floats.
    public static func embeddingBagBackward(table: EmbeddingTableView, state: UnsafeMutablePointer<Float>?, stateCount: Int,
                                            bags: JaggedBags, mode: PoolingMode, gradOutput: MatrixView,
                                            update: SparseUpdate, workspace: EmbeddingBackwardWorkspace,
                                            pool: ThreadPool) throws(KernelError) {
        if let e = KernelRegistry.embeddingBagBackward.active(table, state, stateCount, bags, mode, gradOutput, update, workspace, pool) { throw e }
    }

    /// All tables of a batch in one call; table t's vectors go to columns `columnOffsets[t]...` of `output`.
    public static func tableBatchForward(_ batch: TableBatch, mode: PoolingMode, output: MatrixView,
                                         pool: ThreadPool) throws(KernelError) {
        if let e = KernelRegistry.tableBatchForward.active(batch, mode, output, pool) { throw e }
    }

    /// Fused backward + optimizer for all tables; `states[t]` holds `update.optimizer.stateCount(...)` floats.
    public static func tableBatchBackward(_ batch: TableBatch, states: [UnsafeMutableBufferPointer<Float>], mode: PoolingMode,
                                          gradOutput: MatrixView, update: SparseUpdate,
                                          workspace: EmbeddingBackwardWorkspace, pool: ThreadPool) throws(KernelError) {
        if let e = KernelRegistry.tableBatchBackward.active(batch, states, mode, gradOutput, update, workspace, pool) { throw e }
    }

    public static func interactionForward(_ a: InteractionArguments, output: MatrixView, pool: ThreadPool) throws(KernelError) {
        if let e = KernelRegistry.interactionForward.active(a, output, pool) { throw e }
    }

    public static func interactionBackward(_ a: InteractionArguments, gradOutput: MatrixView, gradFeatures: MatrixView,
                                           pool: ThreadPool) throws(KernelError) {
        if let e = KernelRegistry.interactionBackward.active(a, gradOutput, gradFeatures, pool) { throw e }
    }
}
