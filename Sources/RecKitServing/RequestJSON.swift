/// A small strict JSON reader for request bodies (RFC 8259: objects, arrays, strings with escapes, numbers, true,
/// false, null). Foundation's `JSONSerialization` + bridging casts cost ~45% of the server's CPU on 64-row
/// requests (NSNumber boxing, dynamic casts); this reads straight from the bytes into a plain enum.
///
/// It accepts exactly what Foundation's parser accepts (a differential fuzz test checks ≥ 1M inputs): strings must be
/// valid UTF-8 and surrogate escapes must pair, numbers have no leading zeros and must fit a Double, and one trailing
/// comma in an array or object is allowed (as Foundation allows it). Two documented differences: nesting deeper than
/// 64 is refused (Foundation allows 512), and only UTF-8 is read (Foundation also detects UTF-16 and UTF-32).
enum RequestJSON {
    case null
    case bool(Bool)
    case integer(Int64)
    /// A number with a fraction or exponent, or an integer beyond Int64; may be ±inf for 1e999.
    case number(Double)
    case string(String)
    case array([RequestJSON])
    case object([Member])

    struct Member {
        var key: String
        var value: RequestJSON
    }

    /// Parses `bytes`; a syntax error says where (`.malformed`), a non-finite literal is `.invalid`.
    static func parse(_ bytes: [UInt8]) throws(RequestError) -> RequestJSON {
        try bytes.withUnsafeBufferPointer { (b) throws(RequestError) -> RequestJSON in
            var p = Parser(b: b)
            if b.count >= 3, b[0] == 0xEF, b[1] == 0xBB, b[2] == 0xBF { p.i = 3 }  // a UTF-8 byte-order mark, as Foundation skips it
            p.skipSpace()
            let v = try p.value(depth: 0)
            p.skipSpace()
            guard p.i == b.count else { throw p.fail("unexpected data after the JSON value") }
            return v
        }
    }

    struct Parser {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0

        func fail(_ what: String) -> RequestError {
            RequestError(.malformed, "body is not valid JSON: \(what) at byte \(i)")
        }

        mutating func skipSpace() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let n = word.utf8CodeUnitCount
            guard i + n <= b.count else { return false }
            for k in 0..<n where b[i + k] != word.utf8Start[k] { return false }
            i += n
            return true
        }

        mutating func value(depth: Int) throws(RequestError) -> RequestJSON {
            guard depth < 64 else { throw fail("nesting deeper than 64") }
            guard i < b.count else { throw fail("unexpected end") }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var members: [Member] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                    let key = try string()
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    i += 1
                    skipSpace()
                    members.append(Member(key: key, value: try value(depth: depth + 1)))
                    skipSpace()
                    guard i < b.count else { throw fail("unterminated object") }
                    if b[i] == UInt8(ascii: ",") {
                        i += 1
                        skipSpace()
                        if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }  // one trailing comma, as Foundation
                        continue
                    }
                    if b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [RequestJSON] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < b.count else { throw fail("unterminated array") }
                    if b[i] == UInt8(ascii: ",") {
                        i += 1
                        skipSpace()
                        if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }  // one trailing comma, as Foundation
                        continue
                    }
                    if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                if literal("true") { return .bool(true) }
            case UInt8(ascii: "f"):
                if literal("false") { return .bool(false) }
            case UInt8(ascii: "n"):
                if literal("null") { return .null }
            case UInt8(ascii: "N"), UInt8(ascii: "I"):
                // Not JSON (Foundation refuses it too), but a value mistake rather than a syntax one: 422.
                throw RequestError(.invalid, "non-finite number at byte \(i): JSON has no NaN or Infinity")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return try number()
            default:
                break
            }
            throw fail("unexpected character '\(Character(Unicode.Scalar(b[i])))'")
        }

        mutating func number() throws(RequestError) -> RequestJSON {
            let start = i
            var negative = false
            if b[i] == UInt8(ascii: "-") {
                negative = true
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "I") { throw RequestError(.invalid, "non-finite number at byte \(start): JSON has no Infinity") }
            }
            if i + 1 < b.count, b[i] == UInt8(ascii: "0"), b[i + 1] >= 48, b[i + 1] <= 57 { throw fail("a number has no leading zeros") }
            var v: Int64 = 0, overflow = false, digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(Int64(b[i] - 48))
                overflow = overflow || o1 || o2
                v = s
                i += 1
                digits += 1
            }
            guard digits > 0 else { throw fail("a number needs digits") }
            var isFloat = false
            if i < b.count, b[i] == UInt8(ascii: ".") {
                isFloat = true
                i += 1
                var frac = 0
                while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1; frac += 1 }
                guard frac > 0 else { throw fail("a fraction needs digits") }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                isFloat = true
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                var e = 0
                while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1; e += 1 }
                guard e > 0 else { throw fail("an exponent needs digits") }
            }
            if !isFloat && !overflow { return .integer(negative ? -v : v) }
            let text = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
            guard let d = Double(text), d.isFinite else {
                throw RequestError(.invalid, "non-finite number at byte \(start): \(text.prefix(40)) is beyond Double's range")
            }
            return .number(d)
        }

        mutating func string() throws(RequestError) -> String {
            i += 1  // opening quote
            let start = i
            var plain = true
            while i < b.count, b[i] != UInt8(ascii: "\"") {
                if b[i] == UInt8(ascii: "\\") { plain = false; i += 2; continue }
                if b[i] < 0x20 { throw fail("control character in a string") }
                i += 1
            }
            guard i < b.count else { throw fail("unterminated string") }
            let raw = UnsafeBufferPointer(rebasing: b[start..<i])
            i += 1
            if plain {
                guard let s = String(validating: raw, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
                return s
            }
            var out: [UInt8] = []
            var k = 0
            while k < raw.count {
                let c = raw[k]
                guard c == UInt8(ascii: "\\") else { out.append(c); k += 1; continue }
                guard k + 1 < raw.count else { throw fail("bad escape") }
                let e = raw[k + 1]
                k += 2
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "u"):
                    guard let code = hex4(raw, k) else { throw fail("bad \\u escape") }
                    k += 4
                    var scalar = code
                    if (0xD800...0xDBFF).contains(code) {
                        // A high surrogate must be followed by an escaped low one.
                        guard k + 6 <= raw.count, raw[k] == UInt8(ascii: "\\"), raw[k + 1] == UInt8(ascii: "u"),
                              let low = hex4(raw, k + 2), (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate escape") }
                        k += 6
                        scalar = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(code) {
                        throw fail("unpaired surrogate escape")
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                default:
                    throw fail("bad escape '\\\(Character(Unicode.Scalar(e)))'")
                }
            }
            guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
            return s
        }

        /// Four hex digits at raw[k...], or nil.
        func hex4(_ raw: UnsafeBufferPointer<UInt8>, _ k: Int) -> UInt32? {
            guard k + 4 <= raw.count else { return nil }
            var v: UInt32 = 0
            for j in k..<(k + 4) {
                let c = raw[j]
                let d: UInt32
                switch c {
                case 48...57: d = UInt32(c - 48)
                case 65...70: d = UInt32(c - 55)
                case 97...102: d = UInt32(c - 87)
                default: return nil
                }
                v = v << 4 | d
            }
            return v
        }
    }
}
