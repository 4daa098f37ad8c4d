import RecKitCore
import RecKitEmbeddings
@testable import RecKitKernels
import RecKitTestSupport
import Testing

/// Quantized rows: the quantizer's error bound, and the SIMD embedding-bag forward against its reference twin on
/// edge shapes (dims below/at/above 16, empty bags, duplicates, weights, mean), errors included.
@Suite("Quantized embedding tables")
struct QuantizedKernelTests {
    static let pool2 = ThreadPool(threads: 2)

    @Test("dequantized rows are within half a step (+ fp16 rounding) of the fp32 rows",
          arguments: QuantizedDType.allCases)
    func quantizationError(dtype: QuantizedDType) {
        var d = TestData(seed: 5)
        for dim in [1, 7, 16, 17, 33] {
            let rows = 40
            let w = d.buffer(rows * dim, -0.3, 0.3)
            for j in 0..<dim { w.pointer[j] = 0.125 }  // a constant row: scale 0, must come back exactly-ish
            let q = QuantizedTable.quantize(w.pointer, rows: rows, dim: dim, dtype: dtype)
            #expect(q.byteCount == rows * dtype.rowBytes(dim: dim))
            for r in 0..<rows {
                let x = (0..<dim).map { w.pointer[r * dim + $0] }
                let y = q.dequantizedRow(r)
                let lo = x.min()!, hi = x.max()!
                let maxAbs = Double(max(abs(lo), abs(hi)))
                let step = dtype == .fp16 ? 0 : dtype == .int8 ? Double(hi - lo) / 255
                    : max(Double(hi - lo) / 14, maxAbs / 127) * 1.001  // int4: see QuantizedTable
                for j in 0..<dim {
                    let bound = step / 2 * 1.01 + abs(Double(x[j])) / 1024 + 1e-6
                    #expect(abs(Double(y[j] - x[j])) <= bound, "\(dtype) dim \(dim) row \(r) elt \(j): \(x[j]) → \(y[j])")
                }
            }
        }
    }

    @Test("SIMD forward equals the reference: every dtype, dims 1…33, sum/mean, weights, empty bags, duplicates",
          arguments: QuantizedDType.allCases)
    func forward(dtype: QuantizedDType) throws {
        var d = TestData(seed: 9)
        for dim in [1, 8, 15, 16, 17, 32, 33] {
            let rows = 50
            let w = d.buffer(rows * dim)
            let q = QuantizedTable.quantize(w.pointer, rows: rows, dim: dim, dtype: dtype)
            let lengths: [Int32] = [0, 1, 3, 0, 7, 2, 1, 0, 30]
            var ids = d.ids(Int(lengths.reduce(0, +)), rows: rows)
            ids[1] = ids[2]; ids[2] = ids[1]  // duplicates in a bag
            let offs = offsets(fromLengths: lengths)
            let weights = d.floats(ids.count, 0.5, 1.5)
            for mode in PoolingMode.allCases {
                for weighted in [false, true] {
                    var outs: [[Float]] = []
                    for v in KernelVariant.allCases {
                        let out = AlignedBuffer<Float>(count: lengths.count * (dim + 3))
                        out.fill(-7)
                        let e: KernelError? = ids.withUnsafeBufferPointer { ip in
                            offs.withUnsafeBufferPointer { op in
                                weights.withUnsafeBufferPointer { wp in
                                    let bags = JaggedBags(indices: ip.baseAddress!, count: ids.count, bagCount: lengths.count,
                                                          boundaries: .offsets(op.baseAddress!), weights: weighted ? wp.baseAddress : nil)
                                    return KernelRegistry.quantizedBagForward.variant(v)(
                                        q.view, bags, mode, MatrixView(base: out.pointer, rows: lengths.count, columns: dim, rowStride: dim + 3), Self.pool2)
                                }
                            }
                        }
                        #expect(e == nil)
                        outs.append(out.toArray())
                    }
                    assertClose(outs[1], outs[0], .reassociated, "\(dtype) dim \(dim) \(mode) weighted=\(weighted)")
                    // Padding columns untouched.
                    #expect((0..<lengths.count).allSatisfy { b in (dim..<(dim + 3)).allSatisfy { outs[1][b * (dim + 3) + $0] == -7 } })
                }
            }
        }
    }

    @Test("out-of-range ids: the same typed error from both variants, nothing written")
    func errors() {
        let w = AlignedBuffer<Float>(count: 4 * 16)
        let q = QuantizedTable.quantize(w.pointer, rows: 4, dim: 16, dtype: .int8)
        let ids: [Int64] = [1, 9], offs: [Int32] = [0, 2]
        for v in KernelVariant.allCases {
            let out = AlignedBuffer<Float>(count: 16)
            let e: KernelError? = ids.withUnsafeBufferPointer { ip in
                offs.withUnsafeBufferPointer { op in
                    KernelRegistry.quantizedBagForward.variant(v)(
                        q.view, JaggedBags(indices: ip.baseAddress!, count: 2, bagCount: 1, boundaries: .offsets(op.baseAddress!), weights: nil),
                        .sum, MatrixView(base: out.pointer, rows: 1, columns: 16), Self.pool2)
                }
            }
            #expect(e == .indexOutOfRange(position: 1, index: 9, rows: 4))
        }
    }
}
