import Foundation
import RecKitCore
@testable import RecKitCF
import RecKitKernels
import Testing

/// Interaction parsing, the ranking metrics on hand-computed cases, the model file, sampling and Kendall's τ.
@Suite("CF data, metrics, model file, sampling")
struct CFDataAndMetricsTests {
    static func temporaryFile(_ text: String, _ name: String = "events.tsv") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-cf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("TSV with header, CSV without header, CRLF, timestamps, and non-numeric ids")
    func parsing() throws {
        let a = try Interactions.read(try Self.temporaryFile("user_id\titem_id\trating\n1\t10\t5\n2\t10\t3\n"))
        #expect(a.users == [1, 2] && a.items == [10, 10] && a.ratings == [5, 3] && a.timestamps == nil)
        let b = try Interactions.read(try Self.temporaryFile("7,8,4.5,100\r\n7,9,1,90\r\n", "e.csv"))
        #expect(b.users == [7, 7] && b.items == [8, 9] && b.timestamps == [100, 90] && b.ratings == [4.5, 1])
        let c = try Interactions.read(try Self.temporaryFile("1\tabc\n"))
        #expect(c.items[0] < 0)  // hashed ids carry the top bit
    }

    @Test("A malformed row names the file, line and column; skip counts it")
    func malformed() throws {
        let path = try Self.temporaryFile("u\ti\tr\n1\t2\t3\n1\t2\tx\n4\n")
        let result = Result { () throws(CFError) in try Interactions.read(path) }
        guard case .failure(let error) = result else { Issue.record("accepted a malformed row"); return }
        #expect(error.description == "\(path):3:5: rating 'x' is not a finite number")
        let skipped = try Interactions.read(path, policy: .skip)
        #expect(skipped.count == 1 && skipped.skippedRows == 2)
        #expect(throws: CFError.self) { try Interactions.read(path + ".missing") }
        #expect(throws: CFError.self) { try Interactions.read(try Self.temporaryFile("user\titem\n")) }
    }

    /// A model with fixed scores for checking the metrics by hand.
    struct FixedModel: CFModel {
        let kind = CFModelKind.pop
        let users: IDMap
        let items: IDMap
        let itemCounts: [Int]
        let table: [Float]
        var hyperparameters: [String: Double] { [:] }
        func score(context: InteractionMatrix, rows: Range<Int>, userIndex: [Int32], into out: UnsafeMutablePointer<Float>,
                   algebra: DenseAlgebra, pool: ThreadPool) throws(CFError) {
            for k in 0..<rows.count { for i in 0..<items.count { out[k * items.count + i] = table[i] } }
        }
        func tensors() -> [CFTensor] { [] }
    }

    @Test("nDCG, recall, HR and AUC by hand: context excluded, unknown test items count as misses")
    func metricsByHand() throws {
        // Items 0…5 scored 6,5,4,3,2,1. User 1: context {0}, targets {2, 5}. Ranking without 0: 1,2,3,4,5.
        let model = FixedModel(users: IDMap([1]), items: IDMap(0..<6), itemCounts: [1, 1, 1, 1, 1, 1], table: [6, 5, 4, 3, 2, 1])
        let context = Interactions(source: "c", users: [1], items: [0], ratings: [1])
        let test = Interactions(source: "t", users: [1, 1, 1], items: [2, 5, 99], ratings: [1, 1, 1])  // 99: never seen
        let r = try RankingEvaluation.evaluate(model: model, context: context, test: test, ks: [2, 5], algebra: try DenseAlgebra(threads: 1),
                                               pool: ThreadPool(threads: 1))
        // |T| = 3 (one unknown). @2: top {1,2}, one hit at rank 2.
        let idcg2 = 1 + 1 / log2(3.0)
        #expect(abs(r.metrics["ndcg@2"]! - (1 / log2(3.0)) / idcg2) < 1e-12)
        #expect(abs(r.metrics["recall@2"]! - 1.0 / 3) < 1e-12)
        #expect(abs(r.metrics["hr@2"]! - 1.0 / 2) < 1e-12)
        // @5: hits at ranks 2 and 5; ideal over min(3, 5) = 3 positions.
        let idcg5 = 1 + 1 / log2(3.0) + 1 / log2(4.0)
        #expect(abs(r.metrics["ndcg@5"]! - (1 / log2(3.0) + 1 / log2(6.0)) / idcg5) < 1e-12)
        #expect(abs(r.metrics["hr@5"]! - 2.0 / 3) < 1e-12)
        // AUC over known targets {2 (score 4), 5 (score 1)} vs negatives {1 (5), 3 (3), 4 (2)}: pairs won 2 + 0 of 6.
        #expect(abs(r.metrics["auc"]! - 2.0 / 6) < 1e-12)
        #expect(r.users == 1 && r.items == 6 && r.unknownTestItems == 1)
    }

    @Test("top-K equals a full sort (ties by lower index), sizes around K")
    func topKMatchesSort() {
        var rng = SeededRandom(seed: 3)
        for n in [1, 2, 9, 10, 11, 100] {
            for k in [1, 5, 10, 200] {
                var s = (0..<n).map { _ in Float(Int(rng.next() % 7)) }
                let excluded = n > 3 ? 2 : 0
                for e in 0..<excluded { s[e] = -.infinity }
                let expected = (0..<n).filter { s[$0] != -.infinity }.sorted { s[$0] != s[$1] ? s[$0] > s[$1] : $0 < $1 }.prefix(k).map(Int32.init)
                let got = s.withUnsafeMutableBufferPointer { RankingEvaluation.topK($0.baseAddress!, n: n, k: k, excluded: excluded) }
                #expect(got == Array(expected), "n \(n) k \(k)")
            }
        }
    }

    @Test("Model file round trip for every model; corruption is refused with a typed error")
    func modelFile() throws {
        let events = CFModelTests.randomEvents(users: 12, items: 9, density: 0.4, seed: 5)
        let um = IDMap(events.users), im = IDMap(events.items)
        let x = InteractionMatrix(events, users: um, items: im)
        let algebra = try DenseAlgebra(threads: 1), pool = ThreadPool(threads: 1)
        var o = BPRModel.Options(); o.epochs = 2; o.dimension = 4
        let models: [any CFModel] = [PopularityModel(train: x, users: um, items: im),
                                     try EASEModel.fit(train: x, users: um, items: im, lambda: 3, algebra: algebra),
                                     try InfiniteAEModel.fit(train: x, users: um, items: im, lambda: 1, algebra: algebra, pool: pool),
                                     try BPRModel.fit(train: x, users: um, items: im, options: o)]
        for m in models {
            let path = try Self.temporaryFile("", "model.rkcf")
            try CFModelFile.write(m, to: path)
            let back = try CFModelFile.read(path)
            #expect(back.kind == m.kind && back.items == m.items && back.users == m.users && back.tensors() == m.tensors())
            var a = [Float](repeating: 0, count: x.rows * im.count), b = a
            let idx = (0..<x.rows).map(Int32.init)
            try a.withUnsafeMutableBufferPointer { try m.score(context: x, rows: 0..<x.rows, userIndex: idx, into: $0.baseAddress!, algebra: algebra, pool: pool) }
            try b.withUnsafeMutableBufferPointer { try back.score(context: x, rows: 0..<x.rows, userIndex: idx, into: $0.baseAddress!, algebra: algebra, pool: pool) }
            #expect(a == b, "\(m.kind) scores after reload")
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            for at in [3, 12, bytes.count - 1] {
                let saved = bytes[at]
                bytes[at] ^= 0x5A
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                #expect(throws: CFError.self, "\(m.kind) byte \(at)") { try CFModelFile.read(path) }
                bytes[at] = saved
            }
        }
    }

    @Test("Every sampling strategy keeps the requested fraction, is seeded, and keeps file order")
    func sampling() throws {
        var events = CFModelTests.randomEvents(users: 80, items: 30, density: 0.2, seed: 11)
        events.timestamps = (0..<events.count).map { Int64(($0 * 7919) % 1000) }
        for s in DatasetSampler.Strategy.allCases {
            var p = DatasetSampler.ProxyOptions(); p.epochs = 2
            let a = try DatasetSampler.sample(events, strategy: s, fraction: 0.25, seed: 4, proxy: p)
            let b = try DatasetSampler.sample(events, strategy: s, fraction: 0.25, seed: 4, proxy: p)
            #expect(a == b, "\(s) is seeded")
            let target = Int((0.25 * Double(events.count)).rounded())
            if s == .user || s == .item || s == .headUser { #expect(a.count >= target && a.count < target + 40, "\(s): \(a.count)") } else {
                #expect(a.count == target, "\(s): \(a.count)")
            }
        }
        let latest = try DatasetSampler.sample(events, strategy: .temporal, fraction: 0.1, seed: 1)
        #expect(latest.timestamps!.min()! >= events.timestamps!.sorted(by: >)[latest.count - 1])
        events.timestamps = nil
        #expect(throws: CFError.self) { try DatasetSampler.sample(events, strategy: .temporal, fraction: 0.5, seed: 1) }
        #expect(throws: CFError.self) { try DatasetSampler.sample(events, strategy: .random, fraction: 0, seed: 1) }
    }

    @Test("Kendall's τ-b: identical, reversed, one swap, ties")
    func kendall() {
        #expect(ModelRanking.kendallTau([4, 3, 2, 1], [40, 30, 20, 10]) == 1)
        #expect(ModelRanking.kendallTau([4, 3, 2, 1], [1, 2, 3, 4]) == -1)
        #expect(abs(ModelRanking.kendallTau([4, 3, 2, 1], [4, 3, 1, 2]) - 4.0 / 6) < 1e-12)
        #expect(abs(ModelRanking.kendallTau([1, 1, 2], [1, 2, 3]) - 2 / (2 * 3).squareRoot()) < 1e-12)
        #expect(ModelRanking.kendallTau([1, 2], [1]).isNaN)
    }
}
