/// Plain-loop twins of the embedding-bag kernels: the definition the optimized variants are tested against.
/// Element order of every sum is position order, so the optimized forward matches these bit for bit.
enum ReferenceEmbeddingBag {
    /// out_b = scale_b · Σ_{p ∈ bag b} w_p · row(indices[p]); see `PoolingMode`.
    static func forward(table: EmbeddingTableView, bags: JaggedBags, mode: PoolingMode, output: MatrixView,
                        pool: ThreadPool) throws(KernelError) {
        let d = table.dim
        try pooled(bags: bags, rows: table.rows, dim: d, mode: mode, output: output) { r, j in table.weights[r * d + j] }
    }

    /// The pooling definition shared by every reference forward: `element(row, j)` reads element j of a row
    /// (fp32 here, dequantized in `ReferenceQuantized`); sums run in position order.
    static func pooled(bags: JaggedBags, rows: Int, dim d: Int, mode: PoolingMode, output: MatrixView,
                       element: (Int, Int) -> Float) throws(KernelError) {
        try BagValidation.validate(bags, rows: rows)
        var offsets = [Int32](repeating: 0, count: bags.bagCount + 1)
        offsets.withUnsafeMutableBufferPointer { BagValidation.resolveOffsets(bags, into: $0.baseAddress!) }
        for b in 0..<bags.bagCount {
            let start = Int(offsets[b]), end = Int(offsets[b + 1])
            var acc = [Float](repeating: 0, count: d)
            for p in start..<end {
                let r = Int(bags.indices[p])
                let w = bags.weights?[p] ?? 1
                for j in 0..<d { acc[j] += w * element(r, j) }
            }
            let s = BagValidation.scale(mode, length: end - start)
            let out = output.row(b)
            for j in 0..<d { out[j] = mode == .sum ? acc[j] : acc[j] * s }
        }
    }

    /// Backward of `forward` fused with the sparse optimizer: per unique row, the gradient summed over its
    /// occurrences (in position order) is applied once; see `SparseOptimizerKind` for the update rules.
    static func backward(table: EmbeddingTableView, state: UnsafeMutablePointer<Float>?, stateCount: Int,
                         bags: JaggedBags, mode: PoolingMode, gradOutput: MatrixView, update: SparseUpdate,
                         workspace: EmbeddingBackwardWorkspace, pool: ThreadPool) throws(KernelError) {
        try EmbeddingBackwardChecks.check(table: table, stateCount: stateCount, state: state, update: update)
        try BagValidation.validate(bags, rows: table.rows)
        let d = table.dim
        var offsets = [Int32](repeating: 0, count: bags.bagCount + 1)
        offsets.withUnsafeMutableBufferPointer { BagValidation.resolveOffsets(bags, into: $0.baseAddress!) }
        var order: [Int] = []
        var grads: [Int: [Float]] = [:]
        for b in 0..<bags.bagCount {
            let start = Int(offsets[b]), end = Int(offsets[b + 1])
            let s = BagValidation.scale(mode, length: end - start)
            for p in start..<end {
                let r = Int(bags.indices[p])
                let w = bags.weights?[p] ?? 1
                let f = mode == .sum ? w : w * s
                if grads[r] == nil { grads[r] = [Float](repeating: 0, count: d); order.append(r) }
                for j in 0..<d { grads[r]![j] += gradOutput.row(b)[j] * f }
            }
        }
        for r in order {
            var g = grads[r]!
            let row = table.weights + r * d
            if update.weightDecay != 0 { for j in 0..<d { g[j] += update.weightDecay * row[j] } }
            switch update.optimizer {
            case .sgd:
                for j in 0..<d { row[j] -= update.learningRate * g[j] }
            case .adagrad:
                let h = state! + r * d
                for j in 0..<d {
                    h[j] += g[j] * g[j]
                    row[j] -= update.learningRate * g[j] / (h[j].squareRoot() + update.eps)
                }
            case .rowWiseAdagrad:
                var sq: Float = 0
                for j in 0..<d { sq += g[j] * g[j] }
                state![r] += sq / Float(d)
                let m = update.learningRate / (state![r].squareRoot() + update.eps)
                for j in 0..<d { row[j] -= m * g[j] }
            }
        }
    }
}

/// Checks shared by both backward variants.
enum EmbeddingBackwardChecks {
    static func check(table: EmbeddingTableView, stateCount: Int, state: UnsafeMutablePointer<Float>?,
                      update: SparseUpdate) throws(KernelError) {
        guard table.dim >= 1 else { throw .shapeMismatch("embedding dim must be ≥ 1") }
        let need = update.optimizer.stateCount(rows: table.rows, dim: table.dim)
        if need > 0 && (state == nil || stateCount != need) {
            throw .optimizerStateMismatch(expected: need, got: state == nil ? 0 : stateCount)
        }
    }
}
