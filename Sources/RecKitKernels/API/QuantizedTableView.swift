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

    /// Payload bytes of a row (before the scale and bias).
    public func payloadBytes(dim: Int) -> Int {
        switch self {
        case .fp16: return 2 * dim
        case .int8: return dim
        case .int4: return (dim + 1) / 2
        }
    }
}

/// A row-wise quantized embedding table as the kernels read it: `rows` rows of `rowBytes` bytes at `data`
/// (FBGEMM-style: the payload, then a per-row scale and bias; see `QuantizedRowLayout`). The memory belongs to the
/// caller (RecKitEmbeddings' `QuantizedTable`).
public struct QuantizedTableView: @unchecked Sendable {
    public var dtype: QuantizedDType
    public var rows: Int
    public var dim: Int
    public var data: UnsafePointer<UInt8>

    public init(dtype: QuantizedDType, rows: Int, dim: Int, data: UnsafePointer<UInt8>) {
        self.dtype = dtype; self.rows = rows; self.dim = dim; self.data = data
    }

    /// Bytes of one row.
    public var rowBytes: Int { dtype.rowBytes(dim: dim) }
}

/// The byte layout of one quantized row (shared by the kernels and the quantizer).
///
/// int8: q_j at byte j; then fp16 scale, fp16 bias. int4: elements in full groups of 16 use 8 bytes, element
/// g·16 + i in the low nibble of byte g·8 + i and element g·16 + 8 + i in its high nibble (a 16-lane unpack is then
/// a mask and a shift); the D mod 16 tail packs two consecutive elements per byte, low nibble first; then fp16 scale
/// and an int8 k (bias = k·scale). fp16: one half per element.
public enum QuantizedRowLayout {
    /// (scale, bias) of a quantized row: x ≈ q·scale + bias.
    @inline(__always) public static func scaleBias(_ row: UnsafeRawPointer, payload: Int, dtype: QuantizedDType) -> (Float, Float) {
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

    /// Element j of a row, dequantized (reference semantics).
    @inline(__always) public static func element(_ row: UnsafePointer<UInt8>, _ j: Int, dim: Int, dtype: QuantizedDType) -> Float {
        let raw = UnsafeRawPointer(row)
        switch dtype {
        case .fp16:
            return Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))
        case .int8, .int4:
            let (scale, bias) = scaleBias(raw, payload: dtype.payloadBytes(dim: dim), dtype: dtype)
            let q: UInt8
            if dtype == .int8 { q = row[j] } else {
                let (byte, high) = nibble(j, dim: dim)
                q = high ? row[byte] >> 4 : row[byte] & 0xF
            }
            return Float(q) * scale + bias
        }
    }
}
