import Foundation
@testable import RecKitData
import Testing

@Suite("Shard format")
struct ShardFormatTests {
    static func sample() -> (DatasetSchema, ShardColumns) {
        let schema = DatasetSchema(source: "test", hasLabel: true, denseNames: ["a", "b"],
                                   sparse: [SparseFeature(name: "one", cardinality: 10),
                                            SparseFeature(name: "multi", cardinality: 5, multiHot: true, weighted: true)],
                                   hasTimestamps: true,
                                   preprocessing: PreprocessingSpec(categorical: .hash(modulo: 10), rawIDs: "decimal"))
        var c = ShardColumns(denseCount: 2, sparseCount: 2)
        for r in 0..<3 {
            c.labels.append(Float(r % 2))
            c.dense += [Float(r), Float(r) * 0.5]
            c.ids[0].append(Int64(r * 3))
            c.lengths[1].append(Int32(r))
            for k in 0..<r { c.ids[1].append(Int64(k)); c.weights[1].append(Float(k) + 0.25) }
            c.timestamps.append(Int64(1_000_000_000 + r))
            c.commitRow()
        }
        return (schema, c)
    }

    @Test("write → read round trip is exact")
    func roundTrip() throws {
        let (schema, cols) = Self.sample()
        let path = tempDir("shard") + "/s.rks"
        try ShardFile.write(cols, schema: schema, to: path)
        let (s2, c2) = try ShardFile.read(path)
        #expect(s2 == schema && c2 == cols)
        #expect(c2.offsets(feature: 1) == [0, 0, 1, 3])
        #expect(c2.offsets(feature: 0) == [0, 1, 2, 3])
    }

    func expectBad(_ bytes: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = tempDir("bad-\(fragment.count)-\(bytes.count)") + "/s.rks"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = Result { () throws(DataError) in try ShardFile.read(path) }
        guard case .failure(let e) = r else { Issue.record("accepted a bad shard", sourceLocation: sourceLocation); return }
        #expect(e.description.contains(fragment) && e.description.contains(path), "\(e)", sourceLocation: sourceLocation)
    }

    @Test("wrong magic, unsupported version, corrupted payload or header, truncation: clear errors naming the file")
    func rejectsBadShards() throws {
        let (schema, cols) = Self.sample()
        let path = tempDir("good") + "/s.rks"
        try ShardFile.write(cols, schema: schema, to: path)
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var b = good; b[0] = UInt8(ascii: "X")
        try expectBad(b, "magic")
        b = good; b[8] = 3
        try expectBad(b, "version: 3 is not supported")
        b = good; b[b.count - 5] ^= 0x40
        try expectBad(b, "checksum mismatch")
        b = good; b[30] ^= 0x01
        try expectBad(b, "header: checksum mismatch")
        try expectBad(Array(good.prefix(good.count - 7)), "truncated")
        try expectBad([], "truncated")
    }

    @Test("manifest: missing, wrong format, and schema/row mismatches are refused")
    func manifest() throws {
        let dir = tempDir("manifest")
        #expect(throws: DataError.self) { try ShardDataset(directory: dir) }
        let (schema, cols) = Self.sample()
        try ShardFile.write(cols, schema: schema, to: dir + "/a.rks")
        try Manifest(schema: schema, shards: [.init(file: "a.rks", rows: 4, bytes: 0)]).write(to: dir)
        let ds = try ShardDataset(directory: dir)
        #expect(throws: DataError.self) { try ds.shard(0) }
        try Data("{\"format\":\"other\"}".utf8).write(to: URL(fileURLWithPath: dir + "/manifest.json"))
        #expect(throws: DataError.self) { try ShardDataset(directory: dir) }
    }
}

@Suite("Interactions and Avazu-style inputs")
struct InteractionFormatTests {
    @Test("generic user,item[,rating][,timestamp] CSV with and without header; string ids hashed")
    func generic() throws {
        let dir = tempDir("generic")
        try "user,item,rating\nalice,book1,4\nbob,book1,5\nalice,book2,1\n".write(toFile: dir + "/a.csv", atomically: true, encoding: .utf8)
        try "1,10\n2,10\n1,11\n".write(toFile: dir + "/b.csv", atomically: true, encoding: .utf8)
        let a = try Converter.run(ConvertOptions(format: .interactions, inputs: [dir + "/a.csv"], output: dir + "/oa"))
        let b = try Converter.run(ConvertOptions(format: .interactions, inputs: [dir + "/b.csv"], output: dir + "/ob"))
        #expect(a.rows == 3 && b.rows == 3 && a.skipped == 0 && b.skipped == 0)
        let (sa, ca) = try readAll(dir + "/oa"), (_, cb) = try readAll(dir + "/ob")
        #expect(ca[0].labels == [4, 5, 1] && cb[0].labels == [1, 1, 1], "rating, or 1 when absent")
        #expect(ca[0].ids[0] == [1, 2, 1] && ca[0].ids[1] == [1, 1, 2], "vocabulary ids in first-seen order")
        #expect(sa.sparse.map(\.cardinality) == [3, 3])
    }
}
