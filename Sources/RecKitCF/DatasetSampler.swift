import Foundation
import RecKitCore

/// Samples an interaction dataset down to a fraction of its events (Sachdeva, Wu, McAuley: "On Sampling
/// Collaborative Filtering Datasets", WSDM 2022). Every strategy is seeded and returns events in file order.
///
/// - `random`: each event independently… exactly ⌊F·N⌉ events chosen uniformly without replacement.
/// - `user` / `item`: whole users (items) chosen uniformly until F of the events are covered.
/// - `temporal`: the latest F of the events by timestamp (needs timestamps).
/// - `headUser`: the users with the most events first, until F of the events are covered.
/// - `svpCF`: Selection-via-Proxy — a small BPR-MF proxy is trained on all events and each event's importance is
///   its mean BPR loss over the proxy's epochs (events the proxy keeps getting wrong, or forgets, score high);
///   F of the events are drawn without replacement with probability proportional to importance.
/// - `svpCFProp`: the same importance divided by the item's propensity (Jain et al. 2016, as in PSP), so that
///   hard events on long-tail items are favoured.
public enum DatasetSampler {
    public enum Strategy: String, Sendable, CaseIterable {
        case random, user, item, temporal
        case headUser = "head-user"
        case svpCF = "svp-cf"
        case svpCFProp = "svp-cf-prop"
    }

    public struct ProxyOptions: Sendable {
        public var dimension = 16
        public var epochs = 10
        public init() {}
    }

    public static func sample(_ events: Interactions, strategy: Strategy, fraction: Double, seed: UInt64,
                              proxy: ProxyOptions = ProxyOptions()) throws(CFError) -> Interactions {
        guard fraction > 0, fraction <= 1 else { throw .invalidOptions("--fraction must be in (0, 1], got \(fraction)") }
        let n = events.count
        let target = max(1, Int((fraction * Double(n)).rounded()))
        var rng = SeededRandom(seed: seed)
        var keep: [Int]
        switch strategy {
        case .random:
            var order = Array(0..<n)
            order.shuffle(using: &rng)
            keep = Array(order.prefix(target))
        case .user, .item:
            let key = strategy == .user ? events.users : events.items
            var groups: [Int64: [Int]] = [:]
            for k in 0..<n { groups[key[k], default: []].append(k) }
            var ids = groups.keys.sorted()
            ids.shuffle(using: &rng)
            keep = []
            for id in ids where keep.count < target { keep += groups[id]! }
        case .temporal:
            guard let t = events.timestamps else {
                throw .invalidOptions("\(events.source): temporal sampling needs timestamps (a 4th column), and this file has none")
            }
            keep = Array((0..<n).sorted { t[$0] != t[$1] ? t[$0] > t[$1] : $0 > $1 }.prefix(target))
        case .headUser:
            var groups: [Int64: [Int]] = [:]
            for k in 0..<n { groups[events.users[k], default: []].append(k) }
            let ids = groups.keys.sorted { groups[$0]!.count != groups[$1]!.count ? groups[$0]!.count > groups[$1]!.count : $0 < $1 }
            keep = []
            for id in ids where keep.count < target { keep += groups[id]! }
        case .svpCF, .svpCFProp:
            let importance = try proxyImportance(events, proxy: proxy, seed: seed, propensity: strategy == .svpCFProp)
            // Sampling without replacement with probability ∝ importance (Efraimidis–Spirakis keys u^(1/w)):
            // hard events are favoured but every event can be kept, so the sample still covers the easy mass.
            let keys = (0..<n).map { k -> Double in
                let w = max(importance[k], 1e-12)
                return log(max(rng.nextDouble(), 1e-300)) / w
            }
            keep = Array((0..<n).sorted { keys[$0] != keys[$1] ? keys[$0] > keys[$1] : $0 < $1 }.prefix(target))
        }
        keep.sort()
        var out = events.subset(keep, source: "\(events.source) (\(strategy.rawValue) \(fraction))")
        out.skippedRows = 0
        return out
    }

    /// Mean proxy BPR loss of every event over the proxy's epochs [N] (events repeated in the file share their
    /// (user, item) entry), optionally divided by the item's propensity.
    static func proxyImportance(_ events: Interactions, proxy: ProxyOptions, seed: UInt64, propensity: Bool) throws(CFError) -> [Double] {
        let users = IDMap(events.users), items = IDMap(events.items)
        let x = InteractionMatrix(events, users: users, items: items)
        var o = BPRModel.Options()
        o.dimension = proxy.dimension; o.epochs = proxy.epochs; o.seed = seed
        var total = [Double](repeating: 0, count: x.nonZeros)
        _ = try BPRModel.fit(train: x, users: users, items: items, options: o) { _, _, loss in
            for k in 0..<loss.count { total[k] += Double(loss[k]) }
        }
        let counts = x.columnCounts()
        let c = (log(Double(max(x.nonZeros, 2))) - 1) * pow(2.5, 0.55)
        var result = [Double](repeating: 0, count: events.count)
        for k in 0..<events.count {
            let u = Int(users[events.users[k]]!), i = items[events.items[k]]!
            guard let at = x.position(u, i) else { continue }
            var score = total[at] / Double(max(proxy.epochs, 1))
            if propensity { score *= 1 + c * pow(Double(counts[Int(i)]) + 1.5, -0.55) }  // ÷ propensity = × inverse propensity
            result[k] = score
        }
        return result
    }
}
