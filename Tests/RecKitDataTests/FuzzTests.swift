import Foundation
import RecKitCore
@testable import RecKitData
import Testing

/// Random and mutated Criteo/libFM lines through the byte parsers, checked against slow String-based reference
/// parsers: both must agree on accept/reject, and on every value when accepted. No crash, no silent wrong value.
/// RECKIT_FUZZ_CASES raises the case count (default 100,000 per format).
@Suite("Parser fuzzing")
struct FuzzTests {
    static var cases: Int { ProcessInfo.processInfo.environment["RECKIT_FUZZ_CASES"].flatMap(Int.init) ?? 100_000 }

    static let alphabet: [UInt8] = Array("0123456789abcdefABCDEF-+\t :.xz\r".utf8) + [0, 0x80, 0xFF, 0xC3, 0x20]

    static func mutate(_ line: [UInt8], _ rng: inout SeededRandom) -> [UInt8] {
        var l = line
        for _ in 0..<(1 + rng.nextBelow(3)) {
            switch rng.nextBelow(5) {
            case 0 where !l.isEmpty: l[rng.nextBelow(l.count)] = alphabet[rng.nextBelow(alphabet.count)]
            case 1: l.insert(alphabet[rng.nextBelow(alphabet.count)], at: rng.nextBelow(l.count + 1))
            case 2 where !l.isEmpty: l.remove(at: rng.nextBelow(l.count))
            case 3 where !l.isEmpty: l = Array(l.prefix(rng.nextBelow(l.count)))
            default: l += l.prefix(rng.nextBelow(8))
            }
        }
        return l
    }

    static func criteoLine(_ rng: inout SeededRandom) -> [UInt8] {
        var f = [String(rng.nextBelow(2))]
        for _ in 0..<13 { f.append(rng.nextBelow(5) == 0 ? "" : String(rng.nextBelow(100_000) - 10)) }
        for _ in 0..<26 { f.append(rng.nextBelow(6) == 0 ? "" : String(UInt32(truncatingIfNeeded: rng.next()), radix: 16)) }
        return Array(f.joined(separator: "\t").utf8)
    }

    /// Reference Criteo parser on Strings: (label, dense, categorical) or nil.
    static func referenceCriteo(_ bytes: [UInt8]) -> (Float, [Int64?], [UInt64])? {
        guard let s = String(validating: bytes, as: UTF8.self) else { return nil }
        let f = s.split(separator: "\t", omittingEmptySubsequences: false)
        guard f.count == 40, f[0] == "0" || f[0] == "1" else { return nil }
        var dense: [Int64?] = []
        for x in f[1...13] {
            if x.isEmpty { dense.append(nil); continue }
            let digits = x.hasPrefix("-") || x.hasPrefix("+") ? x.dropFirst() : x[...]
            guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int64(x) else { return nil }
            dense.append(v)
        }
        var cats: [UInt64] = []
        for x in f[14...39] {
            if x.isEmpty { cats.append(0); continue }
            guard x.count <= 16, x.allSatisfy({ $0.isHexDigit && $0.isASCII }), let v = UInt64(x, radix: 16) else { return nil }
            cats.append(v)
        }
        return (f[0] == "1" ? 1 : 0, dense, cats)
    }

    @Test("Criteo: byte parser agrees with the reference on random and mutated lines")
    func criteo() {
        var rng = SeededRandom(seed: 2024)
        var format = CriteoFormat()
        var row = RawRow()
        var accepted = 0
        for i in 0..<Self.cases {
            let base = Self.criteoLine(&rng)
            let line = i % 4 == 0 ? base : Self.mutate(base, &rng)
            let expected = Self.referenceCriteo(line)
            let ok = line.withUnsafeBufferPointer { b -> Bool in
                do throws(FieldIssue) { try format.parse(b, into: &row); return true } catch { return false }
            }
            #expect(ok == (expected != nil), "case \(i): \(String(decoding: line, as: UTF8.self).debugDescription)")
            if ok, let e = expected {
                #expect(row.label == e.0 && row.dense == e.1 && row.categorical == e.2, "case \(i)")
                accepted += 1
            }
            if !(ok == (expected != nil)) { break }
        }
        #expect(accepted > Self.cases / 5, "too few valid lines exercised the value comparison")
    }

    @Test("libFM: fixed-layout byte parser agrees with the reference on mutated lines")
    func libfm() {
        var rng = SeededRandom(seed: 7)
        var format = LibFMFormat(fixedFields: 3)
        var row = RawRow()
        for i in 0..<Self.cases {
            let base = Array("\(["1", "-1", "0"][rng.nextBelow(3)]) \(rng.nextBelow(500)):1 \(rng.nextBelow(500)):1 \(rng.nextBelow(500)):1".utf8)
            let line = i % 4 == 0 ? base : Self.mutate(base, &rng)
            let s = String(validating: line, as: UTF8.self)
            var expected: (Float, [UInt64])?
            if let s {
                let t = s.split(separator: " ", omittingEmptySubsequences: true)
                if t.count == 4, let l = Float(t[0]), [1, 0, -1].contains(l) {
                    var keys: [UInt64] = []
                    for e in t[1...] {
                        let kv = e.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                        let digits = kv[0]  // indices are plain digits: no sign
                        guard kv.count == 2, !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                              let k = Int64(kv[0]), k >= 0, let v = Float(kv[1]), v.isFinite, v == 1 else { keys = []; break }
                        keys.append(UInt64(k))
                    }
                    if keys.count == 3 && !s.hasPrefix(" ") { expected = (l == 1 ? 1 : 0, keys) }
                }
            }
            let ok = line.withUnsafeBufferPointer { b -> Bool in
                do throws(FieldIssue) { try format.parse(b, into: &row); return true } catch { return false }
            }
            #expect(ok == (expected != nil), "case \(i): \(String(decoding: line, as: UTF8.self).debugDescription)")
            if ok, let e = expected { #expect(row.label == e.0 && row.categorical == e.1, "case \(i)") }
            if !(ok == (expected != nil)) { break }
        }
    }

    @Test("converter end to end on random byte files never crashes and accounts for every line")
    func converterOnGarbage() throws {
        var rng = SeededRandom(seed: 99)
        let dir = tempDir("garbage")
        for i in 0..<200 {
            var bytes: [UInt8] = []
            for _ in 0..<rng.nextBelow(30) {
                bytes += rng.nextBelow(3) == 0 ? Self.criteoLine(&rng) : Self.mutate(Self.criteoLine(&rng), &rng)
                if rng.nextBelow(10) > 0 { bytes.append(0x0A) }
            }
            let file = dir + "/g\(i).txt"
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            for format in InputFormat.allCases {
                let r = Result { () throws(DataError) in
                    try Converter.run(ConvertOptions(format: format, inputs: [file], output: dir + "/o\(i)\(format)"))
                }
                switch r {
                case .success(let rep): #expect(rep.rows > 0)
                case .failure(let e):
                    if case .emptyInput = e {} else { Issue.record("unexpected \(e)") }
                }
            }
        }
    }
}
