import Foundation
@testable import RecKitData
import RecKitTestSupport
import Testing

/// The shared data sets beside the project (read-only; never copied into the repo).
enum SharedData {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data").path
    static var available: Bool { FileManager.default.fileExists(atPath: root + "/criteo/train.txt") }
    static func path(_ p: String) -> String { root + "/" + p }
}

func tempDir(_ name: String) -> String {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-test-\(getpid())-\(name)").path
    try? FileManager.default.removeItem(atPath: d)
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

func readAll(_ dir: String) throws -> (DatasetSchema, [ShardColumns]) {
    let ds = try ShardDataset(directory: dir)
    return (ds.schema, try (0..<ds.manifest.shards.count).map { try ds.shard($0) })
}

@Suite("Real data sets in ../shared/data", .enabled(if: SharedData.available, "shared/data not present"))
struct RealDataTests {
    @Test("row counts of every file", arguments: [
        ("criteo", "criteo/train.txt", 7200), ("criteo", "criteo/kaggle_test_unlabeled.txt", 1999),
        ("avazu", "avazu/train.csv", 8087), ("libfm", "frappe/frappe.validation.libfm", 57722),
        ("interactions", "movielens/ml-100k/u.data", 100_000), ("interactions", "movielens/ml-latest-small/ratings.csv", 90003),
    ])
    func rowCounts(format: String, file: String, rows: Int) throws {
        let out = tempDir("count-\(rows)")
        var o = ConvertOptions(format: InputFormat(rawValue: format)!, inputs: [SharedData.path(file)], output: out)
        o.shardRows = 4000
        let r = try Converter.run(o)
        #expect(r.rows == rows && r.skipped == 0, "\(r.errors)")
        let (_, shards) = try readAll(out)
        #expect(shards.reduce(0) { $0 + $1.rowCount } == rows)
        #expect(shards.count == (rows + 3999) / 4000)
    }

    @Test("Criteo: every value round-trips against an independent String-based parse (hash mode)")
    func criteoRoundTrip() throws {
        let file = SharedData.path("criteo/train.txt")
        let out = tempDir("criteo-rt")
        var o = ConvertOptions(format: .criteo, inputs: [file], output: out)
        o.maxIndRange = 1_000_003
        o.shardRows = 1000
        _ = try Converter.run(o)
        let (schema, shards) = try readAll(out)
        #expect(schema.hasLabel && schema.denseNames.count == 13 && schema.sparse.count == 26)
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        var r = 0
        for shard in shards {
            for i in 0..<shard.rowCount {
                let f = lines[r].split(separator: "\t", omittingEmptySubsequences: false)
                #expect(shard.labels[i] == Float(f[0])!)
                for j in 0..<13 {
                    let raw = Double(f[1 + j]).map { max($0, 0) } ?? 0
                    #expect(shard.dense[i * 13 + j] == Float(log1p(raw)), "row \(r + 1) I\(j + 1)")
                }
                for j in 0..<26 {
                    let key = f[14 + j].isEmpty ? 0 : UInt64(f[14 + j], radix: 16)!
                    #expect(shard.ids[j][i] == Int32(key % 1_000_003), "row \(r + 1) C\(j + 1)")
                }
                r += 1
            }
        }
        #expect(r == 7200)
    }

    @Test("Criteo by hand: first row of train.txt")
    func criteoFirstRowByHand() throws {
        // First row: label 0 | I1..I13 = 1 1 5 0 1382 4 15 2 181 1 2 (empty) 2 | C1 = 68fd1e64, C2 = 80e26c9b, ...
        let out = tempDir("criteo-hand")
        _ = try Converter.run(ConvertOptions(format: .criteo, inputs: [SharedData.path("criteo/train.txt")], output: out))
        let (_, shards) = try readAll(out)
        let s = shards[0]
        #expect(s.labels[0] == 0)
        #expect(s.dense[0] == Float(log1p(1.0)) && s.dense[4] == Float(log1p(1382.0)) && s.dense[3] == 0)
        #expect(s.dense[11] == 0, "I12 is empty (missing → 0)")
        #expect((0..<26).allSatisfy { s.ids[$0][0] == 1 }, "vocabulary ids start at 1 in first-seen order; 0 is OOV")
        let vocab = try CategoricalEncoder.readVocabulary(from: out)
        #expect(vocab[0][0] == 0x68fd1e64 && vocab[1][0] == 0x80e26c9b)
    }

    @Test("Criteo test file (no labels) converts without a label column; min-count folds rare ids into row 0")
    func criteoTestAndMinCount() throws {
        let out = tempDir("criteo-test")
        var o = ConvertOptions(format: .criteo, inputs: [SharedData.path("criteo/kaggle_test_unlabeled.txt")], output: out)
        o.minCount = 2
        _ = try Converter.run(o)
        let (schema, shards) = try readAll(out)
        #expect(!schema.hasLabel && shards[0].labels.isEmpty)
        guard case .vocabulary(2, let sizes) = schema.preprocessing.categorical else { Issue.record("not vocabulary"); return }
        #expect(sizes == schema.sparse.map(\.cardinality))
        #expect(shards[0].ids.flatMap { $0 }.contains(0), "some ids seen once map to the OOV row")
    }

    @Test("Frappe libFM: 10 one-hot fields, labels from 1/-1, CRLF tolerated")
    func frappe() throws {
        let out = tempDir("frappe")
        _ = try Converter.run(ConvertOptions(format: .libfm, inputs: [SharedData.path("frappe/frappe.validation.libfm")], output: out))
        let (schema, shards) = try readAll(out)
        #expect(schema.sparse.count == 10 && schema.sparse.allSatisfy { !$0.multiHot })
        let labels = shards.flatMap(\.labels)
        let positive = Double(labels.filter { $0 == 1 }.count) / Double(labels.count)
        #expect(abs(positive - 0.333) < 0.01, "positive rate \(positive)")
        #expect(schema.sparse.reduce(0) { $0 + $1.cardinality - 1 } <= 5382)
    }

    @Test("MovieLens u.data and ratings.csv: ratings as labels, timestamps kept, first row by hand")
    func movielens() throws {
        let out = tempDir("ml100k")
        _ = try Converter.run(ConvertOptions(format: .interactions, inputs: [SharedData.path("movielens/ml-100k/u.data")], output: out))
        let (schema, shards) = try readAll(out)
        #expect(schema.hasTimestamps)
        // u.data line 1: 196 242 3 881250949
        #expect(shards[0].labels[0] == 3 && shards[0].timestamps[0] == 881_250_949)
        #expect(schema.sparse[0].cardinality == 944 && schema.sparse[1].cardinality == 1683, "943 users, 1,682 items + OOV")
        let out2 = tempDir("mls")
        _ = try Converter.run(ConvertOptions(format: .interactions, inputs: [SharedData.path("movielens/ml-latest-small/ratings.csv")], output: out2))
        let (_, s2) = try readAll(out2)
        #expect(s2[0].labels[0] == 2.5, "ratings.csv row 1: 1,31,2.5,1260759144")
        #expect(s2[0].timestamps[0] == 1_260_759_144)
    }

    @Test("malformed variants of the real Criteo file: each bad line reported with its line and reason")
    func malformedCriteo() throws {
        let lines = try String(contentsOfFile: SharedData.path("criteo/train.txt"), encoding: .utf8)
            .split(separator: "\n").prefix(50).map(String.init)
        var bad = lines
        bad[2] = bad[2].replacingOccurrences(of: "\t", with: " ")                  // line 3: wrong column count
        var f = bad[4].split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        f[20] = "zz12ab34"; bad[4] = f.joined(separator: "\t")                     // line 5: bad hex
        f = bad[6].split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        f[3] = "12x"; bad[6] = f.joined(separator: "\t")                           // line 7: non-numeric integer
        bad[8] = bad[8] + "\r"                                                     // line 9: CRLF (fine)
        f = bad[10].split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        f[0] = "2"; bad[10] = f.joined(separator: "\t")                            // line 11: label not 0/1
        bad[12] = String(repeating: "1\t", count: 300_000)                         // line 13: over-long
        let truncated = String(bad[49].prefix(40))                                 // line 50: truncated, no newline
        var text = Data(bad[0..<49].joined(separator: "\n").utf8 + Array("\n".utf8))
        // line 15: invalid UTF-8 inside a categorical
        var l15 = Array(bad[14].utf8); l15[l15.count - 3] = 0xFF
        let before = Array(bad[0..<14].joined(separator: "\n").utf8) + [0x0A]
        text = Data(before + l15 + [0x0A] + Array(bad[15..<49].joined(separator: "\n").utf8) + [0x0A] + Array(truncated.utf8))
        let dir = tempDir("malformed")
        let file = dir + "/bad.txt"
        try text.write(to: URL(fileURLWithPath: file))
        var o = ConvertOptions(format: .criteo, inputs: [file], output: dir + "/out")
        o.maxLineBytes = 100_000
        let r = try Converter.run(o)
        let badLines = r.errors.map(\.line)
        #expect(badLines == [3, 5, 7, 11, 13, 15, 50], "\(r.errors)")
        #expect(r.rows == 43 && r.skipped == 7)
        #expect(r.errors[1].reason.contains("hexadecimal") && r.errors[1].column != nil)
        #expect(r.errors[2].reason.contains("not an integer"))
        #expect(r.errors[4].reason.contains("longer than"))
        #expect(r.errors[5].reason.contains("invalid UTF-8") || r.errors[5].reason.contains("hexadecimal"))
        #expect(r.errors[6].reason.contains("truncated"))
        o.onError = .fail
        let refused = Result { () throws(DataError) in try Converter.run(o) }
        guard case .failure(.io(_, let why)) = refused, why.contains("--overwrite") else { Issue.record("a non-empty output was replaced: \(refused)"); return }
        o.overwrite = true
        let failure = Result { () throws(DataError) in try Converter.run(o) }
        guard case .failure(.malformedRow(let issue)) = failure else { Issue.record("fail policy did not stop: \(failure)"); return }
        #expect(issue.line == 3 && issue.file == file && issue.column != nil)
        // The failed run left the first run's dataset exactly as it was (it wrote into a staging directory).
        #expect(try ShardDataset(directory: dir + "/out").manifest.rows == 43)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains("staging") }.isEmpty)
    }
}
