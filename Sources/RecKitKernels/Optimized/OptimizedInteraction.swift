/// DLRM dot interaction on the FMA units, vectorised across pairs instead of within each dot product.
///
/// Forward, per sample: the F×D block X is transposed into Tt (D × F′, F′ = F rounded up to 16, zero padded;
/// 16×16 blocks are transposed in registers when D is a multiple of 16). Row i's dots with the 16 vectors
/// j..<j+16 are then Σ_l x_i[l]·Tt[l][j..<j+16]: D fused multiply-adds with a broadcast operand and no
/// horizontal sums. Rows are taken `group` at a time, so `group` independent accumulators hide the FMA latency
/// and every Tt load serves them all. Each dot is accumulated in l order with fused multiply-adds, as the
/// reference does, so the two agree bit for bit.
///
/// Backward, per sample: S (F×F, S_ij = S_ji = ∂L/∂⟨v_i,v_j⟩, S_ii doubled with the diagonal, else 0) from the
/// output gradient, then ∂L/∂v_i = Σ_j S_ij·v_j (+ the pass-through gradient on v_0), `group` rows at a time.
///
/// Measured (standalone probe, B = 2048, F = 27, D = 16, one thread): forward 0.5–0.6 µs per sample against
/// 1.0–1.1 µs for the previous one-accumulator, scalar-transpose version.
enum OptimizedInteraction {
    /// Rows whose dot products are accumulated together (8 accumulators: FMA latency × ports on AVX-512 cores).
    static let group = 8

    static func forward(_ a: InteractionArguments, output: MatrixView, pool: ThreadPool) throws(KernelError) {
        try a.validate(output: output)
        let f = a.vectorCount, d = a.dim, fp = (f + 15) / 16 * 16
        let width = a.outputWidth, diag = a.includeDiagonal
        let parts = ThreadPool.split(a.features.rows, into: a.features.rows * f * f * d < 1 << 16 ? 1 : pool.threadCount * 2)
        pool.parallelFor(parts.count) { t in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: d * fp + group * fp) { buf in
                let tt = buf.baseAddress!, tmp = tt + d * fp
                tt.update(repeating: 0, count: d * fp)  // columns ≥ F stay zero
                for b in parts[t] {
                    let x = a.features.row(b), out = output.row(b)
                    out.update(from: x, count: d)
                    transpose(x, vectors: f, dim: d, into: tt, stride: fp)
                    var i0 = diag ? 0 : 1
                    while i0 < f {
                        let g = min(group, f - i0)
                        let widest = diag ? i0 + g : i0 + g - 1  // pairs of the group's last row
                        for c in 0..<((widest + 15) / 16) {
                            dots(rows: i0, last: f - 1, of: x, dim: d, with: tt + c * 16, stride: fp, into: tmp + c * 16, rowStride: fp)
                        }
                        for r in 0..<g {
                            let i = i0 + r, count = diag ? i + 1 : i
                            let p = d + (diag ? i * (i + 1) / 2 : i * (i - 1) / 2)
                            var c = 0
                            while c * 16 < count {
                                let dst = out + p + c * 16, src = tmp + r * fp + c * 16
                                if p + c * 16 + 16 <= width {
                                    store16(load16(src), dst)  // lanes past `count` are rewritten by the next rows
                                } else {
                                    for j in 0..<min(16, count - c * 16) { dst[j] = src[j] }
                                }
                                c += 1
                            }
                        }
                        i0 += g
                    }
                }
            }
        }
    }

    /// Tt[l][i] = X[i][l] for i < F, l < D (Tt has row stride `stride` ≥ F; columns ≥ F are left alone).
    @inline(__always)
    static func transpose(_ x: UnsafePointer<Float>, vectors f: Int, dim d: Int, into tt: UnsafeMutablePointer<Float>, stride: Int) {
        if d % 16 == 0 {
            var rb = 0
            while rb < f {
                for cb in Swift.stride(from: 0, to: d, by: 16) {
                    transpose16x16(x + rb * d + cb, rowStride: d, rows: min(16, f - rb), into: tt + cb * stride + rb, rowStride: stride)
                }
                rb += 16
            }
        } else {
            for i in 0..<f { for l in 0..<d { tt[l &* stride &+ i] = x[i &* d &+ l] } }
        }
    }

    /// For rows i0..<i0+`group` of X (indices past `last` clamped to it, so padding rows repeat the last one and
    /// store the same values): out[r][0..<16] = Σ_l X[i0+r][l]·T[l][0..<16], fused multiply-adds in l order.
    @inline(__always)
    static func dots(rows i0: Int, last: Int, of x: UnsafePointer<Float>, dim d: Int, with t: UnsafePointer<Float>,
                     stride: Int, into out: UnsafeMutablePointer<Float>, rowStride os: Int) {
        let a = combine8(rows: i0, last: last, coefficients: x, stride: d, vectors: t, stride: stride, count: d, first: .zero)
        store16(a.0, out); store16(a.1, out + os); store16(a.2, out + 2 * os); store16(a.3, out + 3 * os)
        store16(a.4, out + 4 * os); store16(a.5, out + 5 * os); store16(a.6, out + 6 * os); store16(a.7, out + 7 * os)
    }

    /// The kernel both directions share: for coefficient rows c_r = C[min(r0 + r, last)], r < 8,
    /// acc_r = (r == 0 ? first : 0) + Σ_{q < count} c_r[q]·V[q][0..<16], fused multiply-adds in q order — eight
    /// independent accumulators, each V row loaded once for all eight.
    @inline(__always)
    static func combine8(rows r0: Int, last: Int, coefficients c: UnsafePointer<Float>, stride cs: Int,
                         vectors v: UnsafePointer<Float>, stride vs: Int, count: Int, first: F16x)
        -> (F16x, F16x, F16x, F16x, F16x, F16x, F16x, F16x) {
        let c0 = c + r0 * cs, c1 = c + min(r0 + 1, last) * cs, c2 = c + min(r0 + 2, last) * cs, c3 = c + min(r0 + 3, last) * cs
        let c4 = c + min(r0 + 4, last) * cs, c5 = c + min(r0 + 5, last) * cs, c6 = c + min(r0 + 6, last) * cs, c7 = c + min(r0 + 7, last) * cs
        var a0 = first, a1 = F16x.zero, a2 = F16x.zero, a3 = F16x.zero
        var a4 = F16x.zero, a5 = F16x.zero, a6 = F16x.zero, a7 = F16x.zero
        for q in 0..<count {
            let u = load16(v + q &* vs)
            a0 = a0.addingProduct(F16x(repeating: c0[q]), u); a1 = a1.addingProduct(F16x(repeating: c1[q]), u)
            a2 = a2.addingProduct(F16x(repeating: c2[q]), u); a3 = a3.addingProduct(F16x(repeating: c3[q]), u)
            a4 = a4.addingProduct(F16x(repeating: c4[q]), u); a5 = a5.addingProduct(F16x(repeating: c5[q]), u)
            a6 = a6.addingProduct(F16x(repeating: c6[q]), u); a7 = a7.addingProduct(F16x(repeating: c7[q]), u)
        }
        return (a0, a1, a2, a3, a4, a5, a6, a7)
    }

    static func backward(_ a: InteractionArguments, gradOutput: MatrixView, gradFeatures: MatrixView,
                         pool: ThreadPool) throws(KernelError) {
        try a.validate(output: gradOutput)
        guard gradFeatures.rows == a.features.rows, gradFeatures.columns == a.features.columns else {
            throw .shapeMismatch("interaction gradFeatures must match features")
        }
        let f = a.vectorCount, d = a.dim, chunks = d / 16, diag = a.includeDiagonal
        let parts = ThreadPool.split(a.features.rows, into: a.features.rows * f * f * d < 1 << 16 ? 1 : pool.threadCount * 2)
        pool.parallelFor(parts.count) { t in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: f * f) { sBuf in
                let s = sBuf.baseAddress!
                for b in parts[t] {
                    let x = a.features.row(b), go = gradOutput.row(b), gx = gradFeatures.row(b)
                    var p = d
                    for i in 0..<f {
                        for j in 0..<i {
                            let g = go[p]
                            s[i &* f &+ j] = g
                            s[j &* f &+ i] = g
                            p &+= 1
                        }
                        if diag { s[i &* f &+ i] = 2 * go[p]; p &+= 1 } else { s[i &* f &+ i] = 0 }
                    }
                    var i0 = 0
                    while i0 < f {
                        for c in 0..<chunks {
                            gradRows(i0, last: f - 1, s: s, f: f, x: x + c * 16, dim: d,
                                     first: i0 == 0 ? load16(go + c * 16) : .zero, into: gx + c * 16)
                        }
                        for i in i0..<min(i0 + group, f) {
                            for l in (chunks * 16)..<d {
                                var acc: Float = i == 0 ? go[l] : 0
                                for j in 0..<f { acc += s[i &* f &+ j] * x[j &* d &+ l] }
                                gx[i &* d &+ l] = acc
                            }
                        }
                        i0 += group
                    }
                }
            }
        }
    }

    /// gx[i][0..<16] = first (row i0 only) + Σ_j S[i][j]·x[j][0..<16] for rows i0..<i0+`group` (clamped to `last`;
    /// clamped rows recompute and rewrite the last row's same values).
    @inline(__always)
    static func gradRows(_ i0: Int, last: Int, s: UnsafePointer<Float>, f: Int, x: UnsafePointer<Float>, dim d: Int,
                         first: F16x, into gx: UnsafeMutablePointer<Float>) {
        let a = combine8(rows: i0, last: last, coefficients: s, stride: f, vectors: x, stride: d, count: f, first: first)
        let r1 = min(i0 + 1, last), r2 = min(i0 + 2, last), r3 = min(i0 + 3, last)
        let r4 = min(i0 + 4, last), r5 = min(i0 + 5, last), r6 = min(i0 + 6, last), r7 = min(i0 + 7, last)
        // Last to first: when F = 1 every row is row 0, and a.0 (the only one carrying `first`) must land last.
        store16(a.7, gx + r7 * d); store16(a.6, gx + r6 * d); store16(a.5, gx + r5 * d); store16(a.4, gx + r4 * d)
        store16(a.3, gx + r3 * d); store16(a.2, gx + r2 * d); store16(a.1, gx + r1 * d); store16(a.0, gx + i0 * d)
    }
}
