// Small SIMD building blocks for the optimized kernels. SIMD16<Float> is one AVX-512 register when the
// package is built with `-target-cpu` (scripts/build.sh); on baseline x86-64 it is four SSE registers.

typealias F16x = SIMD16<Float>

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> F16x {
    UnsafeRawPointer(p).loadUnaligned(as: F16x.self)
}
@inline(__always) func load16(_ p: UnsafeMutablePointer<Float>) -> F16x {
    UnsafeRawPointer(p).loadUnaligned(as: F16x.self)
}
@inline(__always) func store16(_ v: F16x, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16x.self)
}

/// e^x for 16 lanes: Cephes-style range reduction x = n·ln2 + r, |r| ≤ ln2/2, degree-6 polynomial for e^r,
/// scaled by 2^n through the exponent bits. Max relative error ≈ 2 ulp on [-87.3, 88]; saturates to 0 / +inf
/// outside (like expf), NaN in → NaN out.
@inline(__always) func simdExp(_ x: F16x) -> F16x {
    let hi = F16x(repeating: 88.0)
    let lo = F16x(repeating: -87.33654)
    var v = x.replacing(with: hi, where: x .> hi)
    v = v.replacing(with: lo, where: v .< lo)
    v = v.replacing(with: Float(0), where: v .!= v)  // NaN lanes: keep the Int32 conversion defined
    let n = (v * F16x(repeating: 1.442_695_04)).rounded(.toNearestOrEven)
    var r = v - n * F16x(repeating: 0.693_359_375)
    r = r - n * F16x(repeating: -2.121_944_40e-4)
    var p = F16x(repeating: 1.987_569_15e-4)
    p = p * r + F16x(repeating: 1.398_199_95e-3)
    p = p * r + F16x(repeating: 8.333_451_9e-3)
    p = p * r + F16x(repeating: 4.166_579_6e-2)
    p = p * r + F16x(repeating: 1.666_666_5e-1)
    p = p * r + F16x(repeating: 5.000_000_1e-1)
    p = p * r * r + r + F16x(repeating: 1)
    let bits = (SIMD16<Int32>(n) &+ 127) &<< 23
    var result = p * unsafeBitCast(bits, to: F16x.self)
    result = result.replacing(with: Float(0), where: x .< lo)
    result = result.replacing(with: F16x(repeating: .infinity), where: x .> hi)
    return result.replacing(with: x, where: x .!= x)
}

/// Lane mask for the first `count` (< 16) lanes.
@inline(__always) func headMask(_ count: Int) -> SIMDMask<SIMD16<Int32>> {
    SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .< SIMD16<Int32>(repeating: Int32(count))
}

/// dst[c·dstStride + r] = src[r·srcStride + c] for r < 16, c < 16, with source rows r ≥ `rows` read as zeros.
///
/// Four rounds of pairwise de-interleaving (`evenHalf`/`oddHalf` of two registers, one `vpermt2ps` each on
/// AVX-512): a round maps element (row r₃r₂r₁r₀, column c₃c₂c₁c₀) to (r₂r₁r₀c₀, r₃c₃c₂c₁), so four rounds
/// bit-reverse both indices and swap them. Loading source row bitrev(s) into slot s and storing slot bitrev(c)
/// as output row c leaves the plain transpose: 64 shuffles instead of 256 scalar moves.
@inline(__always) func transpose16x16(_ src: UnsafePointer<Float>, rowStride srcStride: Int, rows: Int,
                                     into dst: UnsafeMutablePointer<Float>, rowStride dstStride: Int) {
    @inline(__always) func row(_ r: Int) -> F16x { r < rows ? load16(src + r &* srcStride) : .zero }
    let a0 = row(0), a1 = row(8), a2 = row(4), a3 = row(12)
    let a4 = row(2), a5 = row(10), a6 = row(6), a7 = row(14)
    let a8 = row(1), a9 = row(9), a10 = row(5), a11 = row(13)
    let a12 = row(3), a13 = row(11), a14 = row(7), a15 = row(15)
    let b0b1 = SIMD32<Float>(lowHalf: a0, highHalf: a8)
    let b0 = b0b1.evenHalf, b1 = b0b1.oddHalf
    let b2b3 = SIMD32<Float>(lowHalf: a1, highHalf: a9)
    let b2 = b2b3.evenHalf, b3 = b2b3.oddHalf
    let b4b5 = SIMD32<Float>(lowHalf: a2, highHalf: a10)
    let b4 = b4b5.evenHalf, b5 = b4b5.oddHalf
    let b6b7 = SIMD32<Float>(lowHalf: a3, highHalf: a11)
    let b6 = b6b7.evenHalf, b7 = b6b7.oddHalf
    let b8b9 = SIMD32<Float>(lowHalf: a4, highHalf: a12)
    let b8 = b8b9.evenHalf, b9 = b8b9.oddHalf
    let b10b11 = SIMD32<Float>(lowHalf: a5, highHalf: a13)
    let b10 = b10b11.evenHalf, b11 = b10b11.oddHalf
    let b12b13 = SIMD32<Float>(lowHalf: a6, highHalf: a14)
    let b12 = b12b13.evenHalf, b13 = b12b13.oddHalf
    let b14b15 = SIMD32<Float>(lowHalf: a7, highHalf: a15)
    let b14 = b14b15.evenHalf, b15 = b14b15.oddHalf
    let c0c1 = SIMD32<Float>(lowHalf: b0, highHalf: b8)
    let c0 = c0c1.evenHalf, c1 = c0c1.oddHalf
    let c2c3 = SIMD32<Float>(lowHalf: b1, highHalf: b9)
    let c2 = c2c3.evenHalf, c3 = c2c3.oddHalf
    let c4c5 = SIMD32<Float>(lowHalf: b2, highHalf: b10)
    let c4 = c4c5.evenHalf, c5 = c4c5.oddHalf
    let c6c7 = SIMD32<Float>(lowHalf: b3, highHalf: b11)
    let c6 = c6c7.evenHalf, c7 = c6c7.oddHalf
    let c8c9 = SIMD32<Float>(lowHalf: b4, highHalf: b12)
    let c8 = c8c9.evenHalf, c9 = c8c9.oddHalf
    let c10c11 = SIMD32<Float>(lowHalf: b5, highHalf: b13)
    let c10 = c10c11.evenHalf, c11 = c10c11.oddHalf
    let c12c13 = SIMD32<Float>(lowHalf: b6, highHalf: b14)
    let c12 = c12c13.evenHalf, c13 = c12c13.oddHalf
    let c14c15 = SIMD32<Float>(lowHalf: b7, highHalf: b15)
    let c14 = c14c15.evenHalf, c15 = c14c15.oddHalf
    let d0d1 = SIMD32<Float>(lowHalf: c0, highHalf: c8)
    let d0 = d0d1.evenHalf, d1 = d0d1.oddHalf
    let d2d3 = SIMD32<Float>(lowHalf: c1, highHalf: c9)
    let d2 = d2d3.evenHalf, d3 = d2d3.oddHalf
    let d4d5 = SIMD32<Float>(lowHalf: c2, highHalf: c10)
    let d4 = d4d5.evenHalf, d5 = d4d5.oddHalf
    let d6d7 = SIMD32<Float>(lowHalf: c3, highHalf: c11)
    let d6 = d6d7.evenHalf, d7 = d6d7.oddHalf
    let d8d9 = SIMD32<Float>(lowHalf: c4, highHalf: c12)
    let d8 = d8d9.evenHalf, d9 = d8d9.oddHalf
    let d10d11 = SIMD32<Float>(lowHalf: c5, highHalf: c13)
    let d10 = d10d11.evenHalf, d11 = d10d11.oddHalf
    let d12d13 = SIMD32<Float>(lowHalf: c6, highHalf: c14)
    let d12 = d12d13.evenHalf, d13 = d12d13.oddHalf
    let d14d15 = SIMD32<Float>(lowHalf: c7, highHalf: c15)
    let d14 = d14d15.evenHalf, d15 = d14d15.oddHalf
    let e0e1 = SIMD32<Float>(lowHalf: d0, highHalf: d8)
    let e0 = e0e1.evenHalf, e1 = e0e1.oddHalf
    let e2e3 = SIMD32<Float>(lowHalf: d1, highHalf: d9)
    let e2 = e2e3.evenHalf, e3 = e2e3.oddHalf
    let e4e5 = SIMD32<Float>(lowHalf: d2, highHalf: d10)
    let e4 = e4e5.evenHalf, e5 = e4e5.oddHalf
    let e6e7 = SIMD32<Float>(lowHalf: d3, highHalf: d11)
    let e6 = e6e7.evenHalf, e7 = e6e7.oddHalf
    let e8e9 = SIMD32<Float>(lowHalf: d4, highHalf: d12)
    let e8 = e8e9.evenHalf, e9 = e8e9.oddHalf
    let e10e11 = SIMD32<Float>(lowHalf: d5, highHalf: d13)
    let e10 = e10e11.evenHalf, e11 = e10e11.oddHalf
    let e12e13 = SIMD32<Float>(lowHalf: d6, highHalf: d14)
    let e12 = e12e13.evenHalf, e13 = e12e13.oddHalf
    let e14e15 = SIMD32<Float>(lowHalf: d7, highHalf: d15)
    let e14 = e14e15.evenHalf, e15 = e14e15.oddHalf
    store16(e0, dst + 0 &* dstStride)
    store16(e8, dst + 1 &* dstStride)
    store16(e4, dst + 2 &* dstStride)
    store16(e12, dst + 3 &* dstStride)
    store16(e2, dst + 4 &* dstStride)
    store16(e10, dst + 5 &* dstStride)
    store16(e6, dst + 6 &* dstStride)
    store16(e14, dst + 7 &* dstStride)
    store16(e1, dst + 8 &* dstStride)
    store16(e9, dst + 9 &* dstStride)
    store16(e5, dst + 10 &* dstStride)
    store16(e13, dst + 11 &* dstStride)
    store16(e3, dst + 12 &* dstStride)
    store16(e11, dst + 13 &* dstStride)
    store16(e7, dst + 14 &* dstStride)
    store16(e15, dst + 15 &* dstStride)
}
