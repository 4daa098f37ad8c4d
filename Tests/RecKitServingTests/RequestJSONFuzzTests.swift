import Foundation
@testable import RecKitServing
import RecKitCore
import Testing

/// The hand-written request parser against Foundation's JSON parser on generated and mutated documents: the same
/// accept/reject decision for every input, and no crash. RECKIT_FUZZ_CASES sets the count (default 1,000,000).
@Suite("RequestJSON differential fuzz")
struct RequestJSONFuzzTests {
    struct Generator {
        var rng: SeededRandom

        mutating func pick<T>(_ xs: [T]) -> T { xs[rng.nextBelow(xs.count)] }

        mutating func space() -> String { rng.nextBelow(4) == 0 ? pick([" ", "\n", "\t", "\r\n", "  "]) : "" }

        mutating func string() -> String {
            var s = "\""
            for _ in 0..<rng.nextBelow(8) {
                switch rng.nextBelow(12) {
                case 0: s += pick(["\\n", "\\t", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\r"])
                case 1: s += String(format: "\\u%04x", rng.nextBelow(0xD800))
                case 2: s += "\\ud83d\\ude00"
                case 3: s += pick(["é", "猫", "🚀", "ß"])
                default: s += String(Character(Unicode.Scalar(UInt8(97 + rng.nextBelow(26)))))
                }
            }
            return s + "\""
        }

        mutating func number() -> String {
            switch rng.nextBelow(8) {
            case 0: return String(rng.nextBelow(10))
            case 1: return "-" + String(rng.nextBelow(100000))
            case 2: return String(format: "%.3f", Double(rng.nextBelow(100000)) / 7)
            case 3: return "\(rng.nextBelow(9) + 1)e\(pick(["", "+", "-"]))\(rng.nextBelow(30))"
            case 4: return pick(["0", "-0", "0.5", "1E2", "9223372036854775807", "-9223372036854775808", "18446744073709551616", "1e308"])
            default: return String(rng.nextBelow(5000))
            }
        }

        mutating func value(_ depth: Int) -> String {
            let k = depth > 6 ? rng.nextBelow(5) : rng.nextBelow(7)
            switch k {
            case 0: return number()
            case 1: return string()
            case 2: return pick(["true", "false", "null"])
            case 3, 4: return number()
            case 5:
                let n = rng.nextBelow(5)
                return "[" + space() + (0..<n).map { _ in value(depth + 1) }.joined(separator: space() + "," + space()) + space() + "]"
            default:
                let n = rng.nextBelow(5)
                // Distinct keys: Foundation never converts a value that a duplicate key overwrites (so it accepts
                // {"a": 1e999, "a": 1}), a quirk not worth copying.
                return "{" + space() + (0..<n).map { k in String(string().dropLast()) + "\(k)\"" + space() + ":" + space() + value(depth + 1) }
                    .joined(separator: ",") + space() + "}"
            }
        }

        /// A generated document, then 0–3 mutations.
        mutating func input() -> [UInt8] {
            var b = Array((space() + value(0) + space()).utf8)
            let special: [UInt8] = Array("{}[]:,\"\\-+.eE0123456789 tnfu".utf8) + [0x00, 0x0A, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xE2, 0xED, 0xF0, 0xF8, 0xFF]
            for _ in 0..<(rng.nextBelow(2) == 0 ? 0 : 1 + rng.nextBelow(3)) {
                guard !b.isEmpty else { break }
                let at = rng.nextBelow(b.count)
                switch rng.nextBelow(6) {
                case 0: b[at] = special[rng.nextBelow(special.count)]
                case 1: b.insert(special[rng.nextBelow(special.count)], at: at)
                case 2: b.remove(at: at)
                case 3: b = Array(b.prefix(at))
                case 4: b[at] = UInt8(truncatingIfNeeded: rng.next())
                default: let end = min(b.count, at + 1 + rng.nextBelow(4)); b.insert(contentsOf: b[at..<end], at: at)
                }
            }
            return b
        }
    }

    /// Foundation reads UTF-16/32 when the bytes look like it; RecKit reads UTF-8 only (documented). Such inputs
    /// (a NUL byte among the first four, or a byte-order mark) are not compared.
    static func foundationMayReadOtherEncoding(_ b: [UInt8]) -> Bool {
        b.prefix(4).contains(0) || b.starts(with: [0xEF, 0xBB, 0xBF]) || b.starts(with: [0xFE, 0xFF]) || b.starts(with: [0xFF, 0xFE])
    }

    @Test("same accept/reject as Foundation on generated and mutated inputs; no crash")
    func differential() throws {
        let n = ProcessInfo.processInfo.environment["RECKIT_FUZZ_CASES"].flatMap(Int.init) ?? 1_000_000
        var g = Generator(rng: SeededRandom(seed: 2026))
        var compared = 0, accepted = 0
        var mismatches: [String] = []
        for _ in 0..<n {
            let input = g.input()
            let ours: Bool   // every input goes through RecKit's reader (no crash); the comparison skips other encodings
            do { _ = try RequestJSON.parse(input); ours = true } catch { ours = false }
            if Self.foundationMayReadOtherEncoding(input) { continue }
            let theirs = (try? JSONSerialization.jsonObject(with: Data(input), options: [.fragmentsAllowed])) != nil
            compared += 1
            if ours { accepted += 1 }
            if ours != theirs && mismatches.count < 10 {
                mismatches.append("ours \(ours), Foundation \(theirs): \(String(decoding: input.prefix(120), as: UTF8.self)) \(input.prefix(40).map { String($0, radix: 16) })")
            }
        }
        print("RequestJSON differential fuzz: \(n) inputs, \(compared) compared with Foundation, \(accepted) accepted by both, \(mismatches.count) mismatches")
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
        #expect(compared > n * 9 / 10 && accepted > compared / 5 && accepted < compared * 9 / 10, "compared \(compared), accepted \(accepted)")
    }

    @Test("nesting deeper than 64 is refused with a clear message (Foundation allows 512: the one documented difference)")
    func depth() {
        let deep = Array((String(repeating: "[", count: 65) + String(repeating: "]", count: 65)).utf8)
        do { _ = try RequestJSON.parse(deep); Issue.record("accepted depth 65") } catch { #expect(error.message.contains("deeper than 64")) }
        let ok = Array((String(repeating: "[", count: 64) + String(repeating: "]", count: 64)).utf8)
        #expect((try? RequestJSON.parse(ok)) != nil)
    }
}
