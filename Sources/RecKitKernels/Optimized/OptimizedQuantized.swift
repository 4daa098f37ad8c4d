import CRecKitShims
import RecKitCore

/// Embedding-bag forward over quantized rows, 16 lanes at a time: int8 widens 16 bytes, int4 unpacks 8 bytes with a
/// mask and a shift (see `QuantizedTable`'s layout), fp16 converts 16 halves (`vcvtph2ps` with -target-cpu); each
/// row adds w·(q·scale + bias) into a register accumulator. The row `ahead` positions on is prefetched. Bags are
/// split across the pool. The D mod 16 tail uses the reference element function.
enum OptimizedQuantized {
    static let ahead = 8

    static func forward(table: QuantizedTable, bags: JaggedBags, mode: PoolingMode, output: MatrixView,
                        pool: ThreadPool) throws(KernelError) {
        try BagValidation.validate(bags, rows: table.rows)
        let n = bags.bagCount
        if n == 0 { return }
        let offsets = AlignedBuffer<Int32>(count: n + 1)
        BagValidation.resolveOffsets(bags, into: offsets.pointer)
        let op = SendablePointer(offsets.pointer)
        let parts = ThreadPool.split(n, into: bags.count < 4096 ? 1 : pool.threadCount)
        pool.parallelFor(parts.count) { t in
            for b in parts[t] { bag(b, table: table, bags: bags, offsets: op.base, mode: mode, output: output) }
        }
    }

    @inline(__always)
    static func bag(_ b: Int, table: QuantizedTable, bags: JaggedBags, offsets: UnsafePointer<Int32>, mode: PoolingMode,
                    output: MatrixView) {
        let d = table.dim, rb = table.rowBytes, base = table.data.pointer
        let start = Int(offsets[b]), end = Int(offsets[b + 1])
        let out = output.row(b)
        let s = mode == .sum ? Float(1) : BagValidation.scale(mode, length: end - start)
        let groups = d / 16
        let payload = table.dtype == .int8 ? d : (d + 1) / 2
        var g = 0
        // One pass per 16-lane group keeps the accumulator in a register (D = 16: one pass).
        repeat {
            var acc = SIMD16<Float>.zero
            var tail = [Float]()
            if g == groups { tail = [Float](repeating: 0, count: d - groups * 16) }
            for p in start..<end {
                if p + ahead < end { reckit_prefetch(base + Int(bags.indices[p + ahead]) * rb) }
                let row = base + Int(bags.indices[p]) * rb
                let w = bags.weights?[p] ?? 1
                if g < groups {
                    acc += w * group(row, g, payload: payload, dtype: table.dtype)
                } else {
                    for j in 0..<tail.count { tail[j] += w * ReferenceQuantized.element(row, groups * 16 + j, dim: d, dtype: table.dtype) }
                }
            }
            if g < groups {
                let v = mode == .sum ? acc : acc * s
                UnsafeMutableRawPointer(out + g * 16).storeBytes(of: v, as: SIMD16<Float>.self)
            } else {
                for j in 0..<tail.count { out[groups * 16 + j] = mode == .sum ? tail[j] : tail[j] * s }
            }
            g += 1
        } while g < groups || (g == groups && d % 16 != 0)
    }

    /// Elements g·16 ..< g·16 + 16 of a row, dequantized.
    @inline(__always)
    static func group(_ row: UnsafePointer<UInt8>, _ g: Int, payload: Int, dtype: QuantizedDType) -> SIMD16<Float> {
        let raw = UnsafeRawPointer(row)
        switch dtype {
        case .fp16:
            let h = raw.loadUnaligned(fromByteOffset: g * 32, as: SIMD16<UInt16>.self)
            return SIMD16<Float>(unsafeBitCast(h, to: SIMD16<Float16>.self))
        case .int8:
            let q = raw.loadUnaligned(fromByteOffset: g * 16, as: SIMD16<UInt8>.self)
            let (scale, bias) = QuantizedTable.scaleBias(raw, payload: payload, dtype: dtype)
            return SIMD16<Float>(q) * scale + bias
        case .int4:
            let packed = raw.loadUnaligned(fromByteOffset: g * 8, as: SIMD8<UInt8>.self)
            let q = SIMD16<UInt8>(lowHalf: packed & 0xF, highHalf: packed &>> 4)
            let (scale, bias) = QuantizedTable.scaleBias(raw, payload: payload, dtype: dtype)
            return SIMD16<Float>(q) * scale + bias
        }
    }
}
