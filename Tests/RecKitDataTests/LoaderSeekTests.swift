import Foundation
import RecKitCore
@testable import RecKitData
import Testing

@Suite("Loader: seeking by shard, exact resume, 64-bit ids")
struct LoaderSeekTests {
    static func dataset(_ name: String) throws -> ShardDataset {
        let dir = tempDir(name)
        var o = SynthOptions(rows: 3000, output: dir + "/d", seed: 3)
        o.tables = [10, 50, 400]
        o.shardRows = 1000
        _ = try Synthesizer.run(o)
        return try ShardDataset(directory: dir + "/d")
    }

    static func rows(_ ds: ShardDataset, _ o: LoaderOptions) throws -> [Int64] {
        let l = try BatchLoader(dataset: ds, options: o)
        var ids: [Int64] = []
        while let b = l.next() { ids += b.sparse.values[2] }
        if let e = l.error { throw e }
        return ids
    }

    @Test("a row range or a skip starts at its shard: rows in shard 2 load while shard 0 is corrupt")
    func seeksByShard() throws {
        let ds = try Self.dataset("seek")
        var whole = LoaderOptions(batchSize: 128)
        let all = try Self.rows(ds, whole)
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: ds.directory + "/" + ds.manifest.shards[0].file))
        var o = LoaderOptions(batchSize: 128)
        o.rows = 2100..<3000
        #expect(try Self.rows(ds, o) == Array(all[2100..<3000]))
        o.rows = nil
        o.skip = 2500
        #expect(try Self.rows(ds, o) == Array(all[2500...]))
        whole.rows = 900..<1200
        #expect(throws: DataError.self) { try Self.rows(ds, whole) }
    }

    @Test("resuming with a shuffle buffer replays the draws on row numbers: the rest of the epoch is exactly the same", arguments: [1, 7, 500, 5000])
    func shuffledResume(buffer: Int) throws {
        let ds = try Self.dataset("resume-\(buffer)")
        var o = LoaderOptions(batchSize: 64)
        o.shuffleBuffer = buffer
        o.seed = 9
        o.rows = 100..<2900
        let full = try Self.rows(ds, o)
        #expect(full.count == 2800)
        for skip in [0, 64, 640, 1984, 2799] {
            o.skip = skip
            #expect(try Self.rows(ds, o) == Array(full[skip...]), "buffer \(buffer), skip \(skip)")
        }
    }

    @Test("ids beyond 2³¹: hashed modulo 3·10⁹, stored as 64-bit blocks, read back exactly")
    func bigIDs() throws {
        let dir = tempDir("bigids")
        var lines: [String] = []
        for i in 0..<200 {
            lines.append("1\t" + (0..<13).map { _ in "1" }.joined(separator: "\t") + "\t"
                         + (0..<26).map { String(format: "%08x", UInt32(truncatingIfNeeded: (i * 2_654_435_761 + $0 * 97_531))) }.joined(separator: "\t"))
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/t.txt", atomically: true, encoding: .utf8)
        var o = ConvertOptions(format: .criteo, inputs: [dir + "/t.txt"], output: dir + "/d")
        o.maxIndRange = 3_000_000_000
        _ = try Converter.run(o)
        let ds = try ShardDataset(directory: dir + "/d")
        #expect(ds.schema.sparse.allSatisfy { $0.cardinality == 3_000_000_000 })
        let ids = try Self.rows(ds, LoaderOptions(batchSize: 200))
        let expected = lines.map { UInt64($0.split(separator: "\t")[16], radix: 16)! % 3_000_000_000 }.map { Int64($0) }
        #expect(ids == expected)
        #expect(ids.contains { $0 > Int64(Int32.max) }, "some ids must pass 2³¹")
    }
}
