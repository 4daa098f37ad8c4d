import RecKitCore

/// fp32 GEMM C = act(A·B + bias) with B packed into panels and an 8 × 32 register-blocked micro-kernel, used by the
/// linear layer's forward (B = Wᵀ) and its input gradient (B = W).
///
/// Packed B: panel p holds columns 32p ..< 32p+32 of B for every kk, k-major (`panel[kk·32 + j] = B[kk][32p + j]`),
/// zero past N, 64-byte aligned, so the micro-kernel reads two whole-line vectors per kk. For a tile of 8 rows of A
/// it keeps 8 × 2 accumulators of 16 lanes (16 of the 32 vector registers), broadcasts A[i][kk] and does two fused
/// multiply-adds per row per kk; bias, activation and the store of the tail columns happen on the accumulators
/// (no second pass over C). Rows of A past the end are clamped to the last row (recomputed, not stored).
///
/// Why not OpenBLAS here: its `sgemm` repacks both operands on every call and the epilogue is a second pass over
/// C. Measured on this project's AMD EPYC (Zen 4) VM: one thread, best of 20, packing included —
/// forward with ReLU 2048×512×367 96 → 103 GFLOP/s, 2048×256×512 95 → 107, 2048×64×256 99 → 114, K = 13 57 → 86
/// (64→16, half a panel, 79 → 49: a negligible layer); the FMA peak of one core measured the same way is 117. In
/// the model (`reckit bench train --threads 1`, interleaved) the forward MLPs went 21.2 → 19.4 ms per step; with
/// 2 threads the gain shrinks (MLP forward + backward 33.9 → 32.8 ms, best of 5, `reckit bench kernels`). The
/// epilogue must stay inlined: an outlined per-row store (SIMD values through memory) made the same kernel 20%
/// slower than OpenBLAS in the model. The weight gradient (Aᵀ·B, the batch as the reduction) gained nothing in the
/// same prototype (±3% of OpenBLAS) and stays on BLAS.
enum OptimizedPackedGEMM {
    /// Rows per micro-tile and columns per panel.
    static let tileRows = 8, panelWidth = 32
    /// Rows of A per block: the block (≤ 128 × K floats) stays in L2 while every panel passes over it.
    static let rowBlock = 128
    /// Smallest M the linear layer sends here; below it the per-call packing outweighs the gain (and M ≤ 32 has
    /// `OptimizedSmallBatchLinear`).
    static let minRows = 64

    static func panelCount(_ n: Int) -> Int { (n + panelWidth - 1) / panelWidth }
    /// Floats of a packed B with k rows and n columns.
    static func packedCount(k: Int, n: Int) -> Int { panelCount(n) * panelWidth * k }

    /// Packs B = Wᵀ for W (n × k, row stride `ldw`): panel[p][kk][j] = W[32p + j][kk], 8 columns of W at a time
    /// so each W line read is used for 8 consecutive kk (0.16 ms for 512 × 367 on one thread, ~3% of that layer's
    /// forward; `transpose16x16` was no faster here because its de-interleaving shuffles are not inlined).
    static func packTransposed(_ w: UnsafePointer<Float>, ldw: Int, n: Int, k: Int, panels: Range<Int>,
                               into out: UnsafeMutablePointer<Float>) {
        for p in panels {
            let dst = out + p * k * panelWidth, rows = min(panelWidth, n - p * panelWidth)
            let src = w + p * panelWidth * ldw
            if rows < panelWidth { dst.update(repeating: 0, count: k * panelWidth) }
            var kk = 0
            while kk < k {
                // 8 columns of W at a time: each of the `rows` lines read is reused for 8 consecutive kk.
                let kEnd = min(k, kk + 8)
                for j in 0..<rows {
                    let s = src + j * ldw
                    for t in kk..<kEnd { dst[t * panelWidth + j] = s[t] }
                }
                kk = kEnd
            }
        }
    }

    /// Packs B = W for W (k × n, row stride `ldw`): panel[p][kk][j] = W[kk][32p + j].
    static func packRows(_ w: UnsafePointer<Float>, ldw: Int, n: Int, k: Int, panels: Range<Int>,
                         into out: UnsafeMutablePointer<Float>) {
        for p in panels {
            let dst = out + p * k * panelWidth, c0 = p * panelWidth, width = min(panelWidth, n - c0)
            if width == panelWidth {
                for kk in 0..<k {
                    let src = w + kk * ldw + c0
                    store16(load16(src), dst + kk * panelWidth)
                    store16(load16(src + 16), dst + kk * panelWidth + 16)
                }
            } else {
                for kk in 0..<k {
                    for j in 0..<panelWidth { dst[kk * panelWidth + j] = j < width ? w[kk * ldw + c0 + j] : 0 }
                }
            }
        }
    }

    /// What the micro-kernel does with its accumulators: C = act(acc + bias) over `columns` (≤ 32) columns.
    struct Epilogue {
        var bias: UnsafePointer<Float>?
        var activation: Activation
    }

    /// C (m × n, row stride ldc) = act(A (m × k, row stride lda) · B + bias), B packed (`packedCount(k:n:)` floats,
    /// built by `packTransposed`/`packRows`); rows of C split over the pool (no two tasks write one row).
    static func multiply(a: UnsafePointer<Float>, lda: Int, m: Int, k: Int, packed: UnsafePointer<Float>, n: Int,
                         c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: Epilogue, pool: ThreadPool) {
        if m == 0 || n == 0 { return }
        let threads = m * n * k < OptimizedGEMM.parallelThreshold ? 1 : pool.threadCount
        // Parts are whole tiles so only the last part has a short tile.
        let tiles = (m + tileRows - 1) / tileRows
        let parts = ThreadPool.split(tiles, into: min(threads, tiles))
        let aP = SendablePointer(a), cP = SendablePointer(c), bP = SendablePointer(packed)
        pool.parallelFor(parts.count) { t in
            let rowsBegin = parts[t].lowerBound * tileRows, rowsEnd = min(m, parts[t].upperBound * tileRows)
            var i0 = rowsBegin
            while i0 < rowsEnd {
                let i1 = min(rowsEnd, i0 + rowBlock)
                for p in 0..<panelCount(n) {
                    let panel = UnsafePointer(bP.base + p * k * panelWidth)
                    let c0 = p * panelWidth, width = min(panelWidth, n - c0), bias = epilogue.bias.map { $0 + c0 }
                    var i = i0
                    while i < i1 {
                        tile(aP.base + i * lda, lda: lda, rows: min(tileRows, i1 - i), panel: panel, k: k,
                             c: cP.base + i * ldc + c0, ldc: ldc, columns: width,
                             bias: bias, activation: epilogue.activation)
                        i += tileRows
                    }
                }
                if epilogue.activation != .identity && epilogue.activation != .relu {
                    for r in i0..<i1 {
                        OptimizedActivation.forward(epilogue.activation, cP.base + r * ldc, cP.base + r * ldc, n)
                    }
                }
                i0 = i1
            }
        }
    }

    /// One 8 × 32 tile: acc = A[0..<8, 0..<k] · panel, then C[r][0..<columns] = act(acc[r] + bias) for r < rows.
    @inline(__always)
    static func tile(_ a: UnsafePointer<Float>, lda: Int, rows: Int, panel: UnsafePointer<Float>, k: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, columns: Int, bias: UnsafePointer<Float>?,
                     activation: Activation) {
        let last = rows - 1
        let a0 = a, a1 = a + min(1, last) * lda, a2 = a + min(2, last) * lda, a3 = a + min(3, last) * lda
        let a4 = a + min(4, last) * lda, a5 = a + min(5, last) * lda, a6 = a + min(6, last) * lda
        let a7 = a + min(7, last) * lda
        var c00 = F16x.zero, c01 = F16x.zero, c10 = F16x.zero, c11 = F16x.zero
        var c20 = F16x.zero, c21 = F16x.zero, c30 = F16x.zero, c31 = F16x.zero
        var c40 = F16x.zero, c41 = F16x.zero, c50 = F16x.zero, c51 = F16x.zero
        var c60 = F16x.zero, c61 = F16x.zero, c70 = F16x.zero, c71 = F16x.zero
        var bp = panel
        for kk in 0..<k {
            let b0 = load16(bp), b1 = load16(bp + 16)
            var x = F16x(repeating: a0[kk]); c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
            x = F16x(repeating: a1[kk]); c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
            x = F16x(repeating: a2[kk]); c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
            x = F16x(repeating: a3[kk]); c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
            x = F16x(repeating: a4[kk]); c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
            x = F16x(repeating: a5[kk]); c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
            x = F16x(repeating: a6[kk]); c60 = c60.addingProduct(x, b0); c61 = c61.addingProduct(x, b1)
            x = F16x(repeating: a7[kk]); c70 = c70.addingProduct(x, b0); c71 = c71.addingProduct(x, b1)
            bp += panelWidth
        }
        // Bias of this panel's columns, zero past `columns`.
        var bias0 = F16x.zero, bias1 = F16x.zero
        if let bias {
            if columns == panelWidth {
                bias0 = load16(bias); bias1 = load16(bias + 16)
            } else {
                for j in 0..<min(columns, 16) { bias0[j] = bias[j] }
                for j in 16..<max(columns, 16) { bias1[j - 16] = bias[j] }
            }
        }
        let relu = activation == .relu
        if rows == tileRows && columns == panelWidth {
            put(c00, c01, bias0, bias1, relu, c)
            put(c10, c11, bias0, bias1, relu, c + ldc)
            put(c20, c21, bias0, bias1, relu, c + 2 * ldc)
            put(c30, c31, bias0, bias1, relu, c + 3 * ldc)
            put(c40, c41, bias0, bias1, relu, c + 4 * ldc)
            put(c50, c51, bias0, bias1, relu, c + 5 * ldc)
            put(c60, c61, bias0, bias1, relu, c + 6 * ldc)
            put(c70, c71, bias0, bias1, relu, c + 7 * ldc)
        } else {
            putPartial(c00, c01, bias0, bias1, relu, c, columns)
            if rows > 1 { putPartial(c10, c11, bias0, bias1, relu, c + ldc, columns) }
            if rows > 2 { putPartial(c20, c21, bias0, bias1, relu, c + 2 * ldc, columns) }
            if rows > 3 { putPartial(c30, c31, bias0, bias1, relu, c + 3 * ldc, columns) }
            if rows > 4 { putPartial(c40, c41, bias0, bias1, relu, c + 4 * ldc, columns) }
            if rows > 5 { putPartial(c50, c51, bias0, bias1, relu, c + 5 * ldc, columns) }
            if rows > 6 { putPartial(c60, c61, bias0, bias1, relu, c + 6 * ldc, columns) }
            if rows > 7 { putPartial(c70, c71, bias0, bias1, relu, c + 7 * ldc, columns) }
        }
    }

    /// One row of a full tile: dst[0..<32] = relu?(acc + bias) (ReLU as the reference: NaN and −0 become 0).
    @inline(__always)
    static func put(_ v0: F16x, _ v1: F16x, _ b0: F16x, _ b1: F16x, _ relu: Bool, _ dst: UnsafeMutablePointer<Float>) {
        var y0 = v0 + b0, y1 = v1 + b1
        if relu {
            y0 = y0.replacing(with: Float(0), where: .!(y0 .> .zero))
            y1 = y1.replacing(with: Float(0), where: .!(y1 .> .zero))
        }
        store16(y0, dst); store16(y1, dst + 16)
    }

    /// One row of a tail tile: only the first `columns` floats are written.
    @inline(never)
    static func putPartial(_ v0: F16x, _ v1: F16x, _ b0: F16x, _ b1: F16x, _ relu: Bool,
                           _ dst: UnsafeMutablePointer<Float>, _ columns: Int) {
        var y0 = v0 + b0, y1 = v1 + b1
        if relu {
            y0 = y0.replacing(with: Float(0), where: .!(y0 .> .zero))
            y1 = y1.replacing(with: Float(0), where: .!(y1 .> .zero))
        }
        for j in 0..<min(columns, 16) { dst[j] = y0[j] }
        for j in 16..<max(columns, 16) { dst[j] = y1[j - 16] }
    }

    /// Packs B (with `pack`, panels split over the pool) into 64-byte-aligned scratch and runs `multiply`.
    static func withPacked(k: Int, n: Int, pool: ThreadPool,
                           pack: (Range<Int>, UnsafeMutablePointer<Float>) -> Void,
                           _ body: (UnsafePointer<Float>) -> Void) {
        let count = packedCount(k: k, n: n)
        withUnsafeTemporaryAllocation(byteCount: max(count, 1) * 4, alignment: 64) { raw in
            let out = raw.baseAddress!.bindMemory(to: Float.self, capacity: max(count, 1))
            let panels = ThreadPool.split(panelCount(n), into: k * n < (1 << 15) ? 1 : pool.threadCount)
            pool.parallelFor(panels.count) { t in pack(panels[t], out) }
            body(UnsafePointer(out))
        }
    }
}
