import Foundation
@testable import RecKitData
import Testing

/// Every byte of the header and length regions of a shard and a vocabulary, mutated in several ways: each mutated file
/// is either refused with a typed error naming the file, or loads equal to the original. Never a crash, a hang or a
/// huge allocation.
@Suite("File mutation fuzz: shards and vocabularies")
struct FileMutationTests {
    static let mutations: [(String, @Sendable (UInt8) -> UInt8)] = [
        ("xor 01", { $0 ^ 0x01 }), ("xor 80", { $0 ^ 0x80 }), ("zero", { _ in 0 }), ("ff", { _ in 0xFF }), ("xor 7f", { $0 ^ 0x7F }),
    ]

    /// Positions of the shard's fixed header (magic … block count) and of every block header.
    static func shardRegions(_ bytes: [UInt8]) -> [Int] {
        var r = ByteReader(data: Data(bytes), path: "")
        var positions = Array(0..<24)
        let h = Int(bytes[16]) | Int(bytes[17]) << 8 | Int(bytes[18]) << 16 | Int(bytes[19]) << 24
        positions += Array((24 + h)..<(24 + h + 16))
        r.offset = 24 + h + 16
        while r.offset + 24 <= bytes.count {
            positions += Array(r.offset..<(r.offset + 24))
            let len = bytes[(r.offset + 8)..<(r.offset + 16)].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            r.offset += 24 + len
        }
        // The schema header itself (JSON text; its checksum catches any change).
        positions += Array(24..<(24 + h))
        return positions
    }

    @Test("shard: ≥ 2,500 mutated files, each refused (typed, naming the file) or equal to the original")
    func shards() throws {
        let (schema, cols) = ShardFormatTests.sample()
        let dir = tempDir("mutate-shard")
        let path = dir + "/s.rks"
        try ShardFile.write(cols, schema: schema, to: path)
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var tried = 0, refused = 0
        let out = dir + "/m.rks"
        for p in Self.shardRegions(good) {
            for (_, f) in Self.mutations {
                var b = good
                b[p] = f(b[p])
                if b == good { continue }
                try Data(b).write(to: URL(fileURLWithPath: out))
                tried += 1
                do {
                    let (s2, c2) = try ShardFile.read(out)
                    #expect(s2 == schema && c2 == cols, "mutation at byte \(p) loaded different data")
                } catch {
                    refused += 1
                    #expect(error.description.contains(out), "\(error)")
                }
            }
        }
        #expect(tried >= 2_500)
        print("shard mutation fuzz: \(tried) files, \(refused) refused with a typed error, \(tried - refused) equal to the original")
    }

    @Test("vocabulary: every byte of its counts, checksums and magic, mutated: refused or equal")
    func vocabularies() throws {
        let dir = tempDir("mutate-vocab")
        let enc = CategoricalEncoder(minCount: 1, vocabularies: [[5, 9, 2], [], [77, 1 << 40]])
        try enc.writeVocabulary(to: dir)
        let path = dir + "/" + CategoricalEncoder.vocabularyFile
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // magic + count (12), then per feature: count (8), keys, crc (4).
        var regions = Array(0..<12), at = 12
        for v in enc.vocabularies { regions += Array(at..<(at + 8)); at += 8 + 8 * v.count; regions += Array(at..<(at + 4)); at += 4 }
        var tried = 0
        for p in regions {
            for (_, f) in Self.mutations {
                var b = good
                b[p] = f(b[p])
                try Data(b).write(to: URL(fileURLWithPath: path))
                tried += 1
                do {
                    #expect(try CategoricalEncoder.readVocabulary(from: dir) == enc.vocabularies, "mutation at \(p)")
                } catch {
                    #expect(error.description.contains(path), "\(error)")
                }
            }
        }
        #expect(tried >= 200)
        print("vocabulary mutation fuzz: \(tried) files")
    }
}
