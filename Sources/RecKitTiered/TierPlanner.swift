import Foundation
import RecKitData

/// Plans a placement from access statistics under a RAM budget (RecShard's idea, greedily): rows are worth keeping
/// in RAM in proportion to how often they are looked up, and every row of a table costs the same bytes, so the
/// budget goes to the globally hottest rows first.
///
/// 1. Tables smaller than `minimumTableBytes` stay wholly in RAM (tiering them saves little and costs a lookup).
/// 2. Every other table reserves a dynamic cache of `dynamicFraction` of the rest of the budget, split by the
///    lookups its pinned rows will not take (at least `minimumSlots` rows): misses need free slots, and rows that
///    are hot in this window but not in the statistics live there.
/// 3. The remaining budget pins rows across tables in decreasing order of count (a k-way merge of the tables'
///    sorted counts), down to rows seen `minimumCount` times: a row seen once in the statistics is as likely noise
///    as heat, and the dynamic cache serves such rows as well. Budget the pins leave unspent goes to the dynamic
///    caches (same split). A table all of whose rows would be cached is kept wholly in RAM instead.
///
/// The expected hit rate counts lookups served by resident tables and pinned rows, with the pinned rows' counts
/// corrected for the sample (Good–Turing: a row seen r times in N lookups has expected frequency r*/N,
/// r* = (r+1)·N_{r+1}/N_r for small r, where N_r rows were seen r times; the raw r/N would promise rows seen
/// once or twice more than they give). The dynamic part of each cache adds to it at run time.
public struct TierPlanner {
    public var cacheBytes: Int
    /// Bytes of one record (row + optimizer state) per table name (`collection.table`).
    public var recordBytes: [String: Int]
    /// Feature of each table (its statistics), by table name.
    public var features: [String: String]
    public var minimumTableBytes = 64 << 20
    public var minimumSlots = 16_384
    public var dynamicFraction = 0.1
    /// Rows seen fewer times than this are never pinned.
    public var minimumCount: UInt32 = Self.defaultMinimumCount
    public static let defaultMinimumCount: UInt32 = 2

    public init(cacheBytes: Int, recordBytes: [String: Int], features: [String: String]) {
        self.cacheBytes = cacheBytes; self.recordBytes = recordBytes; self.features = features
    }

    public func plan(_ stats: RowAccessStats, statsPath: String) throws -> TierPlacement {
        let byFeature = Dictionary(stats.tables.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let slot = RowCache.bytesPerSlot
        var budget = cacheBytes
        var tables: [String: TierPlacement.Table] = [:]
        var tiered: [(name: String, stats: RowAccessStats.Table, record: Int)] = []
        var totalLookups = 0, fromRAM = 0.0
        for name in recordBytes.keys.sorted() {
            let record = recordBytes[name]!, feature = features[name] ?? name
            guard let s = byFeature[feature] else { throw TierPlanError("no statistics for feature \(feature) (table \(name))") }
            totalLookups += s.lookups
            let bytes = s.rows * record
            if bytes < minimumTableBytes {
                budget -= bytes
                fromRAM += Double(s.lookups)
                tables[name] = .init(name: name, feature: feature, mode: .resident, cacheRows: 0, pinnedRows: 0, expectedHitRate: 1)
            } else {
                tiered.append((name, s, record))
            }
        }
        guard budget > 0 else {
            let resident = tables.values.map(\.name).sorted().prefix(3).joined(separator: ", ")
            throw TierPlanError(String(format: "the tables small enough to keep in RAM (%@…) already need %.0f MiB, more than --cache-mb %.0f",
                                       resident, Double(cacheBytes - budget) / 1_048_576, Double(cacheBytes) / 1_048_576))
        }
        // Dynamic caches first: a floor per table, then a share of `dynamicFraction` of what is left.
        let floors = tiered.reduce(0) { $0 + min(minimumSlots, $1.stats.rows) * ($1.record + slot) }
        let dynamicBudget = max(floors, Int(Double(budget) * dynamicFraction))
        guard dynamicBudget <= budget else {
            throw TierPlanError(String(format: "%d tiered tables need at least %.0f MiB of cache (%d rows each); --cache-mb leaves %.0f",
                                       tiered.count, Double(floors) / 1_048_576, minimumSlots, Double(budget) / 1_048_576))
        }
        var pinBudget = budget - dynamicBudget
        // Greedy pinning: the hottest rows across tables (k-way merge on counts).
        var next = [Int](repeating: 0, count: tiered.count)
        var heap = TopHeap()
        for (i, t) in tiered.enumerated() where !t.stats.counts.isEmpty && t.stats.counts[0] >= minimumCount { heap.push((t.stats.counts[0], i)) }
        while let (_, i) = heap.pop() {
            let cost = tiered[i].record + slot
            guard pinBudget >= cost else { break }
            pinBudget -= cost
            next[i] += 1
            if next[i] < tiered[i].stats.counts.count, tiered[i].stats.counts[next[i]] >= minimumCount {
                heap.push((tiered[i].stats.counts[next[i]], i))
            }
        }
        // Dynamic shares: by the lookups pinned rows will not take, plus the rows seen once (the tail's evidence).
        let weights = tiered.enumerated().map { i, t in
            Double(max(0, t.stats.lookups - t.stats.lookups(ofHottest: next[i])) + t.stats.counts.reduce(0) { $0 + ($1 == 1 ? 1 : 0) })
        }
        let weightTotal = max(1, weights.reduce(0, +))
        let shared = dynamicBudget - floors + pinBudget
        for (i, t) in tiered.enumerated() {
            let pinned = next[i]
            let share = Int(Double(shared) * weights[i] / weightTotal) / (t.record + slot)
            let dynamic = min(minimumSlots, t.stats.rows) + share
            if pinned + dynamic >= t.stats.rows {
                // Everything fits: keep the table in RAM.
                tables[t.name] = .init(name: t.name, feature: t.stats.name, mode: .resident, cacheRows: 0, pinnedRows: 0, expectedHitRate: 1)
                fromRAM += Double(t.stats.lookups)
            } else {
                let hits = Self.expectedLookups(t.stats.counts, hottest: pinned)
                tables[t.name] = .init(name: t.name, feature: t.stats.name, mode: .tiered, cacheRows: pinned + dynamic, pinnedRows: pinned,
                                       expectedHitRate: t.stats.lookups == 0 ? 1 : hits / Double(t.stats.lookups))
                fromRAM += hits
            }
        }
        return TierPlacement(stats: statsPath, cacheBytes: cacheBytes, recordBytes: recordBytes,
                             tables: tables.keys.sorted().map { tables[$0]! },
                             expectedHitRate: totalLookups == 0 ? 1 : fromRAM / Double(totalLookups))
    }
}

extension TierPlanner {
    /// Expected lookups (in the statistics' window) of the `hottest` first rows of `counts` (sorted decreasing),
    /// Good–Turing-corrected for counts below 6: a row seen r times counts r* = (r+1)·N_{r+1}/N_r (at most r).
    static func expectedLookups(_ counts: [UInt32], hottest: Int) -> Double {
        var rowsSeen = [Int](repeating: 0, count: 8)
        for c in counts where c < 8 { rowsSeen[Int(c)] += 1 }
        var total = 0.0
        for c in counts.prefix(hottest) {
            let r = Int(c)
            if r < 6, rowsSeen[r] > 0 {
                total += min(Double(r), Double(r + 1) * Double(rowsSeen[r + 1]) / Double(rowsSeen[r]))
            } else {
                total += Double(r)
            }
        }
        return total
    }
}

/// A max-heap of (count, table) pairs.
struct TopHeap {
    private var items: [(UInt32, Int)] = []
    mutating func push(_ x: (UInt32, Int)) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard items[p].0 < items[i].0 else { break }
            items.swapAt(p, i); i = p
        }
    }
    mutating func pop() -> (UInt32, Int)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, items[l].0 > items[m].0 { m = l }
                if r < items.count, items[r].0 > items[m].0 { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return top
    }
}
