import RecKitCore

/// bfloat16 kernels: SIMD conversion (16 lanes of integer arithmetic, bit-identical to `vcvtneps2bf16`), the bf16
/// GEMM on oneDNN (`BF16Runtime`), and the mixed-precision linear layer built from them. Like the fp32 GEMMs on
/// OpenBLAS, every bf16 GEMM is split by RecKit's pool and each block runs single-threaded on its thread, so
/// conversion, GEMM and epilogue of a block run back to back on one core and no second thread team exists. Without oneDNN the GEMM
/// falls back to the reference loops (correct, slow; `reckit` refuses `--precision bf16` then and says why).
enum OptimizedBF16 {
    typealias U16x = SIMD16<UInt32>

    static func toBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, _ count: Int) {
        let chunks = count / 16
        let raw = UnsafeRawPointer(src)
        for c in 0..<chunks {
            let b = raw.loadUnaligned(fromByteOffset: c * 64, as: U16x.self)
            let rounded = (b &+ (U16x(repeating: 0x7FFF) &+ ((b &>> 16) & 1))) &>> 16
            let quiet = (b &>> 16) | 0x40
            let isNaN = (b & 0x7FFF_FFFF) .> U16x(repeating: 0x7F80_0000)
            let v = rounded.replacing(with: quiet, where: isNaN)
            UnsafeMutableRawPointer(dst + c * 16).storeBytes(of: SIMD16<UInt16>(truncatingIfNeeded: v), as: SIMD16<UInt16>.self)
        }
        for i in (chunks * 16)..<count { dst[i] = ReferenceBF16.round(src[i]) }
    }

    static func fromBF16(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        let chunks = count / 16
        for c in 0..<chunks {
            let h = UnsafeRawPointer(src + c * 16).loadUnaligned(as: SIMD16<UInt16>.self)
            let w = SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16
            UnsafeMutableRawPointer(dst + c * 16).storeBytes(of: unsafeBitCast(w, to: SIMD16<Float>.self), as: SIMD16<Float>.self)
        }
        for i in (chunks * 16)..<count { dst[i] = ReferenceBF16.widen(src[i]) }
    }

    /// Converts `rows` rows of `cols` floats (source row stride `stride`) into a contiguous rows×cols bf16 matrix,
    /// on the calling thread.
    @inline(__always)
    static func convertRows(_ src: UnsafePointer<Float>, stride: Int, rows: Range<Int>, cols: Int, into dst: UnsafeMutablePointer<UInt16>) {
        if stride == cols {
            toBF16(src + rows.lowerBound * cols, dst + rows.lowerBound * cols, rows.count * cols)
        } else {
            for i in rows { toBF16(src + i * stride, dst + i * cols, cols) }
        }
    }

    /// The same, rows split across the pool.
    static func convertRows(_ src: UnsafePointer<Float>, stride: Int, rows: Int, cols: Int,
                            into dst: UnsafeMutablePointer<UInt16>, pool: ThreadPool) {
        let parts = ThreadPool.split(rows, into: rows * cols < 1 << 15 ? 1 : pool.threadCount)
        let s = SendablePointer(UnsafeMutablePointer(mutating: src)), d = SendablePointer(dst)
        pool.parallelFor(parts.count) { t in convertRows(s.base, stride: stride, rows: parts[t], cols: cols, into: d.base) }
    }

    /// One bf16 GEMM on the calling thread (oneDNN runs single-threaded in each caller; see `BF16Runtime`).
    static func gemm(_ g: BF16GEMMArguments) {
        if g.m == 0 || g.n == 0 { return }
        if g.k == 0 {
            if !g.accumulate { for i in 0..<g.m { (g.c + i * g.ldc).update(repeating: 0, count: g.n) } }
            return
        }
        guard BF16Runtime.isAvailable, BF16Runtime.gemm(g) == 0 else {
            BF16Runtime.countFallback()
            return ReferenceBF16.gemm(g)
        }
    }

    /// Row blocks for a GEMM with `m` rows: one per thread when the work is worth splitting (each block re-packs
    /// B inside oneDNN, so fewer, larger blocks win), else one.
    static func rowBlocks(_ m: Int, work: Int, _ pool: ThreadPool) -> [Range<Int>] {
        ThreadPool.split(m, into: work < OptimizedGEMM.parallelThreshold ? 1 : min(pool.threadCount, max(1, m / 16)))
    }

    /// Y = act(bf16(X)·bf16(W)ᵀ + b). W is converted once (split across the pool); then each task converts its
    /// block of X's rows, multiplies it and applies bias and activation while the block is still in cache.
    static func linearForward(_ a: LinearForwardArguments, _ s: BF16Scratch, pool: ThreadPool) {
        let m = a.input.rows, k = a.input.columns, n = a.output.columns
        if m == 0 || n == 0 { return }
        if !BF16Policy.usesBF16(inFeatures: k, outFeatures: n) { return OptimizedLinear.forward(a, pool: pool) }
        s.reserve(input: m * k, weight: n * k, gradOutput: m * n)
        convertRows(a.weight, stride: k, rows: n, cols: k, into: s.weight.pointer, pool: pool)
        let x = SendablePointer(s.input.pointer), w = SendablePointer(s.weight.pointer)
        let blocks = rowBlocks(m, work: m * n * k, pool)
        pool.parallelFor(blocks.count) { t in
            let r = blocks[t]
            convertRows(a.input.base, stride: a.input.rowStride, rows: r, cols: k, into: x.base)
            gemm(BF16GEMMArguments(transA: .none, transB: .transposed, m: r.count, n: n, k: k, a: x.base + r.lowerBound * k,
                                   lda: k, b: w.base, ldb: k, c: a.output.row(r.lowerBound), ldc: a.output.rowStride))
            OptimizedLinear.epilogue(a, rows: r, cols: 0..<n)
        }
    }

    /// Uses the bf16 X and W that `linearForward` left in `s` (same input and weights). dZ is converted once;
    /// dW (+)= bf16(dZ)ᵀ·bf16(X) is split by dW's rows, dX = bf16(dZ)·bf16(W) by dX's rows.
    static func linearBackward(_ a: LinearBackwardArguments, _ s: BF16Scratch, pool: ThreadPool) {
        let m = a.input.rows, k = a.input.columns, n = a.output.columns
        if n == 0 { return }
        if !BF16Policy.usesBF16(inFeatures: k, outFeatures: n) { return OptimizedLinear.backward(a, pool: pool) }
        s.reserve(input: m * k, weight: n * k, gradOutput: m * n)
        OptimizedLinear.activationGradientAndBias(a, pool: pool)
        if m == 0 { return }
        convertRows(a.gradOutput.base, stride: a.gradOutput.rowStride, rows: m, cols: n, into: s.gradOutput.pointer, pool: pool)
        let x = SendablePointer(s.input.pointer), w = SendablePointer(s.weight.pointer), dz = SendablePointer(s.gradOutput.pointer)
        let dwBlocks = rowBlocks(n, work: m * n * k, pool)
        pool.parallelFor(dwBlocks.count) { t in
            let r = dwBlocks[t]
            gemm(BF16GEMMArguments(transA: .transposed, transB: .none, m: r.count, n: k, k: m, a: dz.base + r.lowerBound,
                                   lda: n, b: x.base, ldb: k, accumulate: a.accumulate, c: a.gradWeight + r.lowerBound * k, ldc: k))
        }
        guard let gi = a.gradInput else { return }
        let dxBlocks = rowBlocks(m, work: m * n * k, pool)
        pool.parallelFor(dxBlocks.count) { t in
            let r = dxBlocks[t]
            gemm(BF16GEMMArguments(transA: .none, transB: .none, m: r.count, n: k, k: n, a: dz.base + r.lowerBound * n,
                                   lda: n, b: w.base, ldb: k, c: gi.row(r.lowerBound), ldc: gi.rowStride))
        }
    }
}
