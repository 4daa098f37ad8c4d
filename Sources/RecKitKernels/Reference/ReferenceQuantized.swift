import RecKitCore

/// Plain-loop embedding-bag forward over quantized rows: dequantize each element (q·scale + bias, or the fp16
/// value), then pool exactly as `ReferenceEmbeddingBag.forward`.
enum ReferenceQuantized {
    @inline(__always) static func element(_ row: UnsafePointer<UInt8>, _ j: Int, dim: Int, dtype: QuantizedDType) -> Float {
        let raw = UnsafeRawPointer(row)
        switch dtype {
        case .fp16:
            return Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))
        case .int8, .int4:
            let payload = dtype == .int8 ? dim : (dim + 1) / 2
            let (scale, bias) = QuantizedTable.scaleBias(raw, payload: payload, dtype: dtype)
            let q: UInt8
            if dtype == .int8 { q = row[j] } else {
                let (byte, high) = QuantizedTable.nibble(j, dim: dim)
                q = high ? row[byte] >> 4 : row[byte] & 0xF
            }
            return Float(q) * scale + bias
        }
    }

    static func forward(table: QuantizedTable, bags: JaggedBags, mode: PoolingMode, output: MatrixView,
                        pool: ThreadPool) throws(KernelError) {
        try BagValidation.validate(bags, rows: table.rows)
        let d = table.dim
        var offsets = [Int32](repeating: 0, count: bags.bagCount + 1)
        offsets.withUnsafeMutableBufferPointer { BagValidation.resolveOffsets(bags, into: $0.baseAddress!) }
        for b in 0..<bags.bagCount {
            let start = Int(offsets[b]), end = Int(offsets[b + 1])
            var acc = [Float](repeating: 0, count: d)
            for p in start..<end {
                let row = table.data.pointer + Int(bags.indices[p]) * table.rowBytes
                let w = bags.weights?[p] ?? 1
                for j in 0..<d { acc[j] += w * element(row, j, dim: d, dtype: table.dtype) }
            }
            let s = BagValidation.scale(mode, length: end - start)
            let out = output.row(b)
            for j in 0..<d { out[j] = mode == .sum ? acc[j] : acc[j] * s }
        }
    }
}
