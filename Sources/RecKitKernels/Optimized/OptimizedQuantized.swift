import CRecKitShims
import RecKitCore

/// Embedding-bag forward over quantized rows, 16 lanes at a time: int8 widens 16 bytes, int4 unpacks 8 bytes with a
/// mask and a shift (see `QuantizedRowLayout`), fp16 converts 16 halves (`vcvtph2ps` with -target-cpu); each
/// row adds w·(q·scale + bias) into a register accumulator. The row `ahead` positions on is prefetched. Bags are
/// split across the pool. The D mod 16 tail uses the reference element function.
enum OptimizedQuantized {
    static let ahead = 8

    static func forward(table: QuantizedTableView, bags: JaggedBags, mode: PoolingMode, output: MatrixView,
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
    static func bag(_ b: Int, table: QuantizedTableView, bags: JaggedBags, offsets: UnsafePointer<Int32>, mode: PoolingMode,
                    output: MatrixView) {
        let d = table.dim, rb = table.rowBytes, base = table.data, dtype = table.dtype
        let start = Int(offsets[b]), end = Int(offsets[b + 1])
        let out = output.row(b)
        let s = mode == .sum ? Float(1) : BagValidation.scale(mode, length: end - start)
        let groups = d / 16, rest = d % 16
        let payload = dtype == .int8 ? d : (d + 1) / 2
        // One pass per 16-lane group keeps the accumulator in a register (D = 16: one pass).
        for g in 0..<groups {
            var acc = SIMD16<Float>.zero
            for p in start..<end {
                if p + ahead < end { reckit_prefetch(base + Int(bags.indices[p + ahead]) * rb) }
                acc += (bags.weights?[p] ?? 1) * group(base + Int(bags.indices[p]) * rb, g, payload: payload, dtype: dtype)
            }
            UnsafeMutableRawPointer(out + g * 16).storeBytes(of: mode == .sum ? acc : acc * s, as: SIMD16<Float>.self)
        }
        // The D mod 16 tail, in lanes of a register accumulator (no allocation).
        if rest > 0 {
            var acc = SIMD16<Float>.zero
            for p in start..<end {
                let row = base + Int(bags.indices[p]) * rb
                let w = bags.weights?[p] ?? 1
                for j in 0..<rest { acc[j] += w * ReferenceQuantized.element(row, groups * 16 + j, dim: d, dtype: dtype) }
            }
            for j in 0..<rest { out[groups * 16 + j] = mode == .sum ? acc[j] : acc[j] * s }
        }
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
            let (scale, bias) = QuantizedRowLayout.scaleBias(raw, payload: payload, dtype: dtype)
            return SIMD16<Float>(q) * scale + bias
        case .int4:
            let packed = raw.loadUnaligned(fromByteOffset: g * 8, as: SIMD8<UInt8>.self)
            let q = SIMD16<UInt8>(lowHalf: packed & 0xF, highHalf: packed &>> 4)
            let (scale, bias) = QuantizedRowLayout.scaleBias(raw, payload: payload, dtype: dtype)
            return SIMD16<Float>(q) * scale + bias
        }
    }
}
