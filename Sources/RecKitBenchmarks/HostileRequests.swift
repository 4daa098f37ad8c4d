import Foundation
import RecKitCore

/// Malformed `/v1/predict` requests for a Criteo-layout model (13 dense, 26 categorical features), each of which must
/// get a 4xx with a message naming what is wrong, and none of which may take the server down: wrong types, missing and
/// unknown fields, huge numbers, deep nesting, invalid UTF-8, truncations, binary garbage, wrong content types,
/// too many rows, and bodies over the size limit. Deterministic for a seed. Used by the serving tests (every request
/// through the router) and by `reckit bench serve --hostile` (the same bytes over sockets, beside well-formed load).
public enum HostileRequests {
    public struct Request: Sendable {
        public var name: String
        public var contentType: String
        public var body: [UInt8]
    }

    static func row(dense: String, cats: String) -> String { "{\"dense\":[\(dense)],\"categorical\":[\(cats)]}" }
    static let goodDense = (1...13).map(String.init).joined(separator: ",")
    static let goodCats = (1...26).map { "\"\(String($0 * 4097, radix: 16))\"" }.joined(separator: ",")

    /// The corpus: at least 200 requests. `maxBodyBytes` sizes the over-limit bodies, `maxRows` the too-many-rows ones.
    public static func corpus(seed: UInt64 = 1, maxBodyBytes: Int = 8 << 20, maxRows: Int = 65_536) -> [Request] {
        var out: [Request] = []
        func add(_ name: String, _ body: String, type: String = "application/json") { out.append(Request(name: name, contentType: type, body: Array(body.utf8))) }
        func addBytes(_ name: String, _ body: [UInt8], type: String = "application/json") { out.append(Request(name: name, contentType: type, body: body)) }
        let good = "{\"rows\":[\(row(dense: goodDense, cats: goodCats))]}"
        // Wrong types in every position of the dense and categorical lists.
        let badValues = ["\"x\"", "true", "{}", "[]", "1.5", "-1e3", "\"1\""]
        for j in stride(from: 0, to: 13, by: 2) {
            for v in badValues {
                var d = (1...13).map(String.init); d[j] = v
                add("dense[\(j)] = \(v)", "{\"rows\":[\(row(dense: d.joined(separator: ","), cats: goodCats))]}")
            }
        }
        for f in stride(from: 0, to: 26, by: 3) {
            for v in ["1.5", "true", "{}", "[1,2]", "\"zz\"", "-7", "\"123456789abcdef01\""] {
                var c = (1...26).map { "\"\(String($0, radix: 16))\"" }; c[f] = v
                add("categorical[\(f)] = \(v)", "{\"rows\":[\(row(dense: goodDense, cats: c.joined(separator: ",")))]}")
            }
        }
        // Missing, extra and unknown fields; wrong shapes.
        for body in ["{}", "{\"rows\":{}}", "{\"rows\":[[]]}", "{\"rows\":[{}]}", "{\"rows\":[{\"dense\":[]}]}",
                     "{\"rows\":[{\"categorical\":[]}]}", "{\"rows\":[],\"instances\":[]}", "{\"instances\":[{\"I99\":1}]}",
                     "{\"instances\":[[1,2]]}", "{\"instances\":{}}", "{\"rows\":[{\"dense\":[1],\"categorical\":[],\"x\":1}]}",
                     "{\"instances\":[{\"C1\":[\"a\",\"b\"]}]}", "{\"instances\":[{\"I1\":\"3\"}]}", "{\"rows\":null}", "null", "[]", "7", "\"rows\""] {
            add("shape \(body.prefix(30))", body)
        }
        // Huge and non-finite numbers.
        for v in ["1e999", "-1e999", "99999999999999999999999999", "1e308", "NaN", "Infinity", "-Infinity", "1e-999", "18446744073709551616"] {
            var d = (1...13).map(String.init); d[0] = v
            add("huge \(v)", "{\"rows\":[\(row(dense: d.joined(separator: ","), cats: goodCats))]}")
            add("huge id \(v)", "{\"instances\":[{\"C2\":\(v)}]}")
        }
        // Deep nesting.
        for depth in [65, 100, 1_000, 10_000, 100_000] {
            add("nesting \(depth)", String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
            add("nesting in rows \(depth)", "{\"rows\":" + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}")
        }
        // Invalid UTF-8 in keys, strings and outside strings.
        var rng = SeededRandom(seed: seed)
        for bad in [[0xFF], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x80], [0xC3]] as [[UInt8]] {
            addBytes("utf8 in value \(bad)", Array("{\"instances\":[{\"C1\":\"a".utf8) + bad + Array("\"}]}".utf8))
            addBytes("utf8 in key \(bad)", Array("{\"instances\":[{\"".utf8) + bad + Array("\":1}]}".utf8))
            addBytes("utf8 outside \(bad)", Array("{\"rows\":".utf8) + bad + Array("}".utf8))
        }
        // Truncations of a good body at many points.
        let g = Array(good.utf8)
        for cut in stride(from: 1, to: g.count - 1, by: max(1, g.count / 60)) { addBytes("truncated at \(cut)", Array(g.prefix(cut))) }
        // Binary garbage and random byte flips of a good body.
        for k in 0..<20 {
            addBytes("garbage \(k)", (0..<(16 + rng.nextBelow(200))).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            var flipped = g
            for _ in 0..<3 { flipped[rng.nextBelow(flipped.count)] = [0x22, 0x7B, 0x5D, 0x00, 0xFF, 0x5C][rng.nextBelow(6)] }
            if flipped != g { addBytes("flipped \(k)", flipped) }
        }
        // Escapes.
        for e in ["\\q", "\\u12", "\\ud800", "\\udc00x", "\\", "\\u00zz"] { add("escape \(e)", "{\"instances\":[{\"C1\":\"\(e)\"}]}") }
        // Content types and TSV bodies.
        for t in ["image/png", "application/xml", "text/html", "multipart/form-data"] { add("content type \(t)", good, type: t) }
        for tsv in ["1\t2\t3", String(repeating: "\t", count: 37), "a\t" + String(repeating: "1\t", count: 37) + "x",
                    String(repeating: "1\t", count: 13) + String(repeating: "zz\t", count: 25) + "zz", "\u{0}\u{1}\u{2}"] {
            add("tsv \(tsv.prefix(12))", tsv, type: "text/tab-separated-values")
        }
        add("empty body", "")
        add("empty rows", "{\"rows\":[]}")
        // Too many rows (413) and over-limit bodies (413).
        add("too many rows", "{\"rows\":[" + Array(repeating: "{}", count: maxRows + 1).joined(separator: ",") + "]}")
        let big = max(maxBodyBytes + 1, 10 << 20)
        addBytes("10 MB of spaces", [UInt8](repeating: 0x20, count: big))
        addBytes("10 MB string", Array("{\"rows\":\"".utf8) + [UInt8](repeating: 0x61, count: big) + Array("\"}".utf8))
        return out
    }
}
