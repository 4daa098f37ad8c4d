import Foundation
import RecKitCore
import RecKitData
@testable import RecKitTiered
import Testing

/// The placement planner: budget, small tables, what is pinned, and whether its promised hit rate comes true on
/// lookups it has not seen.
@Suite("Tier planner: placement from access statistics")
struct TierPlannerTests {
    /// Exact counts of `lookups` Zipf draws over `rows` rows, as `RowAccessStats` stores them (sorted, hottest first).
    static func counted(_ name: String, rows: Int, lookups: Int, exponent: Double, rng: inout SeededRandom) -> RowAccessStats.Table {
        let sampler = ZipfSampler(n: rows, exponent: exponent)
        var counts: [Int64: UInt32] = [:]
        for _ in 0..<lookups { counts[Int64(sampler.nextID(using: &rng)), default: 0] += 1 }
        let pairs = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        return .init(name: name, rows: rows, lookups: lookups, seen: pairs.count, ids: pairs.map(\.key), counts: pairs.map(\.value))
    }

    static let record = 68

    func planner(cacheBytes: Int, tables: [String]) -> TierPlanner {
        var p = TierPlanner(cacheBytes: cacheBytes,
                            recordBytes: Dictionary(uniqueKeysWithValues: tables.map { ("embeddings.\($0)", Self.record) }),
                            features: Dictionary(uniqueKeysWithValues: tables.map { ("embeddings.\($0)", $0) }))
        p.minimumTableBytes = 1 << 20
        p.minimumSlots = 1_000
        return p
    }

    @Test("small tables stay in RAM, the budget is never exceeded, rows seen once are not pinned, and unspent pins go to the dynamic caches")
    func budgetAndModes() throws {
        var rng = SeededRandom(seed: 3)
        let stats = RowAccessStats(tables: [
            Self.counted("big", rows: 400_000, lookups: 200_000, exponent: 1.05, rng: &rng),
            Self.counted("mid", rows: 100_000, lookups: 200_000, exponent: 1.2, rng: &rng),
            Self.counted("small", rows: 1_000, lookups: 200_000, exponent: 1.05, rng: &rng),
        ])
        let cache = 8 << 20
        let plan = try planner(cacheBytes: cache, tables: ["big", "mid", "small"]).plan(stats, statsPath: "test")
        let byName = Dictionary(uniqueKeysWithValues: plan.tables.map { ($0.name, $0) })
        let small = try #require(byName["embeddings.small"]), big = try #require(byName["embeddings.big"])
        #expect(small.mode == .resident)
        #expect(big.mode == .tiered)
        var used = 0
        for t in plan.tables {
            let s = try #require(stats.tables.first { "embeddings." + $0.name == t.name })
            if t.mode == .resident {
                used += s.rows * Self.record
            } else {
                used += t.cacheRows * (Self.record + RowCache.bytesPerSlot)
                #expect(t.pinnedRows <= t.cacheRows && t.cacheRows < s.rows)
                // Never pins a row seen once.
                if t.pinnedRows > 0 { #expect(s.counts[t.pinnedRows - 1] >= 2) }
            }
        }
        #expect(used <= cache, "the plan uses \(used) bytes of a \(cache)-byte cache")
        // The leftover is handed out: at least 95% of the budget is planned.
        #expect(Double(used) >= 0.95 * Double(cache), "only \(used) of \(cache) bytes planned")
    }

    @Test("the expected hit rate of pinned rows (Good–Turing corrected) holds on fresh lookups within 0.02; the raw counts would promise more")
    func expectedHitRateComesTrue() throws {
        var rng = SeededRandom(seed: 11)
        let rows = 2_000_000, lookups = 400_000
        let stats = RowAccessStats(tables: [Self.counted("t", rows: rows, lookups: lookups, exponent: 1.05, rng: &rng)])
        let plan = try planner(cacheBytes: 64 << 20, tables: ["t"]).plan(stats, statsPath: "test")
        let t = try #require(plan.tables.first)
        #expect(t.mode == .tiered && t.pinnedRows > 0)
        let pinned = Set(stats.tables[0].ids.prefix(t.pinnedRows))
        // Fresh lookups of the same distribution (another seed).
        var fresh = SeededRandom(seed: 12)
        let sampler = ZipfSampler(n: rows, exponent: 1.05)
        var hits = 0
        for _ in 0..<lookups where pinned.contains(Int64(sampler.nextID(using: &fresh))) { hits += 1 }
        let measured = Double(hits) / Double(lookups)
        #expect(abs(t.expectedHitRate - measured) < 0.02, "expected \(t.expectedHitRate), measured \(measured)")
        let raw = Double(stats.tables[0].lookups(ofHottest: t.pinnedRows)) / Double(lookups)
        #expect(raw > t.expectedHitRate, "raw \(raw) vs corrected \(t.expectedHitRate)")
    }

    @Test("a cache too small for the resident tables is refused, naming them and the sizes")
    func refusal() throws {
        var rng = SeededRandom(seed: 5)
        let stats = RowAccessStats(tables: [Self.counted("small", rows: 10_000, lookups: 1_000, exponent: 1.05, rng: &rng)])
        #expect(throws: TierPlanError.self) { try planner(cacheBytes: 100_000, tables: ["small"]).plan(stats, statsPath: "test") }
        do {
            _ = try planner(cacheBytes: 100_000, tables: ["small"]).plan(stats, statsPath: "test")
        } catch {
            #expect("\(error)".contains("embeddings.small") && "\(error)".contains("MiB"))
        }
    }
}
