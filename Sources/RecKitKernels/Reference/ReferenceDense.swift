#if canImport(Glibc)
import Glibc
#endif

/// Plain-loop twins of the dense kernels (GEMM, linear layer, activations, loss): the definitions.
enum ReferenceDense {
    /// C ← alpha·op(A)·op(B) + beta·C with a k-ordered Float accumulation; beta = 0 ignores C.
    static func gemm(_ g: GEMMArguments, pool: ThreadPool) {
        products(m: g.m, n: g.n, k: g.k, transA: g.transA, lda: g.lda, transB: g.transB, ldb: g.ldb,
                 a: { g.a[$0] }, b: { g.b[$0] }) { i, j, acc in
            let c = g.c + i * g.ldc + j
            c.pointee = g.beta == 0 ? g.alpha * acc : g.alpha * acc + g.beta * c.pointee
        }
    }

    /// The GEMM definition shared by the fp32 and bf16 twins: for every (i, j), Σ_l op(A)[i, l]·op(B)[l, j] summed
    /// in l order and handed to `store`. `a` and `b` read (and widen) the element at a flat index of A and B.
    static func products(m: Int, n: Int, k: Int, transA: Transpose, lda: Int, transB: Transpose, ldb: Int,
                         a: (Int) -> Float, b: (Int) -> Float, store: (Int, Int, Float) -> Void) {
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for l in 0..<k {
                    acc += a(transA == .none ? i * lda + l : l * lda + i) * b(transB == .none ? l * ldb + j : j * ldb + l)
                }
                store(i, j, acc)
            }
        }
    }

    /// Y = act(X·Wᵀ + b). `operand` maps every GEMM input element before it is multiplied: the identity here,
    /// bf16 rounding for the mixed-precision twin (`ReferenceBF16`).
    static func linearForward(_ a: LinearForwardArguments, pool: ThreadPool, operand q: (Float) -> Float = { $0 }) {
        let m = a.input.rows, k = a.input.columns, n = a.output.columns
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for l in 0..<k { acc += q(a.input.row(i)[l]) * q(a.weight[j * k + l]) }
                if let bias = a.bias { acc += bias[j] }
                a.output.row(i)[j] = activate(a.activation, acc)
            }
        }
    }

    /// dZ = dY ⊙ act′(Y) (written back), db (+)= Σ dZ, dW (+)= q(dZ)ᵀ·q(X), dX = q(dZ)·q(W), with `operand` q as in
    /// `linearForward` (db always from the unmapped dZ).
    static func linearBackward(_ a: LinearBackwardArguments, pool: ThreadPool, operand q: (Float) -> Float = { $0 }) {
        let m = a.input.rows, k = a.input.columns, n = a.output.columns
        for i in 0..<m {
            for j in 0..<n {
                let dz = derivative(a.activation, y: a.output.row(i)[j], dy: a.gradOutput.row(i)[j])
                a.gradOutput.row(i)[j] = dz
            }
        }
        for j in 0..<n {
            for l in 0..<k {
                var acc: Float = 0
                for i in 0..<m { acc += q(a.gradOutput.row(i)[j]) * q(a.input.row(i)[l]) }
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
                    for j in 0..<n { acc += q(a.gradOutput.row(i)[j]) * q(a.weight[j * k + l]) }
                    gi.row(i)[l] = acc
                }
            }
        }
    }

    static func activationForward(_ act: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                  _ count: Int) {
        for i in 0..<count { y[i] = activate(act, x[i]) }
    }

    static func activationBackward(_ act: Activation, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                   _ dx: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { dx[i] = derivative(act, y: y[i], dy: dy[i]) }
    }

    /// Σ_i [max(z,0) − z·y + log(1 + e^(−|z|))]; grad_i = gradScale·(σ(z_i) − y_i).
    static func bceWithLogits(_ z: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ count: Int,
                              _ grad: UnsafeMutablePointer<Float>?, _ gradScale: Float) -> Double {
        var total = 0.0
        for i in 0..<count {
            let e = expf(-abs(z[i]))
            total += Double(max(z[i], 0) - z[i] * y[i] + log1pf(e))
            if let grad {
                let s = z[i] >= 0 ? 1 / (1 + e) : e / (1 + e)
                grad[i] = gradScale * (s - y[i])
            }
        }
        return total
    }

    @inline(__always) static func activate(_ act: Activation, _ x: Float) -> Float {
        switch act {
        case .identity: return x
        case .relu: return x > 0 ? x : 0
        case .sigmoid:
            let e = expf(-abs(x))
            return x >= 0 ? 1 / (1 + e) : e / (1 + e)
        }
    }

    /// dL/dz from the activation's output y and dL/dy.
    @inline(__always) static func derivative(_ act: Activation, y: Float, dy: Float) -> Float {
        switch act {
        case .identity: return dy
        case .relu: return y > 0 ? dy : 0
        case .sigmoid: return dy * y * (1 - y)
        }
    }
}
