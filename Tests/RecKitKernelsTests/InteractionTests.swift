import RecKitCore
@testable import RecKitKernels
import RecKitTestSupport
import Testing

@Suite("DLRM dot interaction")
struct InteractionTests {
    static let pool2 = ThreadPool(threads: 2)

    func run(_ v: KernelVariant, b: Int, f: Int, d: Int, diag: Bool, x: AlignedBuffer<Float>, pool: ThreadPool) -> ([Float], Bool) {
        let a = InteractionArguments(features: MatrixView(base: x.pointer, rows: b, columns: f * d), vectorCount: f, dim: d,
                                     includeDiagonal: diag)
        let stride = a.outputWidth + 4
        let out = AlignedBuffer<Float>(count: max(b, 1) * stride)
        out.fill(-9)
        let err = KernelRegistry.interactionForward.variant(v)(a, MatrixView(base: out.pointer, rows: b, columns: a.outputWidth, rowStride: stride), pool)
        #expect(err == nil)
        var res: [Float] = [], intact = true
        for i in 0..<b { for j in 0..<stride { if j < a.outputWidth { res.append(out.pointer[i * stride + j]) } else if out.pointer[i * stride + j] != -9 { intact = false } } }
        return (res, intact)
    }

    @Test("forward equals the reference bit for bit", arguments: [(1, 1), (1, 16), (2, 16), (3, 4), (9, 16), (16, 16), (17, 17), (27, 16), (33, 32), (5, 1)])
    func forward(shape: (Int, Int)) {
        let (f, d) = shape
        var data = TestData(seed: UInt64(f * 31 + d))
        let b = 67
        let x = data.buffer(b * f * d)
        for diag in [false, true] {
            let ref = run(.reference, b: b, f: f, d: d, diag: diag, x: x, pool: Self.pool2)
            for pool in [ThreadPool(threads: 1), Self.pool2] {
                let opt = run(.optimized, b: b, f: f, d: d, diag: diag, x: x, pool: pool)
                #expect(opt.1, "wrote past the output row")
                assertClose(opt.0, ref.0, .exact, "F=\(f) D=\(d) diag=\(diag)")
            }
        }
    }

    @Test("the pair order is DLRM's: (1,0), (2,0), (2,1), ...")
    func pairOrder() {
        // Vectors e0·1, e0·2, e0·3 in D = 1: dots are 2, 3, 6.
        let x = AlignedBuffer<Float>([1, 2, 3])
        let out = run(.optimized, b: 1, f: 3, d: 1, diag: false, x: x, pool: Self.pool2).0
        #expect(out == [1, 2, 3, 6])
        let withDiag = run(.optimized, b: 1, f: 3, d: 1, diag: true, x: x, pool: Self.pool2).0
        #expect(withDiag == [1, 1, 2, 4, 3, 6, 9])
    }

    @Test("backward matches the reference and finite differences", arguments: [(1, 16), (3, 5), (9, 32), (17, 16), (27, 16), (4, 33)])
    func backward(shape: (Int, Int)) {
        let (f, d) = shape
        var data = TestData(seed: UInt64(f + d))
        let b = 9
        let x = data.buffer(b * f * d)
        for diag in [false, true] {
            let a = InteractionArguments(features: MatrixView(base: x.pointer, rows: b, columns: f * d), vectorCount: f, dim: d,
                                         includeDiagonal: diag)
            let r = data.buffer(b * a.outputWidth)
            var grads: [[Float]] = []
            for v in KernelVariant.allCases {
                let g = AlignedBuffer<Float>(count: b * f * d)
                g.fill(123)  // must be overwritten, not accumulated into
                let err = KernelRegistry.interactionBackward.variant(v)(a, MatrixView(base: r.pointer, rows: b, columns: a.outputWidth),
                                                                          MatrixView(base: g.pointer, rows: b, columns: f * d), Self.pool2)
                #expect(err == nil)
                grads.append(g.toArray())
            }
            assertClose(grads[1], grads[0], .reassociated, "F=\(f) D=\(d) diag=\(diag)")
            if f * d <= 64 {
                let loss: () -> Double = {
                    let o = self.run(.reference, b: b, f: f, d: d, diag: diag, x: x, pool: Self.pool2).0
                    return zip(o, r.toArray()).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                }
                let numeric = (0..<(b * f * d)).map { Float(finiteDifference(x.pointer, $0, loss)) }
                assertClose(grads[1], numeric, .finiteDifference, "finite differences F=\(f) D=\(d) diag=\(diag)")
            }
        }
    }

    @Test("16×16 register transpose equals the plain one", arguments: [0, 1, 7, 15, 16])
    func transpose(rows: Int) {
        var data = TestData(seed: UInt64(rows + 5))
        let srcStride = 21, dstStride = 35
        let src = data.buffer(16 * srcStride)
        let dst = AlignedBuffer<Float>(count: 16 * dstStride)
        dst.fill(-7)
        transpose16x16(src.pointer, rowStride: srcStride, rows: rows, into: dst.pointer, rowStride: dstStride)
        for c in 0..<16 {
            for r in 0..<dstStride {
                let expected: Float = r >= 16 ? -7 : (r < rows ? src.pointer[r * srcStride + c] : 0)
                #expect(dst.pointer[c * dstStride + r] == expected, "row \(r) column \(c)")
            }
        }
    }

    @Test("shape errors are typed")
    func errors() {
        let x = AlignedBuffer<Float>(count: 64)
        let a = InteractionArguments(features: MatrixView(base: x.pointer, rows: 2, columns: 30), vectorCount: 3, dim: 8)
        for v in KernelVariant.allCases {
            let e = KernelRegistry.interactionForward.variant(v)(a, MatrixView(base: x.pointer, rows: 2, columns: 11), Self.pool2)
            if case .shapeMismatch? = e {} else { Issue.record("expected shapeMismatch, got \(String(describing: e))") }
        }
    }
}
