import RecKitCore

/// bfloat16 kernels: SIMD conversion (16 lanes of integer arithmetic, bit-identical to `vcvtneps2bf16`), the bf16
/// GEMM on oneDNN (`BF16Runtime`), and the mixed-precision linear layer built from them. Without oneDNN the GEMM
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
    /// rows split across the pool.
    static func convertRows(_ src: UnsafePointer<Float>, stride: Int, rows: Int, cols: Int,
                            into dst: UnsafeMutablePointer<UInt16>, pool: ThreadPool) {
        let parts = ThreadPool.split(rows, into: rows * cols < 1 << 15 ? 1 : pool.threadCount)
        let s = SendablePointer(UnsafeMutablePointer(mutating: src)), d = SendablePointer(dst)
        if stride == cols {
            pool.parallelFor(parts.count) { t in
                let r = parts[t]
                toBF16(s.base + r.lowerBound * cols, d.base + r.lowerBound * cols, r.count * cols)
            }
        } else {
            pool.parallelFor(parts.count) { t in
                for i in parts[t] { toBF16(s.base + i * stride, d.base + i * cols, cols) }
            }
        }
    }

    /// The GEMM on oneDNN's threads, with this pool's idle workers asleep meanwhile.
    static func gemm(_ g: BF16GEMMArguments, pool: ThreadPool) {
        pool.withWorkersParked { gemm(g) }
    }

    static func gemm(_ g: BF16GEMMArguments) {
        if g.m == 0 || g.n == 0 { return }
        if g.k == 0 {
            if !g.accumulate { for i in 0..<g.m { (g.c + i * g.ldc).update(repeating: 0, count: g.n) } }
            return
        }
        guard BF16Runtime.isAvailable, BF16Runtime.gemm(g) == 0 else { return ReferenceBF16.gemm(g) }
    }

    static func linearForward(_ a: LinearForwardArguments, _ s: BF16Scratch, pool: ThreadPool) {
        let m = a.input.rows, k = a.input.columns, n = a.output.columns
        if m == 0 || n == 0 { return }
        if n == 1 { return OptimizedLinear.forward(a, pool: pool) }
        s.reserve(input: m * k, weight: n * k, gradOutput: m * n)
        convertRows(a.weight, stride: k, rows: n, cols: k, into: s.weight.pointer, pool: pool)
        convertRows(a.input.base, stride: a.input.rowStride, rows: m, cols: k, into: s.input.pointer, pool: pool)
        gemm(BF16GEMMArguments(transA: .none, transB: .transposed, m: m, n: n, k: k, a: s.input.pointer, lda: k,
                               b: s.weight.pointer, ldb: k, c: a.output.base, ldc: a.output.rowStride), pool: pool)
        let parts = ThreadPool.split(m, into: m * n < 1 << 14 ? 1 : pool.threadCount)
        pool.parallelFor(parts.count) { t in OptimizedLinear.epilogue(a, rows: parts[t], cols: 0..<n) }
    }

    /// Uses the bf16 X and W that `linearForward` left in `s` (same input and weights).
    static func linearBackward(_ a: LinearBackwardArguments, _ s: BF16Scratch, pool: ThreadPool) {
        let m = a.input.rows, k = a.input.columns, n = a.output.columns
        if n == 0 { return }
        if n == 1 { return OptimizedLinear.backward(a, pool: pool) }
        s.reserve(input: m * k, weight: n * k, gradOutput: m * n)
        OptimizedLinear.activationGradientAndBias(a, pool: pool)
        if m == 0 { return }
        convertRows(a.gradOutput.base, stride: a.gradOutput.rowStride, rows: m, cols: n, into: s.gradOutput.pointer, pool: pool)
        gemm(BF16GEMMArguments(transA: .transposed, transB: .none, m: n, n: k, k: m, a: s.gradOutput.pointer, lda: n,
                               b: s.input.pointer, ldb: k, accumulate: a.accumulate, c: a.gradWeight, ldc: k), pool: pool)
        guard let gi = a.gradInput else { return }
        gemm(BF16GEMMArguments(transA: .none, transB: .none, m: m, n: k, k: n, a: s.gradOutput.pointer, lda: n,
                               b: s.weight.pointer, ldb: k, c: gi.base, ldc: gi.rowStride), pool: pool)
    }
}
