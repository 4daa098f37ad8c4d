import RecKitCore
@testable import RecKitKernels
import RecKitTestSupport
import Testing

/// bf16 kernels: conversion (optimized bit-equal to the reference, edge values), the bf16 GEMM and the mixed-precision
/// linear layer (oneDNN against the plain loops, and against fp32 within bf16 rounding).
@Suite("bf16 kernels: conversion, GEMM, mixed-precision linear")
struct BF16KernelTests {
    static let pool2 = ThreadPool(threads: 2)

    @Test("fp32 → bf16 rounds to nearest even, keeps NaN/inf/signed zero; SIMD equals the reference bit for bit",
          arguments: [0, 1, 15, 16, 17, 33, 1000])
    func conversion(count: Int) {
        var d = TestData(seed: UInt64(count) + 3)
        var values = d.floats(count, -1e4, 1e4)
        let specials: [Float] = [.nan, -.nan, .infinity, -.infinity, 0, -0.0, .greatestFiniteMagnitude,
                                 Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x0000_0001),
                                 .leastNormalMagnitude, Float(bitPattern: 0x3F80_7FFF)]
        for (i, s) in specials.enumerated() where i < count { values[i] = s }
        let src = AlignedBuffer(values.isEmpty ? [0] : values)
        var outs: [[UInt16]] = []
        for v in KernelVariant.allCases {
            let dst = AlignedBuffer<UInt16>(count: max(count, 1))
            KernelRegistry.toBF16.variant(v)(src.pointer, dst.pointer, count)
            outs.append(Array(UnsafeBufferPointer(start: dst.pointer, count: count)))
        }
        #expect(outs[0] == outs[1])
        for (i, x) in values.enumerated() {
            let h = outs[0][i]
            let back = Float(bitPattern: UInt32(h) << 16)
            if x.isNaN { #expect(back.isNaN); continue }
            if x.isInfinite { #expect(back == x); continue }
            if x == .greatestFiniteMagnitude { #expect(back == .infinity); continue }  // rounds up past the largest bf16
            #expect(back.sign == x.sign || x == 0)
            #expect(abs(back - x) <= abs(x) / 256 + Float.leastNonzeroMagnitude, "\(x) → \(back)")
        }
        if count > 8 {
            #expect(outs[0][7] == 0x3F80, "tie 1.00390625 rounds down to even 1.0")
            #expect(outs[0][8] == 0x3F82, "tie 1.01171875 rounds up to even")
            #expect(outs[0][11] == 0x3F80, "just below a tie rounds down")
        }
        // Widening is exact and the SIMD path equals the reference.
        let h = AlignedBuffer(outs[0].isEmpty ? [0] : outs[0])
        var wide: [[Float]] = []
        for v in KernelVariant.allCases {
            let dst = AlignedBuffer<Float>(count: max(count, 1))
            KernelRegistry.fromBF16.variant(v)(h.pointer, dst.pointer, count)
            wide.append(Array(UnsafeBufferPointer(start: dst.pointer, count: count)).map { $0.isNaN ? 12345 : $0 })
        }
        #expect(wide[0] == wide[1])
    }

    @Test("bf16 GEMM (oneDNN when present) matches the reference loops for all transposes and accumulate")
    func gemm() throws {
        var d = TestData(seed: 21)
        for (m, n, k) in [(1, 1, 1), (3, 5, 0), (0, 4, 4), (17, 33, 5), (64, 512, 13), (130, 64, 367), (33, 17, 100)] {
            for ta in [Transpose.none, .transposed] {
                for tb in [Transpose.none, .transposed] {
                    for acc in [false, true] {
                        let af = d.buffer(max(m * k, 1)), bf = d.buffer(max(k * n, 1)), c0 = d.floats(max(m * n, 1))
                        let a = AlignedBuffer<UInt16>(count: max(m * k, 1)), b = AlignedBuffer<UInt16>(count: max(k * n, 1))
                        Kernels.toBF16(af.pointer, a.pointer, count: m * k)
                        Kernels.toBF16(bf.pointer, b.pointer, count: k * n)
                        var results: [[Float]] = []
                        for v in KernelVariant.allCases {
                            let c = AlignedBuffer(c0)
                            KernelRegistry.bf16GEMM.variant(v)(BF16GEMMArguments(
                                transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: max(ta == .none ? k : m, 1),
                                b: b.pointer, ldb: max(tb == .none ? n : k, 1), accumulate: acc, c: c.pointer, ldc: max(n, 1)))
                            results.append(c.toArray())
                        }
                        assertClose(results[1], results[0], .blas(k: k), "bf16 gemm \(m)x\(n)x\(k) \(ta)\(tb) acc=\(acc)")
                        if BF16Runtime.isAvailable && m > 0 && n > 0 && k > 0 {
                            // The optimized variant must really run on oneDNN, not fall back to the loops.
                            let c = AlignedBuffer(c0)
                            let status = BF16Runtime.gemm(BF16GEMMArguments(
                                transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: ta == .none ? k : m,
                                b: b.pointer, ldb: tb == .none ? n : k, accumulate: acc, c: c.pointer, ldc: n))
                            #expect(status == 0, "oneDNN status \(status) for \(m)x\(n)x\(k)")
                            assertClose(c.toArray(), results[0], .blas(k: k), "oneDNN direct")
                        }
                    }
                }
            }
        }
        let x = AlignedBuffer<UInt16>(count: 16), c = AlignedBuffer<Float>(count: 16)
        #expect(throws: KernelError.shapeMismatch("bf16 GEMM lda=3 < 4")) {
            try Kernels.bf16GEMM(BF16GEMMArguments(m: 2, n: 2, k: 4, a: x.pointer, lda: 3, b: x.pointer, ldb: 2, c: c.pointer, ldc: 2))
        }
    }

    @Test("mixed-precision linear forward/backward: optimized = reference, and within bf16 rounding of fp32",
          arguments: [(1, 1, 4), (0, 5, 3), (3, 13, 16), (130, 13, 64), (64, 33, 1), (50, 367, 512), (17, 256, 64),
                      (40, 32, 32), (40, 31, 64), (40, 64, 31)])
    func linear(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        let c = LinearCase(seed: UInt64(m * 5 + k + n * 11), m: m, k: k, n: n)
        var d = TestData(seed: 99)
        let gy0 = d.floats(max(m * n, 1))
        for act in [Activation.relu, .identity] {
            // (forward Y, dZ, dW, db, dX) for fp32-reference, bf16-reference, bf16-optimized.
            var outs: [[[Float]]] = []
            for (mode, v) in [("fp32", KernelVariant.reference), ("bf16", .reference), ("bf16", .optimized)] {
                let scratch = BF16Scratch()
                let y = AlignedBuffer<Float>(count: max(m * n, 1))
                let yv = MatrixView(base: y.pointer, rows: m, columns: n)
                let fa = LinearForwardArguments(input: c.input, weight: c.w.pointer, bias: c.b.pointer, output: yv, activation: act)
                if mode == "fp32" { KernelRegistry.linearForward.variant(v)(fa, Self.pool2) }
                else { KernelRegistry.bf16LinearForward.variant(v)(fa, scratch, Self.pool2) }
                let gy = AlignedBuffer(gy0), gw = AlignedBuffer<Float>(count: n * k), gb = AlignedBuffer<Float>(count: n)
                gw.fill(0.25); gb.fill(0.5)  // accumulate onto existing gradients
                let gx = AlignedBuffer<Float>(count: max(m * k, 1))
                let ba = LinearBackwardArguments(input: c.input, weight: c.w.pointer, output: yv,
                                                 gradOutput: MatrixView(base: gy.pointer, rows: m, columns: n),
                                                 gradInput: MatrixView(base: gx.pointer, rows: m, columns: k),
                                                 gradWeight: gw.pointer, gradBias: gb.pointer, activation: act, accumulate: true)
                if mode == "fp32" { KernelRegistry.linearBackward.variant(v)(ba, Self.pool2) }
                else { KernelRegistry.bf16LinearBackward.variant(v)(ba, scratch, Self.pool2) }
                let yOut: [Float] = Array(y.toArray().prefix(m * n))
                let dzOut: [Float] = Array(gy.toArray().prefix(m * n))
                let dxOut: [Float] = Array(gx.toArray().prefix(m * k))
                outs.append([yOut, dzOut, gw.toArray(), gb.toArray(), dxOut])
            }
            let names = ["Y", "dZ", "dW", "db", "dX"]
            let sums = [k, 1, m, m, n]
            for (i, name) in names.enumerated() {
                assertClose(outs[2][i], outs[1][i], .blas(k: sums[i]), "\(name) bf16 optimized vs reference \(shape) \(act)")
                // With ReLU a pre-activation within rounding of 0 may switch sides; compare the smooth case only.
                if act == .identity {
                    assertClose(outs[1][i], outs[0][i], .bf16Rounding(k: sums[i]), "\(name) bf16 vs fp32 \(shape) \(act)")
                }
            }
        }
    }

    @Test("bf16 runtime: available wherever the CPU has AMX or AVX512-BF16 and oneDNN is installed; status says why not")
    func runtime() {
        let status = BF16Runtime.status
        #expect(!status.isEmpty)
        let cpu = CPUFeatures.host
        if BF16Runtime.isAvailable {
            #expect(cpu.avx512bf16 || cpu.amxBF16, "\(status)")
            #expect(status.hasPrefix("oneDNN"))
        } else {
            // Unavailable must come with a reason naming the missing piece.
            #expect(status.contains("oneDNN") || status.contains("AMX"), "\(status)")
        }
    }
}
