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
