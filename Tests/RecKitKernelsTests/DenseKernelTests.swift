import RecKitCore
@testable import RecKitKernels
import RecKitTestSupport
import Testing

/// A linear-layer problem with its buffers: X (M×K, stored with extra stride), W (N×K), b (N).
struct LinearCase {
    var m: Int, k: Int, n: Int
    var x: AlignedBuffer<Float>, w: AlignedBuffer<Float>, b: AlignedBuffer<Float>
    let xStride: Int

    init(seed: UInt64, m: Int, k: Int, n: Int) {
        var d = TestData(seed: seed)
        self.m = m; self.k = k; self.n = n
        xStride = k + 3
        x = d.buffer(max(m, 1) * xStride)
        w = d.buffer(n * k, -0.5, 0.5)
        b = d.buffer(n)
    }

    var input: MatrixView { MatrixView(base: x.pointer, rows: m, columns: k, rowStride: xStride) }

    /// Forward into a strided output (stride n + 5, sentinel elsewhere); returns (Y, sentinel intact).
    func forward(_ v: KernelVariant, _ act: Activation, pool: ThreadPool, bias: Bool = true) -> ([Float], Bool, AlignedBuffer<Float>) {
        let stride = n + 5
        let y = AlignedBuffer<Float>(count: max(m, 1) * stride)
        y.fill(-555)
        KernelRegistry.linearForward.variant(v)(LinearForwardArguments(
            input: input, weight: w.pointer, bias: bias ? b.pointer : nil,
            output: MatrixView(base: y.pointer, rows: m, columns: n, rowStride: stride), activation: act), pool)
        var out: [Float] = [], intact = true
        for i in 0..<m { for j in 0..<stride { if j < n { out.append(y.pointer[i * stride + j]) } else if y.pointer[i * stride + j] != -555 { intact = false } } }
        return (out, intact, y)
    }
}

@Suite("Dense kernels: GEMM, linear, activations, loss")
struct DenseKernelTests {
    static let pool2 = ThreadPool(threads: 2)

    @Test("GEMM matches the reference for all transposes, beta and partitioning shapes")
    func gemm() {
        let shapes = [(1, 1, 1), (3, 5, 0), (0, 4, 4), (17, 33, 5), (128, 64, 37), (300, 9, 40), (8, 600, 30), (130, 130, 130)]
        var d = TestData(seed: 11)
        for (m, n, k) in shapes {
            for ta in [Transpose.none, .transposed] {
                for tb in [Transpose.none, .transposed] {
                    for beta: Float in [0, 1] {
                        let a = d.buffer(max(m * k, 1)), b = d.buffer(max(k * n, 1)), c0 = d.floats(max(m * n, 1))
                        var results: [[Float]] = []
                        for (v, pool) in [(KernelVariant.reference, Self.pool2), (.optimized, ThreadPool(threads: 1)), (.optimized, Self.pool2)] {
                            let c = AlignedBuffer(c0)
                            KernelRegistry.gemm.variant(v)(GEMMArguments(
                                transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5,
                                a: a.pointer, lda: max(ta == .none ? k : m, 1), b: b.pointer, ldb: max(tb == .none ? n : k, 1),
                                beta: beta, c: c.pointer, ldc: max(n, 1)), pool)
                            results.append(c.toArray())
                        }
                        assertClose(results[1], results[0], .blas(k: k), "gemm \(m)x\(n)x\(k) \(ta)\(tb) β=\(beta) t1")
                        assertClose(results[2], results[0], .blas(k: k), "gemm \(m)x\(n)x\(k) \(ta)\(tb) β=\(beta) t2")
                    }
                }
            }
        }
    }

    @Test("GEMM rejects leading dimensions smaller than the shapes")
    func gemmValidation() {
        let a = AlignedBuffer<Float>(count: 16)
        let args = GEMMArguments(m: 2, n: 2, k: 4, a: a.pointer, lda: 3, b: a.pointer, ldb: 2, c: a.pointer, ldc: 2)
        #expect(throws: KernelError.shapeMismatch("GEMM lda=3 < 4")) { try Kernels.gemm(args, pool: Self.pool2) }
    }

    @Test("linear forward: fused bias + activation and the N=1 path match the reference",
          arguments: [(1, 1, 1), (0, 5, 3), (3, 13, 16), (130, 13, 17), (64, 33, 1), (257, 256, 1), (5, 40, 300), (200, 367, 64),
                      (16, 367, 512), (17, 64, 9), (32, 7, 15), (33, 16, 8),
                      // the small-batch path: K = 16 exactly, K mod 16 ≠ 0, M and N not multiples of 4, M = 32
                      (1, 16, 2), (2, 17, 5), (3, 31, 7), (4, 16, 4), (32, 33, 130),
                      // the packed micro-kernel (M ≥ 64): one whole panel, a short last tile and a partial panel,
                      // K = 1, N = 16 (half a panel), N = 2, a row block boundary (M > 128)
                      (64, 16, 32), (71, 40, 33), (66, 1, 47), (100, 70, 16), (64, 5, 2), (137, 37, 95)])
    func linearForward(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        let c = LinearCase(seed: UInt64(m * 7 + k * 3 + n), m: m, k: k, n: n)
        for act in Activation.allCases {
            for bias in [true, false] {
                let ref = c.forward(.reference, act, pool: Self.pool2, bias: bias)
                for pool in [ThreadPool(threads: 1), Self.pool2] {
                    let opt = c.forward(.optimized, act, pool: pool, bias: bias)
                    #expect(opt.1, "wrote outside the output columns")
                    let tol = Tolerance(rtol: Tolerance.blas(k: k).rtol + Tolerance.simdExp.rtol, atol: Tolerance.blas(k: k).atol,
                                        reason: "BLAS + SIMD exp")
                    assertClose(opt.0, ref.0, tol, "linear \(m)x\(k)→\(n) \(act) bias=\(bias)")
                }
            }
        }
    }

    @Test("linear backward matches the reference (accumulate, no gradInput, N=1)",
          arguments: [(1, 1, 1), (3, 13, 16), (130, 13, 17), (64, 33, 1), (200, 367, 64), (9, 5, 300),
                      // the packed input gradient (M ≥ 64): partial panel of dX columns, short last tile, N = 2
                      (71, 40, 33), (64, 16, 2), (137, 95, 20)])
    func linearBackward(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        let c = LinearCase(seed: UInt64(m + k + n), m: m, k: k, n: n)
        var d = TestData(seed: 99)
        let gy0 = d.floats(m * n), gw0 = d.floats(n * k), gb0 = d.floats(n)
        for act in Activation.allCases {
            let y = c.forward(.reference, act, pool: Self.pool2).2
            for accumulate in [false, true] {
                for withInput in [true, false] {
                    var outs: [[Float]] = []
                    for (v, pool) in [(KernelVariant.reference, Self.pool2), (.optimized, Self.pool2), (.optimized, ThreadPool(threads: 1))] {
                        let gy = AlignedBuffer(gy0), gw = AlignedBuffer(gw0), gb = AlignedBuffer(gb0)
                        let gx = AlignedBuffer<Float>(count: max(m * k, 1))
                        KernelRegistry.linearBackward.variant(v)(LinearBackwardArguments(
                            input: c.input, weight: c.w.pointer,
                            output: MatrixView(base: y.pointer, rows: m, columns: n, rowStride: n + 5),
                            gradOutput: MatrixView(base: gy.pointer, rows: m, columns: n),
                            gradInput: withInput ? MatrixView(base: gx.pointer, rows: m, columns: k) : nil,
                            gradWeight: gw.pointer, gradBias: gb.pointer, activation: act, accumulate: accumulate), pool)
                        outs.append(gy.toArray() + gw.toArray() + gb.toArray() + (withInput ? gx.toArray() : []))
                    }
                    let tol = Tolerance.blas(k: max(m, n))
                    assertClose(outs[1], outs[0], tol, "backward \(m)x\(k)→\(n) \(act) acc=\(accumulate) t2")
                    assertClose(outs[2], outs[0], tol, "backward \(m)x\(k)→\(n) \(act) acc=\(accumulate) t1")
                }
            }
        }
    }

    @Test("linear backward equals finite differences of L = Σ r ⊙ act(XWᵀ + b)", arguments: Activation.allCases)
    func linearFiniteDifferences(act: Activation) {
        let c = LinearCase(seed: 4, m: 6, k: 7, n: 5)
        var d = TestData(seed: 8)
        let r = d.floats(c.m * c.n)
        let loss: () -> Double = {
            zip(c.forward(.optimized, act, pool: Self.pool2).0, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        // h = 1e-3 moves a pre-activation by < 1e-3, too little to cross ReLU's kink for this seed's values.
        let y = c.forward(.optimized, act, pool: Self.pool2).2
        let gy = AlignedBuffer(r), gw = AlignedBuffer<Float>(count: c.n * c.k), gb = AlignedBuffer<Float>(count: c.n)
        let gx = AlignedBuffer<Float>(count: c.m * c.k)
        KernelRegistry.linearBackward.optimized(LinearBackwardArguments(
            input: c.input, weight: c.w.pointer, output: MatrixView(base: y.pointer, rows: c.m, columns: c.n, rowStride: c.n + 5),
            gradOutput: MatrixView(base: gy.pointer, rows: c.m, columns: c.n),
            gradInput: MatrixView(base: gx.pointer, rows: c.m, columns: c.k), gradWeight: gw.pointer, gradBias: gb.pointer,
            activation: act), Self.pool2)
        let h: Float = act == .relu ? 1e-3 : 1e-2
        let nw = (0..<(c.n * c.k)).map { Float(finiteDifference(c.w.pointer, $0, h: h, loss)) }
        let nb = (0..<c.n).map { Float(finiteDifference(c.b.pointer, $0, h: h, loss)) }
        let nx = (0..<c.m).flatMap { i in (0..<c.k).map { Float(finiteDifference(c.x.pointer, i * c.xStride + $0, h: h, loss)) } }
        assertClose(gw.toArray(), nw, .finiteDifference, "dW \(act)")
        assertClose(gb.toArray(), nb, .finiteDifference, "db \(act)")
        assertClose(gx.toArray(), nx, .finiteDifference, "dX \(act)")
    }

    @Test("activations: SIMD vs reference at sizes around the SIMD width, in place", arguments: [0, 1, 15, 16, 17, 33, 100])
    func activations(count: Int) {
        var d = TestData(seed: UInt64(count))
        var x = d.floats(count, -30, 30)
        if count > 3 { x[0] = 0; x[1] = -100; x[2] = 100; x[3] = -0.0 }
        let dy = d.floats(count)
        for act in Activation.allCases {
            let yr = AlignedBuffer<Float>(count: count), dxr = AlignedBuffer<Float>(count: count)
            KernelRegistry.activationForward.reference(act, x, yr.pointer, count)
            KernelRegistry.activationBackward.reference(act, yr.pointer, dy, dxr.pointer, count)
            let inPlace = AlignedBuffer(x)
            KernelRegistry.activationForward.optimized(act, inPlace.pointer, inPlace.pointer, count)
            let g = AlignedBuffer(dy)
            KernelRegistry.activationBackward.optimized(act, inPlace.pointer, g.pointer, g.pointer, count)
            let tol: Tolerance = act == .sigmoid ? .simdExp : .exact
            assertClose(inPlace.toArray(), yr.toArray(), tol, "\(act) forward")
            assertClose(g.toArray(), dxr.toArray(), tol, "\(act) backward")
            #expect(inPlace.toArray().allSatisfy { $0.isFinite })
        }
    }

    @Test("BCE with logits: stable at ±100, SIMD matches reference, gradient matches finite differences",
          arguments: [1, 16, 17, 50])
    func bce(count: Int) {
        var d = TestData(seed: 5)
        var z = d.floats(count, -8, 8)
        if count >= 16 { z[0] = 100; z[1] = -100; z[2] = 0 }
        let y = (0..<count).map { _ in Float(d.rng.nextBelow(2)) }
        let gr = AlignedBuffer<Float>(count: count), go = AlignedBuffer<Float>(count: count)
        let lr = KernelRegistry.bceWithLogits.reference(z, y, count, gr.pointer, 1 / Float(count))
        let lo = KernelRegistry.bceWithLogits.optimized(z, y, count, go.pointer, 1 / Float(count))
        #expect(lr.isFinite && lo.isFinite)
        assertClose(lo, lr, .simdExp, "loss")
        assertClose(go.toArray(), gr.toArray(), .simdExp, "grad")
        let zb = AlignedBuffer(z)
        let numeric = (0..<count).map { i in
            Float(finiteDifference(zb.pointer, i, h: 1e-2) {
                KernelRegistry.bceWithLogits.reference(zb.pointer, y, count, nil, 0) / Double(count)
            })
        }
        assertClose(go.toArray(), numeric, .finiteDifference, "BCE gradient")
    }

    @Test("SIMD exp agrees with libm over the whole float range")
    func simdExpAccuracy() {
        var worst: Double = 0
        var x: Float = -87
        while x < 87.7 {
            var v = F16x.zero
            for l in 0..<16 { v[l] = x + Float(l) * 0.0137 }
            let e = simdExp(v)
            for l in 0..<16 {
                let ref = Double(v[l]).exp
                worst = max(worst, abs(Double(e[l]) - ref) / ref)
            }
            x += 0.173
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        let edge = simdExp(F16x(-200, -87.5, 90, .nan, 0, 1, -1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
        #expect(edge[0] == 0 && edge[2] == .infinity && edge[3].isNaN && edge[4] == 1)
    }
}

extension Double {
    var exp: Double { Foundation_exp(self) }
}

@Suite("Packed GEMM: panel layout")
struct PackedGEMMLayoutTests {
    @Test("packTransposed and packRows write panel[p][kk][j] = B[kk][32p + j], zero past N",
          arguments: [(1, 1), (13, 17), (16, 32), (33, 40), (7, 64), (20, 95)])
    func layout(shape: (Int, Int)) {
        let (k, n) = shape
        var d = TestData(seed: UInt64(k * 100 + n))
        let ldw = max(k, n) + 3
        let w = d.buffer(max(n, k) * ldw)
        let count = OptimizedPackedGEMM.packedCount(k: k, n: n)
        let panels = 0..<OptimizedPackedGEMM.panelCount(n)
        let t = AlignedBuffer<Float>(count: count), r = AlignedBuffer<Float>(count: count)
        t.fill(.nan); r.fill(.nan)
        // Bᵀ from W (n × k) and B from W (k × n), the same ldw.
        OptimizedPackedGEMM.packTransposed(w.pointer, ldw: ldw, n: n, k: k, panels: panels, into: t.pointer)
        OptimizedPackedGEMM.packRows(w.pointer, ldw: ldw, n: n, k: k, panels: panels, into: r.pointer)
        var badT = 0, badR = 0
        for p in panels {
            for kk in 0..<k {
                for j in 0..<32 {
                    let col = p * 32 + j, at = p * k * 32 + kk * 32 + j
                    let wantT: Float = col < n ? w.pointer[col * ldw + kk] : 0
                    let wantR: Float = col < n ? w.pointer[kk * ldw + col] : 0
                    if t.pointer[at] != wantT { badT += 1 }
                    if r.pointer[at] != wantR { badR += 1 }
                }
            }
        }
        #expect(badT == 0, "packTransposed k=\(k) n=\(n): \(badT) wrong")
        #expect(badR == 0, "packRows k=\(k) n=\(n): \(badR) wrong")
    }
}
