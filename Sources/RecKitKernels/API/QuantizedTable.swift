import RecKitCore

/// Storage type of a quantized embedding table.
public enum QuantizedDType: String, Sendable, Codable, CaseIterable {
    /// IEEE half per element, no scale.
    case fp16
    /// uint8 per element with a per-row fp16 scale and bias: x ≈ q·scale + bias.
    case int8
    /// uint4 per element (two per byte) with a per-row fp16 scale and an int8 bias in units of the scale:
    /// x ≈ (q + k)·scale. (FBGEMM keeps an fp16 bias; at dim 16 that is a third of the row, so RecKit stores the
    /// bias as a multiple of the scale: 11 bytes per row instead of 12.)
    case int4

    public var bits: Int {
        switch self { case .fp16: 16; case .int8: 8; case .int4: 4 }
    }

    /// Bytes of one row of `dim` elements: the payload, then int8: fp16 scale + fp16 bias; int4: fp16 scale + int8 k.
    public func rowBytes(dim: Int) -> Int {
        switch self {
        case .fp16: return 2 * dim
        case .int8: return dim + 4
        case .int4: return (dim + 1) / 2 + 3
        }
    }
}

/// A row-wise quantized embedding table (FBGEMM-style: a per-row scale and bias after the payload).
///
/// int8, per row x (dim D): bias = min(x), scale = (max(x) − min(x)) / 255, both rounded to fp16 first; then
/// q_j = clamp(round((x_j − bias) / scale), 0, 255) with the rounded values, so q·scale + bias is within scale/2
/// of x_j (plus the fp16 rounding of the bias). A constant row has scale 0 and q = 0.
/// int4: scale s = max((max − min) / 14, max|x| / 127) rounded up to fp16, k = ⌊min / s⌋ (an int8), q_j =
/// clamp(round(x_j / s − k), 0, 15); (q + k)·s is within s/2 of x_j. One of the 16 levels is spent absorbing the
/// rounding of the bias to a multiple of s.
///
/// int4 layout: elements in full groups of 16 use 8 bytes, element g·16 + i in the low nibble of byte g·8 + i and
/// element g·16 + 8 + i in its high nibble (a 16-lane unpack is then a mask and a shift); the D mod 16 tail packs
/// two consecutive elements per byte, low nibble first.
public final class QuantizedTable: @unchecked Sendable {
    public let dtype: QuantizedDType
    public let rows: Int
    public let dim: Int
    public let rowBytes: Int
    /// rows × rowBytes bytes.
    public let data: AlignedBuffer<UInt8>

    public init(dtype: QuantizedDType, rows: Int, dim: Int, data: AlignedBuffer<UInt8>) throws(KernelError) {
        let rb = dtype.rowBytes(dim: dim)
        guard rows >= 0, dim >= 1, data.count >= rows * rb else {
            throw .shapeMismatch("quantized table: \(data.count) bytes for \(rows) rows × \(rb) bytes (\(dtype.rawValue), dim \(dim))")
        }
        self.dtype = dtype; self.rows = rows; self.dim = dim; self.rowBytes = rb; self.data = data
    }

    /// For buffers sized here (`quantize`), where the shape check cannot fail.
    private init(sizedBy dtype: QuantizedDType, rows: Int, dim: Int, data: AlignedBuffer<UInt8>) {
        self.dtype = dtype; self.rows = rows; self.dim = dim; self.rowBytes = dtype.rowBytes(dim: dim); self.data = data
    }

    /// Quantizes a float table (rows × dim, row-major).
    public static func quantize(_ weights: UnsafePointer<Float>, rows: Int, dim: Int, dtype: QuantizedDType) -> QuantizedTable {
        let rb = dtype.rowBytes(dim: dim)
        let data = AlignedBuffer<UInt8>(count: (rows * rb + 3) / 4 * 4)  // whole 4-byte words (checkpoint tensors)
        for r in 0..<rows { quantizeRow(weights + r * dim, dim: dim, dtype: dtype, into: data.pointer + r * rb) }
        return QuantizedTable(sizedBy: dtype, rows: rows, dim: dim, data: data)
    }

    static func quantizeRow(_ x: UnsafePointer<Float>, dim: Int, dtype: QuantizedDType, into row: UnsafeMutablePointer<UInt8>) {
        if dtype == .fp16 {
            let h = UnsafeMutableRawPointer(row)
            for j in 0..<dim { h.storeBytes(of: Float16(x[j]).bitPattern, toByteOffset: 2 * j, as: UInt16.self) }
            return
        }
        var lo = Float.infinity, hi = -Float.infinity
        for j in 0..<dim { lo = min(lo, x[j]); hi = max(hi, x[j]) }
        let payload = dtype == .int8 ? dim : (dim + 1) / 2
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
            let (byte, high) = nibble(j, dim: dim)
            row[byte] |= high ? q << 4 : q
        }
        sb.storeBytes(of: h.bitPattern, toByteOffset: 0, as: UInt16.self)
        sb.storeBytes(of: Int8(max(min(k, 127), -128)), toByteOffset: 2, as: Int8.self)
    }

    /// (scale, bias) of a quantized row: x ≈ q·scale + bias.
    @inline(__always) static func scaleBias(_ row: UnsafeRawPointer, payload: Int, dtype: QuantizedDType) -> (Float, Float) {
        let scale = Float(Float16(bitPattern: row.loadUnaligned(fromByteOffset: payload, as: UInt16.self)))
        if dtype == .int4 { return (scale, Float(row.load(fromByteOffset: payload + 2, as: Int8.self)) * scale) }
        return (scale, Float(Float16(bitPattern: row.loadUnaligned(fromByteOffset: payload + 2, as: UInt16.self))))
    }

    /// (byte, high nibble?) of element j in an int4 row of `dim` elements.
    @inline(__always) public static func nibble(_ j: Int, dim: Int) -> (Int, Bool) {
        let full = dim / 16
        if j < full * 16 { let g = j / 16, i = j % 16; return (g * 8 + i % 8, i >= 8) }
        let t = j - full * 16
        return (full * 8 + t / 2, t % 2 == 1)
    }

    /// Row r dequantized (reference semantics), for tests and reports.
    public func dequantizedRow(_ r: Int) -> [Float] {
        (0..<dim).map { ReferenceQuantized.element(data.pointer + r * rowBytes, $0, dim: dim, dtype: dtype) }
    }

    /// Bytes of the whole table.
    public var byteCount: Int { rows * rowBytes }
}
