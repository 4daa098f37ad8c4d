import RecKitCore

/// Plain-loop definitions of the bfloat16 kernels: conversion (round-to-nearest-even, NaN kept quiet), the bf16
/// GEMM with fp32 accumulation, and the mixed-precision linear layer (inputs of every GEMM rounded to bf16, the rest
/// fp32). The optimized variants must match these up to fp32 summation order.
enum ReferenceBF16 {
    /// bf16 bits of `x`: the upper 16 bits after rounding to nearest, ties to even; NaN → quiet NaN.
    @inline(__always) static func round(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if b & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: b >> 16) | 0x0040 }
        let bias: UInt32 = 0x7FFF + ((b >> 16) & 1)
        return UInt16(truncatingIfNeeded: (b &+ bias) >> 16)
    }

    @inline(__always) static func widen(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    static func toBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, _ count: Int) {
        for i in 0..<count { dst[i] = round(src[i]) }
    }

    static func fromBF16(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { dst[i] = widen(src[i]) }
    }

    static func gemm(_ g: BF16GEMMArguments) {
        ReferenceDense.products(m: g.m, n: g.n, k: g.k, transA: g.transA, lda: g.lda, transB: g.transB, ldb: g.ldb,
                                a: { widen(g.a[$0]) }, b: { widen(g.b[$0]) }) { i, j, acc in
            g.c[i * g.ldc + j] = g.accumulate ? g.c[i * g.ldc + j] + acc : acc
        }
    }

    /// x rounded to bf16 and widened back: what a bf16 GEMM multiplies.
    @inline(__always) static func rounded(_ x: Float) -> Float { widen(round(x)) }

    /// Y = act(bf16(X)·bf16(W)ᵀ + b); layers narrower than `BF16Policy.minWidth` stay fp32.
    static func linearForward(_ a: LinearForwardArguments, _ s: BF16Scratch, pool: ThreadPool) {
        if !BF16Policy.usesBF16(inFeatures: a.input.columns, outFeatures: a.output.columns) { return ReferenceDense.linearForward(a, pool: pool) }
        ReferenceDense.linearForward(a, pool: pool, operand: rounded)
    }

    /// dZ = dY ⊙ act′(Y) (fp32, written back), db = Σ dZ (fp32), dW (+)= bf16(dZ)ᵀ·bf16(X), dX = bf16(dZ)·bf16(W).
    static func linearBackward(_ a: LinearBackwardArguments, _ s: BF16Scratch, pool: ThreadPool) {
        if !BF16Policy.usesBF16(inFeatures: a.input.columns, outFeatures: a.output.columns) { return ReferenceDense.linearBackward(a, pool: pool) }
        ReferenceDense.linearBackward(a, pool: pool, operand: rounded)
    }
}
