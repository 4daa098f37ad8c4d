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
        let base = table.data.pointer, rb = table.rowBytes, d = table.dim, dtype = table.dtype
        try ReferenceEmbeddingBag.pooled(bags: bags, rows: table.rows, dim: d, mode: mode, output: output) { r, j in
            element(base + r * rb, j, dim: d, dtype: dtype)
        }
    }
}
