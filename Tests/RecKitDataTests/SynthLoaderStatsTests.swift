import Foundation
import RecKitCore
@testable import RecKitData
import RecKitTestSupport
import Testing

@Suite("Synthetic data, batch loader, statistics")
struct SynthLoaderStatsTests {
    static func synth(_ name: String, rows: Int = 20_000, session: Int = 1, seed: UInt64 = 5) throws -> (String, SynthReport) {
        let dir = tempDir(name)
        var o = SynthOptions(rows: rows, output: dir, seed: seed)
        o.tables = [1000, 50, 200_000, 7, 3000]
        o.userTables = 2
        o.sessionSize = session
        o.shardRows = 4096
        return (dir, try Synthesizer.run(o))
    }

    @Test("synth is deterministic for a seed, differs across seeds, and its planted model is learnable")
    func synthDeterminism() throws {
        let (a, ra) = try Self.synth("synth-a")
        let (b, _) = try Self.synth("synth-b")
        let (c, _) = try Self.synth("synth-c", seed: 6)
        let (_, sa) = try readAll(a), (_, sb) = try readAll(b), (_, sc) = try readAll(c)
        #expect(sa == sb)
        #expect(sa != sc)
        #expect(ra.rows == 20_000 && ra.shards == 5)
        #expect(ra.plantedAUC > 0.65 && ra.plantedAUC < 0.95, "planted AUC \(ra.plantedAUC) (5 tables: weaker signal than the 26-table default, ≈ 0.84)")
        #expect(ra.positiveRate > 0.2 && ra.positiveRate < 0.45)
        let schema = try ShardDataset(directory: a).schema
        #expect(schema.sparse.map(\.cardinality) == [1000, 50, 200_000, 7, 3000])
        for s in sa { for f in 0..<5 { #expect(s.ids[f].allSatisfy { $0 >= 0 && Int($0) < schema.sparse[f].cardinality }) } }
    }

    @Test("loader: every row exactly once, in order without shuffle, permuted (deterministically) with it")
    func loaderCoverage() throws {
        let (dir, _) = try Self.synth("loader", rows: 10_000)
        let ds = try ShardDataset(directory: dir)
        let (_, shards) = try readAll(dir)
        let allLabels = shards.flatMap(\.labels)
        let allIDs = shards.flatMap { $0.ids[2] }
        func run(_ shuffle: Int, seed: UInt64, dropLast: Bool = false) throws -> ([Int64], [Float], [Int]) {
            var o = LoaderOptions(batchSize: 777)
            o.shuffleBuffer = shuffle
            o.seed = seed
            o.dropLast = dropLast
            let loader = try BatchLoader(dataset: ds, options: o)
            var ids: [Int64] = [], labels: [Float] = [], sizes: [Int] = []
            for b in loader {
                ids += b.sparse.values[2]; labels += b.labels; sizes.append(b.size)
                #expect(b.dense.count == b.size * 13 && b.sparse.offsets[0].count == b.size + 1)
            }
            #expect(loader.error == nil)
            return (ids, labels, sizes)
        }
        let plain = try run(0, seed: 0)
        #expect(plain.0 == allIDs && plain.1 == allLabels)
        #expect(plain.2 == Array(repeating: 777, count: 12) + [10_000 - 12 * 777])
        let s1 = try run(3000, seed: 1), s1b = try run(3000, seed: 1), s2 = try run(3000, seed: 2)
        #expect(s1.0 == s1b.0, "shuffle must be deterministic for a seed")
        #expect(s1.0 != plain.0 && s1.0 != s2.0)
        #expect(s1.0.sorted() == allIDs.sorted(), "shuffle is a permutation")
        #expect(try run(0, seed: 0, dropLast: true).2.allSatisfy { $0 == 777 })
    }

    @Test("dedup: distinct bags + inverse rebuild every bag; sessions of K give a factor ≈ K on user features")
    func dedup() throws {
        let (dir, _) = try Self.synth("dedup", rows: 8192, session: 8)
        var o = LoaderOptions(batchSize: 1024)
        o.dedup = true
        let loader = try BatchLoader(dataset: try ShardDataset(directory: dir), options: o)
        var batches = 0
        for b in loader {
            batches += 1
            let d = try #require(b.deduped)
            for f in 0..<d.count {
                for s in 0..<b.size {
                    let u = Int(d[f].inverse[s])
                    let rebuilt = d[f].uniqueValues[Int(d[f].uniqueOffsets[u])..<Int(d[f].uniqueOffsets[u + 1])]
                    #expect(Array(rebuilt) == Array(b.sparse.ids(feature: f, sample: s)))
                }
            }
            // User-side tables 0 and 1 repeat within sessions of 8: at least ~8x fewer distinct bags (more if ids repeat).
            #expect(d[0].dedupFactor >= 7.9 && d[2].dedupFactor < 2)
        }
        #expect(batches == 8)
    }

    @Test("stats: counts, coverage, CDF and duplication on a hand-made dataset")
    func stats() throws {
        let dir = tempDir("stats")
        let schema = DatasetSchema(source: "test", hasLabel: true, denseNames: [],
                                   sparse: [SparseFeature(name: "f", cardinality: 100)],
                                   preprocessing: PreprocessingSpec(categorical: .identity, rawIDs: "decimal"))
        var c = ShardColumns(denseCount: 0, sparseCount: 1)
        for id: Int64 in [5, 5, 5, 7, 5, 9, 7, 5] { c.ids[0].append(id); c.labels.append(id == 5 ? 1 : 0); c.commitRow() }
        try ShardFile.write(c, schema: schema, to: dir + "/s.rks")
        try Manifest(schema: schema, shards: [.init(file: "s.rks", rows: 8, bytes: 0)]).write(to: dir)
        let st = try DatasetStats.compute(try ShardDataset(directory: dir), batchSize: 4)
        let f = st.features[0]
        #expect(st.rows == 8 && f.lookups == 8 && f.idsSeen == 3 && f.coverage == 0.03)
        #expect(f.top.map(\.id) == [5, 7, 9] && f.top.map(\.count) == [5, 2, 1])
        #expect(f.cdf.first { $0.rows == 0.01 }?.accesses == 5.0 / 8)   // top 1 of 100 rows
        #expect(f.inBatchDuplication == (4.0 / 2 + 4.0 / 3) / 2)         // batches {5,5,5,7}, {5,9,7,5}
        #expect(st.positiveRate == 5.0 / 8)
    }

    @Test("generated Criteo text converts without errors in both categorical modes")
    func criteoTextWriter() throws {
        let dir = tempDir("ctw")
        try CriteoTextWriter.write(to: dir + "/t.tsv", bytes: 2_000_000, seed: 1)
        var o = ConvertOptions(format: .criteo, inputs: [dir + "/t.tsv"], output: dir + "/v")
        let v = try Converter.run(o)
        o.maxIndRange = 1000
        o.output = dir + "/h"
        let h = try Converter.run(o)
        #expect(v.skipped == 0 && h.skipped == 0 && v.rows == h.rows && v.rows > 5000)
        let (schema, _) = try readAll(dir + "/h")
        #expect(schema.sparse.allSatisfy { $0.cardinality == 1000 })
    }
}
