/// DLRM dot interaction, vectorised across pairs instead of within each dot product.
///
/// Per sample, the F×D block is transposed into Tt (D × F′, F′ = F rounded up to 16, zero padded); then for
/// vector i, ⟨v_i, v_j⟩ for 16 values of j at once is Σ_l v_i[l]·Tt[l][j..j+16] — D broadcast-multiply-adds
/// and no horizontal reductions. Each dot is still summed in l order with separate multiply and add, so the
/// forward equals the reference bit for bit. Samples are split across the pool.
enum OptimizedInteraction {
    static func forward(_ a: InteractionArguments, output: MatrixView, pool: ThreadPool) throws(KernelError) {
        try a.validate(output: output)
        let f = a.vectorCount, d = a.dim, fp = (f + 15) / 16 * 16
        let width = a.outputWidth
        let parts = ThreadPool.split(a.features.rows, into: a.features.rows * f * f * d < 1 << 16 ? 1 : pool.threadCount * 2)
        pool.parallelFor(parts.count) { t in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: d * fp) { tt in
                let tt = tt.baseAddress!
                for l in 0..<(d * fp) { tt[l] = 0 }
                for b in parts[t] {
                    let x = a.features.row(b), out = output.row(b)
                    for l in 0..<d { out[l] = x[l] }
                    for i in 0..<f { for l in 0..<d { tt[l * fp + i] = x[i * d + l] } }
                    var p = d
                    for i in 0..<f {
                        let count = a.includeDiagonal ? i + 1 : i
                        var c = 0
                        while c * 16 < count {
                            var acc = F16x.zero
                            for l in 0..<d { acc += F16x(repeating: x[i * d + l]) * load16(tt + l * fp + c * 16) }
                            let lanes = min(16, count - c * 16)
                            let dst = out + p + c * 16
                            if p + c * 16 + 16 <= width {
                                store16(acc, dst)  // lanes past `count` are overwritten by the next vectors
                            } else {
                                for j in 0..<lanes { dst[j] = acc[j] }
                            }
                            c += 1
                        }
                        p += count
                    }
                }
            }
        }
    }

    /// With S the symmetric F×F matrix of output gradients (S_ij = S_ji = ∂L/∂⟨v_i,v_j⟩, S_ii doubled),
    /// ∂L/∂v_i = S_i·V, plus the pass-through gradient on v_0.
    static func backward(_ a: InteractionArguments, gradOutput: MatrixView, gradFeatures: MatrixView,
                         pool: ThreadPool) throws(KernelError) {
        try a.validate(output: gradOutput)
        guard gradFeatures.rows == a.features.rows, gradFeatures.columns == a.features.columns else {
            throw .shapeMismatch("interaction gradFeatures must match features")
        }
        let f = a.vectorCount, d = a.dim, chunks = d / 16
        let parts = ThreadPool.split(a.features.rows, into: a.features.rows * f * f * d < 1 << 16 ? 1 : pool.threadCount * 2)
        pool.parallelFor(parts.count) { t in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: f * f) { sBuf in
                let s = sBuf.baseAddress!
                for b in parts[t] {
                    let x = a.features.row(b), go = gradOutput.row(b), gx = gradFeatures.row(b)
                    for l in 0..<(f * f) { s[l] = 0 }
                    var p = d
                    for i in 0..<f {
                        for j in 0..<(a.includeDiagonal ? i + 1 : i) {
                            if i == j { s[i * f + i] = 2 * go[p] } else { s[i * f + j] = go[p]; s[j * f + i] = go[p] }
                            p += 1
                        }
                    }
                    for i in 0..<f {
                        let out = gx + i * d
                        for c in 0..<chunks {
                            var acc = i == 0 ? load16(go + c * 16) : F16x.zero
                            for j in 0..<f { acc += F16x(repeating: s[i * f + j]) * load16(x + j * d + c * 16) }
                            store16(acc, out + c * 16)
                        }
                        for l in (chunks * 16)..<d {
                            var acc: Float = i == 0 ? go[l] : 0
                            for j in 0..<f { acc += s[i * f + j] * x[j * d + l] }
                            out[l] = acc
                        }
                    }
                }
            }
        }
    }
}
