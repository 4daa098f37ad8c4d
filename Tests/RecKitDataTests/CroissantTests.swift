import Foundation
@testable import RecKitData
import Testing

@Suite("Croissant 1.0 metadata of converted datasets")
struct CroissantTests {
    static func dataset(_ name: String) throws -> String {
        let dir = tempDir("croissant-\(name)")
        try? FileManager.default.removeItem(atPath: dir)
        var o = SynthOptions(rows: 3000, output: dir, seed: 2)
        o.tables = [10, 50, 700]
        o.userTables = 2
        o.shardRows = 1000
        _ = try Synthesizer.run(o)
        return dir
    }

    @Test("SHA-256 matches the FIPS 180-2 test vector and coreutils' sha256sum")
    func sha256() throws {
        let dir = tempDir("sha")
        try Data("abc".utf8).write(to: URL(fileURLWithPath: dir + "/abc"))
        #expect(try Croissant.sha256(file: dir + "/abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let big = Data((0..<5_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })  // spans the 4 MiB read chunks
        try big.write(to: URL(fileURLWithPath: dir + "/big"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [dir + "/big"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(try Croissant.sha256(file: dir + "/big") == String(out.prefix(64)))
        #expect(throws: DataError.self) { try Croissant.sha256(file: dir + "/missing") }
    }

    @Test("every file listed with its checksum; one field per column; features inline; license left empty")
    func metadata() throws {
        let dir = try Self.dataset("meta")
        let doc = try #require(try JSONSerialization.jsonObject(with: Croissant.metadata(directory: dir)) as? [String: Any])
        #expect(doc["conformsTo"] as? String == "http://mlcommons.org/croissant/1.0" && doc["license"] as? String == "")
        let files = try #require(doc["distribution"] as? [[String: Any]])
        let objects = files.filter { $0["@type"] as? String == "cr:FileObject" }
        #expect(objects.map { $0["contentUrl"] as? String } == ["manifest.json", "shard-00000.rks", "shard-00001.rks", "shard-00002.rks"])
        for o in objects {
            #expect(o["sha256"] as? String == (try Croissant.sha256(file: dir + "/" + (o["contentUrl"] as! String))))
        }
        let sets = try #require(doc["recordSet"] as? [[String: Any]])
        let rows = try #require(sets.first { $0["@id"] as? String == "rows" }?["field"] as? [[String: Any]])
        let schema = try ShardDataset(directory: dir).schema
        #expect(rows.map { $0["name"] as? String } == ["label"] + schema.denseNames + schema.sparse.map(\.name))
        let features = try #require(sets.first { $0["@id"] as? String == "features" }?["data"] as? [[String: Any]])
        #expect(features.map { $0["features/cardinality"] as? Int } == schema.sparse.map(\.cardinality))
        #expect(throws: DataError.self) { try Croissant.metadata(directory: dir + "/nope") }
    }

    @Test("mlcroissant validates the metadata (skipped where .venv-tools has no mlcroissant)")
    func mlcroissant() throws {
        let tool = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".venv-tools/bin/mlcroissant").path
        guard FileManager.default.isExecutableFile(atPath: tool) else {
            print("SKIPPED: mlcroissant not installed in .venv-tools (scripts/test-tools.sh installs it)")
            return
        }
        let dir = try Self.dataset("mlc")
        try Croissant.metadata(directory: dir).write(to: URL(fileURLWithPath: dir + "/" + Croissant.fileName))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = ["validate", "--jsonld", dir + "/" + Croissant.fileName]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(out.suffix(1500))")
    }
}
