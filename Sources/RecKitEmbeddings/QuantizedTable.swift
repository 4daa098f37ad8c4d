import RecKitCore
import RecKitKernels

/// A row-wise quantized embedding table that owns its bytes (FBGEMM-style: per-row scale and bias after the
/// payload; byte layout in `QuantizedRowLayout`).
///
/// int8, per row x (dim D): bias = min(x), scale = (max(x) − min(x)) / 255, both rounded to fp16 first; then
/// q_j = clamp(round((x_j − bias) / scale), 0, 255) with the rounded values, so q·scale + bias is within scale/2
/// of x_j (plus the fp16 rounding of the bias). A constant row has scale 0 and q = 0.
/// int4: scale s = max((max − min) / 14, max|x| / 127) rounded up to fp16, k = ⌊min / s⌋ (an int8), q_j =
/// clamp(round(x_j / s − k), 0, 15); (q + k)·s is within s/2 of x_j. One of the 16 levels is spent absorbing the
/// rounding of the bias to a multiple of s.
public final class QuantizedTable: @unchecked Sendable {
    public let dtype: QuantizedDType
    public let rows: Int
    public let dim: Int
    public let rowBytes: Int
    /// rows × rowBytes bytes.
    public let data: AlignedBuffer<UInt8>

    /// Wraps `data`, which must hold at least rows × rowBytes bytes.
    public init(dtype: QuantizedDType, rows: Int, dim: Int, data: AlignedBuffer<UInt8>) throws(EmbeddingError) {
        let rb = dtype.rowBytes(dim: dim)
        let (need, overflow) = rows.multipliedReportingOverflow(by: rb)
        guard rows >= 0, dim >= 1, !overflow, data.count >= need else {
            throw .invalidSpec("quantized", "\(data.count) bytes for \(rows) rows × \(rb) bytes (\(dtype.rawValue), dim \(dim))")
        }
        self.dtype = dtype; self.rows = rows; self.dim = dim; self.rowBytes = rb; self.data = data
    }

    /// Zeroed rows to be filled (a checkpoint read).
    public init(dtype: QuantizedDType, rows: Int, dim: Int) {
        self.dtype = dtype; self.rows = rows; self.dim = dim; self.rowBytes = dtype.rowBytes(dim: dim)
        data = AlignedBuffer(count: rows * rowBytes)
    }

    /// Quantizes a float table (rows × dim, row-major).
    public static func quantize(_ weights: UnsafePointer<Float>, rows: Int, dim: Int, dtype: QuantizedDType) -> QuantizedTable {
        let q = QuantizedTable(dtype: dtype, rows: rows, dim: dim)
        for r in 0..<rows { quantizeRow(weights + r * dim, dim: dim, dtype: dtype, into: q.data.pointer + r * q.rowBytes) }
        return q
    }

    static func quantizeRow(_ x: UnsafePointer<Float>, dim: Int, dtype: QuantizedDType, into row: UnsafeMutablePointer<UInt8>) {
        if dtype == .fp16 {
            let h = UnsafeMutableRawPointer(row)
            for j in 0..<dim { h.storeBytes(of: Float16(x[j]).bitPattern, toByteOffset: 2 * j, as: UInt16.self) }
            return
        }
        var lo = Float.infinity, hi = -Float.infinity
        for j in 0..<dim { lo = min(lo, x[j]); hi = max(hi, x[j]) }
        let payload = dtype.payloadBytes(dim: dim)
        row.update(repeating: 0, count: payload)
        let sb = UnsafeMutableRawPointer(row + payload)
        if dtype == .int8 {
            let bias = Float(Float16(lo))
            let scale = Float(Float16((hi - lo) / 255))
            let inv: Float = scale > 0 ? 1 / scale : 0
            for j in 0..<dim { row[j] = UInt8(min(max(((x[j] - bias) * inv).rounded(.toNearestOrEven), 0), 255)) }
            sb.storeBytes(of: Float16(scale).bitPattern, toByteOffset: 0, as: UInt16.self)
            sb.storeBytes(of: Float16(bias).bitPattern, toByteOffset: 2, as: UInt16.self)
            return
        }
        let wanted = max((hi - lo) / 14, max(abs(lo), abs(hi)) / 127)
        var h = Float16(wanted)
        if Float(h) < wanted { h = h.nextUp }  // round up, so k fits in an int8 and 15 levels cover the range
        let scale = Float(h)
        let k: Float = scale > 0 ? (lo / scale).rounded(.down) : 0
        let inv: Float = scale > 0 ? 1 / scale : 0
        for j in 0..<dim {
            let q = UInt8(min(max((x[j] * inv - k).rounded(.toNearestOrEven), 0), 15))
            let (byte, high) = QuantizedRowLayout.nibble(j, dim: dim)
            row[byte] |= high ? q << 4 : q
        }
        sb.storeBytes(of: h.bitPattern, toByteOffset: 0, as: UInt16.self)
        sb.storeBytes(of: Int8(max(min(k, 127), -128)), toByteOffset: 2, as: Int8.self)
    }

    /// The table as the kernels read it.
    public var view: QuantizedTableView { QuantizedTableView(dtype: dtype, rows: rows, dim: dim, data: data.pointer) }

    /// Row r dequantized (reference semantics), for tests and reports.
    public func dequantizedRow(_ r: Int) -> [Float] {
        (0..<dim).map { QuantizedRowLayout.element(data.pointer + r * rowBytes, $0, dim: dim, dtype: dtype) }
    }

    /// Bytes of the whole table.
    public var byteCount: Int { rows * rowBytes }
}

/// Read-only quantized rows: serving's storage. Its tensor is `prefix.weight` as U8 [R, rowBytes].
public final class QuantizedRowStorage: RowStorage, @unchecked Sendable {
    public let table: QuantizedTable
    public init(_ table: QuantizedTable) { self.table = table }
    public var rows: Int { table.rows }
    public var dim: Int { table.dim }
    public var optimizer: SparseOptimizerKind? { nil }

    public func stateTensors(prefix: String) -> [StateTensor] {
        [StateTensor(name: prefix + ".weight", dtype: .u8, shape: [table.rows, table.rowBytes], role: .parameter,
                     data: UnsafeMutableRawBufferPointer(start: table.data.pointer, count: table.byteCount))]
    }

    public func rows(for ids: UnsafeMutableBufferPointer<Int64>) throws(EmbeddingError) -> ResolvedRows { .quantized(table.view) }
    public func finishBatch(updated: Bool) {}
}
