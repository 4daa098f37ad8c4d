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
        for i in 0..<g.m {
            for j in 0..<g.n {
                var acc: Float = 0
                for l in 0..<g.k {
                    let a = g.transA == .none ? g.a[i * g.lda + l] : g.a[l * g.lda + i]
                    let b = g.transB == .none ? g.b[l * g.ldb + j] : g.b[j * g.ldb + l]
                    acc += widen(a) * widen(b)
                }
                g.c[i * g.ldc + j] = g.accumulate ? g.c[i * g.ldc + j] + acc : acc
            }
        }
    }

    /// Y = act(bf16(X)·bf16(W)ᵀ + b); N = 1 layers stay fp32 (a GEMV: nothing for bf16 to speed up).
    static func linearForward(_ a: LinearForwardArguments, _ s: BF16Scratch, pool: ThreadPool) {
        let m = a.input.rows, k = a.input.columns, n = a.output.columns
        if n == 1 { return ReferenceDense.linearForward(a, pool: pool) }
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for l in 0..<k { acc += widen(round(a.input.row(i)[l])) * widen(round(a.weight[j * k + l])) }
                if let bias = a.bias { acc += bias[j] }
                a.output.row(i)[j] = ReferenceDense.activate(a.activation, acc)
            }
        }
    }

    /// dZ = dY ⊙ act′(Y) (fp32, written back), db = Σ dZ (fp32), dW (+)= bf16(dZ)ᵀ·bf16(X), dX = bf16(dZ)·bf16(W).
    static func linearBackward(_ a: LinearBackwardArguments, _ s: BF16Scratch, pool: ThreadPool) {
        let m = a.input.rows, k = a.input.columns, n = a.output.columns
        if n == 1 { return ReferenceDense.linearBackward(a, pool: pool) }
        for i in 0..<m {
            for j in 0..<n {
                a.gradOutput.row(i)[j] = ReferenceDense.derivative(a.activation, y: a.output.row(i)[j], dy: a.gradOutput.row(i)[j])
            }
        }
        @inline(__always) func dz(_ i: Int, _ j: Int) -> Float { widen(round(a.gradOutput.row(i)[j])) }
        for j in 0..<n {
            for l in 0..<k {
                var acc: Float = 0
                for i in 0..<m { acc += dz(i, j) * widen(round(a.input.row(i)[l])) }
                a.gradWeight[j * k + l] = a.accumulate ? a.gradWeight[j * k + l] + acc : acc
            }
            if let db = a.gradBias {
                var acc: Float = 0
                for i in 0..<m { acc += a.gradOutput.row(i)[j] }
                db[j] = a.accumulate ? db[j] + acc : acc
            }
        }
        if let gi = a.gradInput {
            for i in 0..<m {
                for l in 0..<k {
                    var acc: Float = 0
                    for j in 0..<n { acc += dz(i, j) * widen(round(a.weight[j * k + l])) }
                    gi.row(i)[l] = acc
                }
            }
        }
    }
}
