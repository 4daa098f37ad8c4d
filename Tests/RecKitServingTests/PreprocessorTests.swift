import Foundation
import RecKitData
import RecKitServing
import Testing

/// Raw request rows get exactly the training-time preprocessing, in every accepted form; bad input gets a precise
/// typed error.
@Suite("Serving preprocessing")
struct PreprocessorTests {
    static func preprocessor() throws -> Preprocessor {
        try Preprocessor(schema: ServingFixtures.schema(), vocabularies: [])
    }

    @Test("TSV, positional JSON and named JSON rows equal what `reckit data convert` + the batch loader produce")
    func matchesTrainingPipeline() throws {
        let lines = ServingFixtures.tsvLines(50)
        let dir = NSTemporaryDirectory() + "reckit-pre-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/rows.txt"
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        var o = ConvertOptions(format: .criteo, inputs: [file], output: dir + "/shards")
        o.maxIndRange = ServingFixtures.hashRows
        o.onError = .fail
        _ = try Converter.run(o)
        let loader = try BatchLoader(dataset: try ShardDataset(directory: dir + "/shards"), options: LoaderOptions(batchSize: 50))
        let batch = try #require(loader.next())

        let p = try Self.preprocessor()
        let tsv = try p.prepareTSV(Array(lines.joined(separator: "\r\n").utf8))
        #expect(tsv.count == 50)
        #expect(tsv.dense == batch.dense)
        #expect(tsv.ids == batch.sparse.values)
        let json = try p.prepareJSON(Array(ServingFixtures.jsonRows(lines).utf8))
        #expect(json == tsv)
        // Named form of the first row (absent features = missing).
        let f = lines[0].split(separator: "\t", omittingEmptySubsequences: false)
        var named: [String] = []
        for j in 0..<13 where !f[j].isEmpty { named.append("\"I\(j + 1)\":\(f[j])") }
        for j in 0..<26 where !f[13 + j].isEmpty { named.append("\"C\(j + 1)\":\"\(f[13 + j])\"") }
        let one = try p.prepareJSON(Array("{\"instances\":[{\(named.joined(separator: ","))}]}".utf8))
        #expect(one == tsv.slice(0..<1))
    }

    @Test("bad input: precise messages and the right status", arguments: [
        ("{\"rows\": [", 400, "not valid JSON"),
        ("[1,2]", 422, "JSON object"),
        ("{\"rows\": []}", 422, "empty batch"),
        ("{\"instances\": []}", 422, "empty batch"),
        ("{\"rows\": [{\"dense\": [1,2], \"categorical\": []}]}", 422, "rows[0].dense has 2 values"),
        ("{\"rows\": [{\"dense\": [1,2,3,4,5,6,7,8,9,10,11,12,\"x\"], \"categorical\": []}]}", 422, "rows[0].dense[12]"),
        ("{\"rows\": [{\"dense\": [1,2,3,4,5,6,7,8,9,10,11,12,1.5], \"categorical\": []}]}", 422, "expected an integer"),
        ("{\"rows\": [{\"dense\": [1,2,3,4,5,6,7,8,9,10,11,12,1e999], \"categorical\": []}]}", 422, "1e999 is beyond Double's range"),
        ("{\"rows\": [{\"dense\": [NaN,2,3,4,5,6,7,8,9,10,11,12,13], \"categorical\": []}]}", 422, "non-finite"),
        ("{\"rows\": [{\"dense\": [-Infinity,2,3,4,5,6,7,8,9,10,11,12,13], \"categorical\": []}]}", 422, "non-finite"),
        ("{\"rows\": [1,]}", 422, "rows[0] must be an object"),
        ("{\"rows\": [,]}", 400, "at byte"),
        ("{\"rows\": []} x", 400, "unexpected data"),
        ("{\"rows\": [\"\\q\"]}", 400, "bad escape"),
        ("{\"instances\": [{\"I1\": 3, \"bogus\": 1}]}", 422, "unknown feature 'bogus'"),
        ("{\"instances\": [{\"C3\": \"xyz\"}]}", 422, "not a valid hex id"),
        ("{\"instances\": [{\"C3\": -4}]}", 422, "negative id"),
        ("{\"rows\": [], \"extra\": 1}", 422, "unexpected keys"),
        ("{\"something\": 1}", 422, "\"rows\""),
        ("{\"rows\": [{\"dense\": [true,2,3,4,5,6,7,8,9,10,11,12,13], \"categorical\": []}]}", 422, "a boolean"),
        ("{\"rows\": [7]}", 422, "rows[0] must be an object"),
    ])
    func badJSON(body: String, status: Int, message: String) throws {
        let p = try Self.preprocessor()
        do {
            _ = try p.prepareJSON(Array(body.utf8))
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.status == status, "\(body): \(error)")
            #expect(error.message.contains(message), "\(body): \(error.message)")
        }
    }

    @Test("the request JSON reader: escapes, numbers, whitespace, nesting")
    func jsonReader() throws {
        let p = try Self.preprocessor()
        let line = ServingFixtures.tsvLines(1)[0]
        let plain = ServingFixtures.jsonRows([line])
        // Same rows with whitespace everywhere and the hex ids written with \u escapes.
        let spaced = plain.replacingOccurrences(of: ",", with: " ,\n\t ").replacingOccurrences(of: ":", with: " : ")
        let escaped = plain.replacingOccurrences(of: "\"a", with: "\"\\u0061")
        #expect(try p.prepareJSON(Array(spaced.utf8)) == p.prepareJSON(Array(plain.utf8)))
        #expect(try p.prepareJSON(Array(escaped.utf8)) == p.prepareJSON(Array(plain.utf8)))
        // 1.0 is a float, not a count; a huge integer overflows to a float: both refused with the field named.
        let cats = (0..<26).map { _ in "\"1a\"" }.joined(separator: ",")
        for (bad, message) in [("1.0", "dense[0]: expected an integer count, got 1.0"), ("99999999999999999999", "dense[0]: expected an integer count")] {
            let body = "{\"rows\":[{\"dense\":[\(bad),1,1,1,1,1,1,1,1,1,1,1,1],\"categorical\":[\(cats)]}]}"
            do { _ = try p.prepareJSON(Array(body.utf8)); Issue.record("accepted \(bad)") } catch {
                #expect(error.status == 422 && error.message.contains(message), "\(error.message)")
            }
        }
    }

    @Test("bad TSV: line and column named")
    func badTSV() throws {
        let p = try Self.preprocessor()
        let good = ServingFixtures.tsvLines(2)
        for (body, message) in [(good[0] + "\n" + "1\t2\t3", "line 2"), (good[0].replacingOccurrences(of: "\t", with: " "), "line 1"), ("", "empty batch")] {
            do {
                _ = try p.prepareTSV(Array(body.utf8))
                Issue.record("accepted \(body.prefix(30))")
            } catch {
                #expect(error.status == 422)
                #expect(error.message.contains(message), "\(error.message)")
            }
        }
    }
}
