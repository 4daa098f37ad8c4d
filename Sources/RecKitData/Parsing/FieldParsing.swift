/// Byte-level field parsers shared by the text formats. They return nil on malformed input; callers turn
/// that into a `RowIssue` with the column.
enum FieldParsing {
    /// Optional sign then 1–18 decimal digits.
    @inline(__always) static func int64(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        if n == 0 { return nil }
        var i = 0, neg = false
        if p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+") { neg = p[0] == UInt8(ascii: "-"); i = 1 }
        if i == n || n - i > 18 { return nil }
        var v: Int64 = 0
        while i < n {
            let d = p[i] &- 48
            if d > 9 { return nil }
            v = v &* 10 &+ Int64(d)
            i += 1
        }
        return neg ? -v : v
    }

    /// 1–16 hexadecimal digits (either case).
    @inline(__always) static func hex(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64? {
        if n == 0 || n > 16 { return nil }
        var v: UInt64 = 0
        for i in 0..<n {
            let c = p[i]
            let d: UInt8
            switch c {
            case 48...57: d = c - 48
            case 97...102: d = c - 87
            case 65...70: d = c - 55
            default: return nil
            }
            v = (v << 4) | UInt64(d)
        }
        return v
    }

    /// A decimal float ("1", "-1", "0.5", "1e-3"); nil if not a finite number.
    static func float(_ p: UnsafePointer<UInt8>, _ n: Int) -> Float? {
        if n == 0 || n > 64 { return nil }
        if let i = int64(p, n) { return Float(i) }
        let s = String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
        guard let v = Float(s), v.isFinite else { return nil }
        return v
    }

    /// FNV-1a 64 of the bytes: raw ids of string categoricals (Avazu).
    @inline(__always) static func fnv1a(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for i in 0..<n { h = (h ^ UInt64(p[i])) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// True when the bytes are valid UTF-8 (checked only to name the problem precisely).
    static func isValidUTF8(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var it = b.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    @inline(__always) static func hasNonASCII(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        for c in b where c >= 0x80 { return true }
        return false
    }
}

/// One parsed raw row: label, raw dense integers (nil = missing), raw categorical keys, multi-hot entries.
public struct RawRow {
    public var label: Float = 0
    public var dense: [Int64?] = []
    /// One raw key per one-hot feature (0 for a missing value, as the DLRM reference does).
    public var categorical: [UInt64] = []
    /// Multi-hot entries (key, weight) for the single multi-hot feature, when the format has one.
    public var multi: [(UInt64, Float)] = []
    public var timestamp: Int64 = 0

    public init() {}
}

/// A field-level problem found while parsing one line.
public struct FieldIssue: Error, Sendable {
    public var column: Int
    public var reason: String
    public init(column: Int, reason: String) { self.column = column; self.reason = reason }
}

/// Raw categorical tokens → the 64-bit raw keys the converters produce, for callers that receive one token at a
/// time (serving): exactly the parsers' rules, so a served row is keyed as its training row was.
public enum RawKeys {
    /// `token` under `rawIDs` ("hex": ≤ 16 hex digits; "fnv1a64": FNV-1a of the bytes; "decimal": a
    /// non-negative integer). Empty → 0 (missing, as in training). nil when the token is not valid for the scheme.
    public static func key(_ token: String, rawIDs: String) -> UInt64? {
        var t = token
        return t.withUTF8 { (b: UnsafeBufferPointer<UInt8>) -> UInt64? in
            guard let p = b.baseAddress, !b.isEmpty else { return 0 }
            switch rawIDs {
            case "hex":
                return FieldParsing.hex(p, b.count)
            case "fnv1a64":
                return FieldParsing.fnv1a(p, b.count)
            default:
                guard let v = FieldParsing.int64(p, b.count), v >= 0 else { return nil }
                return UInt64(v)
            }
        }
    }
}
