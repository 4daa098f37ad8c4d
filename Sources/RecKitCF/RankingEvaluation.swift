import Foundation
import RecKitCore
import RecKitKernels

/// Full-ranking evaluation in the ∞-AE protocol: every test event is a positive; each test user's context items
/// (train, plus validation when given) are removed from the ranking; all other items are ranked.
///
/// Per user u with targets T (test items not in the context; a test item the model never saw counts in |T| but
/// cannot be retrieved) and top-K list L:
///
///     HR@K     = |L ∩ T| / min(|T|, K)                  (the paper's "HR": recall normalised by the best possible)
///     Recall@K = |L ∩ T| / |T|
///     nDCG@K   = Σ_{r: L_r ∈ T} 1/log₂(r+2) / Σ_{r < min(|T|,K)} 1/log₂(r+2)
///     PSP@K    = Σ_{L_r ∈ T} w(L_r) / Σ top-min(|T|,K) w over T,   w(i) = 1 + C·(nᵢ + 1.5)^−0.55,  C = (ln N − 1)·2.5^0.55
///     AUC      = P(score(t) > score(j)) over t ∈ T, j ∉ T ∪ context (ties count ½)
///
/// (nᵢ: training users of item i, N: training interactions; the propensity model of Jain et al. 2016 with the
/// ∞-AE code's A = 0.55, B = 1.5.) Every metric is averaged over test users with at least one target and reported
/// as a fraction in [0, 1]. Ties in scores rank the lower item index first, so results are deterministic.
public enum RankingEvaluation {
    public struct Result: Sendable, Encodable {
        /// `ndcg@K`, `recall@K`, `hr@K`, `psp@K` for each K, and `auc`.
        public var metrics: [String: Double]
        /// Users evaluated (with ≥ 1 target).
        public var users: Int
        /// Items ranked.
        public var items: Int
        /// Test users skipped (no target left after removing the context).
        public var skippedUsers: Int
        /// Test events whose item the model never saw.
        public var unknownTestItems: Int

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: DynamicKey.self)
            for (k, v) in metrics { try c.encode(v, forKey: DynamicKey(k)) }
            try c.encode(users, forKey: DynamicKey("users"))
            try c.encode(items, forKey: DynamicKey("items"))
            try c.encode(skippedUsers, forKey: DynamicKey("skipped_users"))
            try c.encode(unknownTestItems, forKey: DynamicKey("unknown_test_items"))
        }
    }

    public static func evaluate(model: any CFModel, context: Interactions, test: Interactions, ks: [Int], algebra: DenseAlgebra,
                                pool: ThreadPool, batchUsers: Int = 1024) throws(CFError) -> Result {
        let ks = Array(Set(ks.filter { $0 > 0 })).sorted()
        guard let maxK = ks.last else { throw .invalidOptions("--k needs at least one positive cut-off") }
        let evalUsers = IDMap(test.users)
        let ctx = InteractionMatrix(context, users: evalUsers, items: model.items)
        let tgt = InteractionMatrix(test, users: evalUsers, items: model.items)
        var unknown = [Int](repeating: 0, count: evalUsers.count)
        var unknownTotal = 0
        for k in 0..<test.count where model.items[test.items[k]] == nil {
            unknown[Int(evalUsers[test.users[k]]!)] += 1; unknownTotal += 1
        }
        let n = model.items.count
        let counts = model.itemCounts
        let total = Double(max(counts.reduce(0, +), 2))
        let c = (log(total) - 1) * pow(2.5, 0.55)
        let weight = counts.map { 1 + c * pow(Double($0) + 1.5, -0.55) }
        let userIndex = evalUsers.ids.map { model.users[$0] ?? -1 }

        // Per-user metric rows: [ndcg, recall, hr, psp] × ks, then auc; NaN marks a skipped user.
        let width = 4 * ks.count + 1
        var perUser = [Double](repeating: .nan, count: evalUsers.count * width)
        let batch = max(1, batchUsers)
        let scores = AlignedBuffer<Float>(count: max(1, min(batch, evalUsers.count) * n))
        var start = 0
        while start < evalUsers.count {
            let rows = start..<min(evalUsers.count, start + batch)
            try model.score(context: ctx, rows: rows, userIndex: Array(userIndex[rows]), into: scores.pointer, algebra: algebra, pool: pool)
            let out = SendablePointer(scores.pointer)
            try perUser.withUnsafeMutableBufferPointer { (pu) throws(CFError) in
                let res = SendablePointer(pu.baseAddress!)
                pool.parallelFor(rows.count) { k in
                    let u = rows.lowerBound + k
                    let row = out.base + k * n
                    userMetrics(scores: row, n: n, context: ctx.row(u), targets: tgt.row(u).filter { !ctx.contains(u, $0) },
                                unknown: unknown[u], ks: ks, maxK: maxK, weight: weight, into: res.base + u * width)
                }
            }
            start = rows.upperBound
        }
        var sums = [Double](repeating: 0, count: width)
        var evaluated = 0, aucUsers = 0
        for u in 0..<evalUsers.count where !perUser[u * width].isNaN {
            evaluated += 1
            for m in 0..<(width - 1) { sums[m] += perUser[u * width + m] }
            let a = perUser[u * width + width - 1]
            if !a.isNaN { sums[width - 1] += a; aucUsers += 1 }  // NaN: no negatives or no retrievable target
        }
        var metrics: [String: Double] = [:]
        for (j, k) in ks.enumerated() {
            for (m, name) in ["ndcg", "recall", "hr", "psp"].enumerated() {
                metrics["\(name)@\(k)"] = evaluated > 0 ? sums[4 * j + m] / Double(evaluated) : .nan
            }
        }
        metrics["auc"] = aucUsers > 0 ? sums[width - 1] / Double(aucUsers) : .nan
        return Result(metrics: metrics, users: evaluated, items: n, skippedUsers: evalUsers.count - evaluated, unknownTestItems: unknownTotal)
    }

    /// One user's metrics into `out` [4·|ks| + 1]; leaves NaN when the user has no target.
    static func userMetrics(scores: UnsafeMutablePointer<Float>, n: Int, context: ArraySlice<Int32>, targets: [Int32], unknown: Int,
                            ks: [Int], maxK: Int, weight: [Double], into out: UnsafeMutablePointer<Double>) {
        let positives = targets.count + unknown
        guard positives > 0 else { return }
        for c in context { scores[Int(c)] = -.infinity }
        let isTarget = Set(targets)
        let top = topK(scores, n: n, k: maxK, excluded: context.count)
        let sortedWeights = targets.map { weight[Int($0)] }.sorted(by: >)
        for (j, k) in ks.enumerated() {
            var hits = 0, dcg = 0.0, idcg = 0.0, psp = 0.0, maxPSP = 0.0
            for (r, item) in top.prefix(k).enumerated() where isTarget.contains(item) {
                hits += 1; dcg += 1 / log2(Double(r) + 2); psp += weight[Int(item)]
            }
            let ideal = min(positives, k)
            for r in 0..<ideal { idcg += 1 / log2(Double(r) + 2) }
            for r in 0..<min(ideal, sortedWeights.count) { maxPSP += sortedWeights[r] }
            out[4 * j] = dcg / idcg
            out[4 * j + 1] = Double(hits) / Double(positives)
            out[4 * j + 2] = Double(hits) / Double(ideal)
            out[4 * j + 3] = maxPSP > 0 ? psp / maxPSP : 0
        }
        out[4 * ks.count] = auc(scores, n: n, context: context, isTarget: isTarget)
    }

    /// Indices of the `k` highest scores (ties: lower index first), skipping −∞ entries.
    static func topK(_ s: UnsafeMutablePointer<Float>, n: Int, k: Int, excluded: Int) -> [Int32] {
        let want = min(k, n - excluded)
        guard want > 0 else { return [] }
        // Min-heap of (score, index) keyed so that the worst candidate is on top.
        var heap: [(Float, Int32)] = []
        heap.reserveCapacity(want)
        @inline(__always) func worse(_ a: (Float, Int32), _ b: (Float, Int32)) -> Bool { a.0 < b.0 || (a.0 == b.0 && a.1 > b.1) }
        for i in 0..<n {
            let v = s[i]
            if v == -.infinity { continue }
            let e = (v, Int32(i))
            if heap.count < want {
                heap.append(e)
                var c = heap.count - 1
                while c > 0 { let p = (c - 1) / 2; if worse(heap[c], heap[p]) { heap.swapAt(c, p); c = p } else { break } }
            } else if worse(heap[0], e) {
                heap[0] = e
                var p = 0
                while true {
                    let l = 2 * p + 1, r = l + 1
                    var m = p
                    if l < heap.count && worse(heap[l], heap[m]) { m = l }
                    if r < heap.count && worse(heap[r], heap[m]) { m = r }
                    if m == p { break }
                    heap.swapAt(p, m); p = m
                }
            }
        }
        return heap.sorted { worse($1, $0) }.map(\.1)
    }

    /// Mann–Whitney AUC of targets against the non-context, non-target items.
    static func auc(_ s: UnsafeMutablePointer<Float>, n: Int, context: ArraySlice<Int32>, isTarget: Set<Int32>) -> Double {
        var entries: [(Float, Bool)] = []
        entries.reserveCapacity(n)
        for i in 0..<n where s[i] != -.infinity { entries.append((s[i], isTarget.contains(Int32(i)))) }
        let pos = entries.reduce(0) { $0 + ($1.1 ? 1 : 0) }, neg = entries.count - pos
        guard pos > 0, neg > 0 else { return .nan }
        entries.sort { $0.0 < $1.0 }
        var rankSum = 0.0, i = 0
        while i < entries.count {
            var j = i
            while j + 1 < entries.count && entries[j + 1].0 == entries[i].0 { j += 1 }
            let avg = Double(i + j) / 2 + 1
            for t in i...j where entries[t].1 { rankSum += avg }
            i = j + 1
        }
        return (rankSum - Double(pos) * Double(pos + 1) / 2) / (Double(pos) * Double(neg))
    }
}

/// A JSON key chosen at run time (metric names such as `ndcg@10`).
struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
