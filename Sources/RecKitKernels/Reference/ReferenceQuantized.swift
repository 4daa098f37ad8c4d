import RecKitCore

/// Plain-loop embedding-bag forward over quantized rows: dequantize each element (q·scale + bias, or the fp16
/// value), then pool exactly as `ReferenceEmbeddingBag.forward`.
enum ReferenceQuantized {
    @inline(__always) static func element(_ row: UnsafePointer<UInt8>, _ j: Int, dim: Int, dtype: QuantizedDType) -> Float {
        QuantizedRowLayout.element(row, j, dim: dim, dtype: dtype)
    }

    static func forward(table: QuantizedTableView, bags: JaggedBags, mode: PoolingMode, output: MatrixView,
                        pool: ThreadPool) throws(KernelError) {
        let base = table.data, rb = table.rowBytes, d = table.dim, dtype = table.dtype
        try ReferenceEmbeddingBag.pooled(bags: bags, rows: table.rows, dim: d, mode: mode, output: output) { r, j in
            element(base + r * rb, j, dim: d, dtype: dtype)
        }
    }
}
