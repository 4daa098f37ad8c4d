import RecKitCore

/// Linear layer Y = act(X·Wᵀ + b) and its backward on the partitioned GEMM, with the bias and activation fused
/// into an epilogue that runs on each task's block right after its GEMM (while it is still in cache), and a
/// SIMD dot-product path for N = 1 layers (the 256→1 output layer, which BLAS runs at 5–25 GFLOP/s) and for
/// small batches (`OptimizedSmallBatchLinear`).
enum OptimizedLinear {
    /// Row chunks of the bias-gradient reduction: fixed, so db does not depend on the thread count.
    static let reductionChunks = 8

    static func forward(_ a: LinearForwardArguments, pool: ThreadPool) {
        let m = a.input.rows, k = a.input.columns, n = a.output.columns
        if m == 0 || n == 0 { return }
        if n == 1 { return forwardGEMV(a, pool: pool) }
        if OptimizedSmallBatchLinear.applies(m: m, k: k, n: n) { return OptimizedSmallBatchLinear.forward(a, pool: pool) }
        if a.packedWeight != nil || m >= OptimizedPackedGEMM.minRows { return forwardPacked(a, pool: pool) }
        let byRows = OptimizedGEMM.splitsRows(m: m, n: n, threads: pool.threadCount)
        let parts = ThreadPool.split(byRows ? m : n, into: m * n * k < OptimizedGEMM.parallelThreshold ? 1 : pool.threadCount)
        pool.parallelFor(parts.count) { t in
            let r = parts[t]
            let rows = byRows ? r : 0..<m
            let cols = byRows ? 0..<n : r
            let g = GEMMArguments(transA: .none, transB: .transposed, m: rows.count, n: cols.count, k: k,
                                  a: a.input.row(rows.lowerBound), lda: a.input.rowStride,
                                  b: a.weight + cols.lowerBound * k, ldb: k,
                                  c: a.output.row(rows.lowerBound) + cols.lowerBound, ldc: a.output.rowStride)
            if let blas = BLASRuntime.available { OptimizedGEMM.call(blas, g) } else { ReferenceDense.gemm(g, pool: pool) }
            epilogue(a, rows: rows, cols: cols)
        }
    }

    /// Y = act(X·Wᵀ + b) on the packed micro-kernel, bias and activation on the accumulators: with the caller's
    /// `packedWeight` when given, else Wᵀ packed for this call.
    static func forwardPacked(_ a: LinearForwardArguments, pool: ThreadPool) {
        let m = a.input.rows, k = a.input.columns, n = a.output.columns
        func run(_ packed: UnsafePointer<Float>) {
            OptimizedPackedGEMM.multiply(a: a.input.base, lda: a.input.rowStride, m: m, k: k, packed: packed, n: n,
                                         c: a.output.base, ldc: a.output.rowStride,
                                         epilogue: .init(bias: a.bias, activation: a.activation), pool: pool)
        }
        if let packed = a.packedWeight { return run(packed) }
        let w = SendablePointer(a.weight)
        OptimizedPackedGEMM.withPacked(k: k, n: n, pool: pool, pack: { panels, out in
            OptimizedPackedGEMM.packTransposed(w.base, ldw: k, n: n, k: k, panels: panels, into: out)
        }, run)
    }

    /// Y[rows, cols] = act(Y + b) in place.
    @inline(__always) static func epilogue(_ a: LinearForwardArguments, rows: Range<Int>, cols: Range<Int>) {
        let width = cols.count, chunks = width / 16
        for i in rows {
            let y = a.output.row(i) + cols.lowerBound
            let bias = a.bias.map { $0 + cols.lowerBound }
            for c in 0..<chunks {
                var v = load16(y + c * 16)
                if let bias { v += load16(bias + c * 16) }
                store16(OptimizedActivation.apply(a.activation, v), y + c * 16)
            }
            for j in (chunks * 16)..<width {
                var v = y[j]
                if let bias { v += bias[j] }
                y[j] = ReferenceDense.activate(a.activation, v)
            }
        }
    }

    /// N = 1: y_i = act(⟨x_i, w⟩ + b), SIMD16 dot products, rows split across the pool.
    static func forwardGEMV(_ a: LinearForwardArguments, pool: ThreadPool) {
        let m = a.input.rows, k = a.input.columns
        let parts = ThreadPool.split(m, into: m * k < OptimizedGEMM.parallelThreshold ? 1 : pool.threadCount)
        let b0 = a.bias?[0] ?? 0
        pool.parallelFor(parts.count) { t in
            for i in parts[t] {
                let v = dot(a.input.row(i), a.weight, k) + b0
                a.output.row(i)[0] = ReferenceDense.activate(a.activation, v)
            }
        }
    }

    @inline(__always) static func dot(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ k: Int) -> Float {
        let chunks = k / 16
        var acc0 = F16x.zero, acc1 = F16x.zero
        var c = 0
        while c + 1 < chunks {
            acc0 += load16(x + c * 16) * load16(w + c * 16)
            acc1 += load16(x + c * 16 + 16) * load16(w + c * 16 + 16)
            c += 2
        }
        if c < chunks { acc0 += load16(x + c * 16) * load16(w + c * 16) }
        var s = (acc0 + acc1).sum()
        for l in (chunks * 16)..<k { s += x[l] * w[l] }
        return s
    }

    static func backward(_ a: LinearBackwardArguments, pool: ThreadPool) {
        let m = a.input.rows, k = a.input.columns, n = a.output.columns
        if n == 0 { return }
        // 1. dZ = dY ⊙ act′(Y) in place, and db.
        activationGradientAndBias(a, pool: pool)
        // 2. dW (+)= dZᵀ·X.
        if n == 1 {
            gradWeightGEMV(a, pool: pool)
        } else {
            OptimizedGEMM.gemm(GEMMArguments(transA: .transposed, transB: .none, m: n, n: k, k: m,
                                             a: a.gradOutput.base, lda: a.gradOutput.rowStride,
                                             b: a.input.base, ldb: a.input.rowStride, beta: a.accumulate ? 1 : 0,
                                             c: a.gradWeight, ldc: k), pool: pool)
        }
        // 3. dX = dZ·W.
        guard let gi = a.gradInput else { return }
        if n == 1 {
            let parts = ThreadPool.split(m, into: m * k < OptimizedGEMM.parallelThreshold ? 1 : pool.threadCount)
            pool.parallelFor(parts.count) { t in
                for i in parts[t] { OptimizedActivation.scaleRow(a.weight, by: a.gradOutput.row(i)[0], into: gi.row(i), k) }
            }
        } else if m >= OptimizedPackedGEMM.minRows {
            let w = SendablePointer(a.weight)
            OptimizedPackedGEMM.withPacked(k: n, n: k, pool: pool, pack: { panels, out in
                OptimizedPackedGEMM.packRows(w.base, ldw: k, n: k, k: n, panels: panels, into: out)
            }) { packed in
                OptimizedPackedGEMM.multiply(a: a.gradOutput.base, lda: a.gradOutput.rowStride, m: m, k: n,
                                             packed: packed, n: k, c: gi.base, ldc: gi.rowStride,
                                             epilogue: .init(bias: nil, activation: .identity), pool: pool)
            }
        } else {
            OptimizedGEMM.gemm(GEMMArguments(transA: .none, transB: .none, m: m, n: k, k: n,
                                             a: a.gradOutput.base, lda: a.gradOutput.rowStride,
                                             b: a.weight, ldb: k, beta: 0, c: gi.base, ldc: gi.rowStride), pool: pool)
        }
    }

    /// dZ = dY ⊙ act′(Y) in place (B × N), and db (+)= Σ_rows dZ from per-chunk column sums in chunk order.
    static func activationGradientAndBias(_ a: LinearBackwardArguments, pool: ThreadPool) {
        let n = a.output.columns
        chunkedColumnSums(rows: a.input.rows, width: n, into: a.gradBias, accumulate: a.accumulate, pool: pool) { rows, sums in
            for i in rows {
                let gy = a.gradOutput.row(i)
                OptimizedActivation.backwardRow(a.activation, a.output.row(i), gy, n)
                OptimizedActivation.addRow(gy, into: sums, n)
            }
        }
    }

    /// N = 1: dW (+)= Σ_i dz_i·x_i, per fixed row chunk then summed in chunk order.
    static func gradWeightGEMV(_ a: LinearBackwardArguments, pool: ThreadPool) {
        let k = a.input.columns
        chunkedColumnSums(rows: a.input.rows, width: k, into: a.gradWeight, accumulate: a.accumulate, pool: pool) { rows, acc in
            for i in rows { OptimizedActivation.axpy(a.gradOutput.row(i)[0], a.input.row(i), acc, k) }
        }
    }

    /// The deterministic parallel reduction both use: rows cut into `reductionChunks` fixed chunks, `body` adds its
    /// chunk's rows into a zeroed `width`-float partial, then `dst` (+)= the partials in chunk order (when given),
    /// so the result does not depend on the thread count.
    static func chunkedColumnSums(rows m: Int, width: Int, into dst: UnsafeMutablePointer<Float>?, accumulate: Bool,
                                  pool: ThreadPool, _ body: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        let chunks = ThreadPool.split(m, into: min(reductionChunks, max(m, 1)))
        // Stack (or, when large, heap) scratch: this runs for every layer of every step, so no AlignedBuffer here.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(chunks.count * width, 1)) { buf in
            let partial = buf.baseAddress!
            partial.initialize(repeating: 0, count: chunks.count * width)
            let pp = SendablePointer(partial)
            pool.parallelFor(chunks.count) { t in body(chunks[t], pp.base + t * width) }
            guard let dst else { return }
            if !accumulate { dst.update(repeating: 0, count: width) }
            for t in 0..<chunks.count { OptimizedActivation.addRow(partial + t * width, into: dst, width) }
        }
    }
}
