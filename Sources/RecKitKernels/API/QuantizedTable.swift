import RecKitCore

/// Storage type of a quantized embedding table.
public enum QuantizedDType: String, Sendable, Codable, CaseIterable {
    /// IEEE half per element, no scale.
    case fp16
    /// uint8 per element with a per-row fp16 scale and bias: x ≈ q·scale + bias.
    case int8
    /// uint4 per element (two per byte) with a per-row fp16 scale and bias.
    case int4

    public var bits: Int {
        switch self { case .fp16: 16; case .int8: 8; case .int4: 4 }
    }

    /// Bytes of one row of `dim` elements: the payload, then (int8/int4) scale and bias as two fp16.
    public func rowBytes(dim: Int) -> Int {
        switch self {
        case .fp16: return 2 * dim
        case .int8: return dim + 4
        case .int4: return (dim + 1) / 2 + 4
        }
    }
}

/// A row-wise quantized embedding table (FBGEMM-style: per-row scale and bias, stored as fp16 after the payload).
///
/// Per row x (dim D): bias = min(x), scale = (max(x) − min(x)) / (2^bits − 1), both rounded to fp16 first; then
/// q_j = clamp(round((x_j − bias) / scale), 0, 2^bits − 1) with the rounded values (so dequantization
/// q·scale + bias is within scale/2 of x_j, plus fp16 rounding of bias). A constant row has scale 0 and q = 0.
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

    /// Quantizes a float table (rows × dim, row-major).
    public static func quantize(_ weights: UnsafePointer<Float>, rows: Int, dim: Int, dtype: QuantizedDType) -> QuantizedTable {
        let rb = dtype.rowBytes(dim: dim)
        let data = AlignedBuffer<UInt8>(count: (rows * rb + 3) / 4 * 4)  // whole 4-byte words (checkpoint tensors)
        for r in 0..<rows { quantizeRow(weights + r * dim, dim: dim, dtype: dtype, into: data.pointer + r * rb) }
        // Sizes match by construction.
        return try! QuantizedTable(dtype: dtype, rows: rows, dim: dim, data: data)
    }

    static func quantizeRow(_ x: UnsafePointer<Float>, dim: Int, dtype: QuantizedDType, into row: UnsafeMutablePointer<UInt8>) {
        if dtype == .fp16 {
            let h = UnsafeMutableRawPointer(row)
            for j in 0..<dim { h.storeBytes(of: Float16(x[j]).bitPattern, toByteOffset: 2 * j, as: UInt16.self) }
            return
        }
        var lo = Float.infinity, hi = -Float.infinity
        for j in 0..<dim { lo = min(lo, x[j]); hi = max(hi, x[j]) }
        let levels = Float((1 << dtype.bits) - 1)
        let bias = Float(Float16(lo))
        let scale = Float(Float16((hi - lo) / levels))
        let inv: Float = scale > 0 ? 1 / scale : 0
        let payload = dtype == .int8 ? dim : (dim + 1) / 2
        row.update(repeating: 0, count: payload)
        for j in 0..<dim {
            let q = UInt8(min(max(((x[j] - bias) * inv).rounded(.toNearestOrEven), 0), levels))
            if dtype == .int8 { row[j] = q } else {
                let (byte, high) = nibble(j, dim: dim)
                row[byte] |= high ? q << 4 : q
            }
        }
        let sb = UnsafeMutableRawPointer(row + payload)
        sb.storeBytes(of: Float16(scale).bitPattern, toByteOffset: 0, as: UInt16.self)
        sb.storeBytes(of: Float16(bias).bitPattern, toByteOffset: 2, as: UInt16.self)
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
