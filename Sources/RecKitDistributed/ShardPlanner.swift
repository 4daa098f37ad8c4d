import Foundation
import RecKitKernels

/// What the planner knows of one embedding table (from the data: `TableStats.from(_:)` in the CLI).
public struct TableStats: Codable, Sendable, Equatable {
    public var name: String
    /// R.
    public var rows: Int
    /// D.
    public var dim: Int
    /// Mean ids per sample (pooling factor).
    public var pooling: Double
    /// Share of the lookups that go to the hottest rows fitting in `cache_mib` of cache (0: uniform and large).
    public var hotShare: Double
    /// Sum pooling (row-wise shards are allowed).
    public var sumPooling: Bool

    public init(name: String, rows: Int, dim: Int, pooling: Double, hotShare: Double = 0, sumPooling: Bool = true) {
        self.name = name; self.rows = rows; self.dim = dim; self.pooling = pooling; self.hotShare = hotShare; self.sumPooling = sumPooling
    }
}

/// The cost model's constants. Each is a measured rate or latency of this kind of machine; `reckit bench comm`
/// measures them (`--output` writes this JSON) and `reckit plan shard --constants` reads them.
public struct CostConstants: Codable, Sendable, Equatable {
    /// Bytes/s of embedding row gathers from DRAM (random rows), per rank, in GB/s.
    public var lookupDRAMGBps = 6.0
    /// The same for rows that stay in cache (the hot rows), GB/s.
    public var lookupCacheGBps = 30.0
    /// Cache per rank that keeps hot rows, MiB.
    public var cacheMiB = 16.0
    /// Memory passes per looked-up byte over a training step: the forward read, and the backward's read-modify-
    /// write of the row and its optimizer state.
    public var lookupPasses = 3.0
    /// Point-to-point bandwidth between two ranks (all-to-all and allreduce), GB/s.
    public var networkGBps = 5.0
    /// Latency of one message between two ranks, µs.
    public var networkLatencyUs = 5.0
    /// Rate of one core on a whole dense step of a CTR model (MLPs, interaction, loss, the exchanges' packing),
    /// per FLOP of its MLPs and interaction, GFLOP/s (calibrated on a Criteo-shaped DLRM step).
    public var mlpGFlops = 50.0
    /// Speed-up of each thread after a rank's first (its pool's parallel efficiency): c cores run at 1 + (c − 1) × this.
    public var threadEfficiency = 0.8
    /// Cost of one bag of one shard on its owner beyond its bytes (lengths, offsets, the kernel's per-bag work), ns.
    public var bagNs = 20.0
    /// Fixed cost of a step outside the model (batch slicing, loss and small reductions, the optimizer), µs.
    public var stepOverheadUs = 200.0
    /// The dense optimizer's update per parameter (Adam, fused), ns.
    public var optimizerNsPerParameter = 1.0

    public init() {}

    /// Keys missing from a file keep their defaults (files from older runs of `bench comm` still load).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func v(_ k: CodingKeys, _ d: Double) throws -> Double { try c.decodeIfPresent(Double.self, forKey: k) ?? d }
        let d = CostConstants()
        lookupDRAMGBps = try v(.lookupDRAMGBps, d.lookupDRAMGBps); lookupCacheGBps = try v(.lookupCacheGBps, d.lookupCacheGBps)
        cacheMiB = try v(.cacheMiB, d.cacheMiB); lookupPasses = try v(.lookupPasses, d.lookupPasses)
        networkGBps = try v(.networkGBps, d.networkGBps); networkLatencyUs = try v(.networkLatencyUs, d.networkLatencyUs)
        mlpGFlops = try v(.mlpGFlops, d.mlpGFlops); threadEfficiency = try v(.threadEfficiency, d.threadEfficiency)
        bagNs = try v(.bagNs, d.bagNs); stepOverheadUs = try v(.stepOverheadUs, d.stepOverheadUs)
        optimizerNsPerParameter = try v(.optimizerNsPerParameter, d.optimizerNsPerParameter)
    }

    enum CodingKeys: String, CodingKey {
        case lookupDRAMGBps = "lookup_dram_gbps", lookupCacheGBps = "lookup_cache_gbps", cacheMiB = "cache_mib"
        case lookupPasses = "lookup_passes", networkGBps = "network_gbps", networkLatencyUs = "network_latency_us"
        case mlpGFlops = "mlp_gflops", threadEfficiency = "thread_efficiency", bagNs = "bag_ns", stepOverheadUs = "step_overhead_us", optimizerNsPerParameter = "optimizer_ns_per_parameter"
    }

    /// Name → value, as the plan's `constants` object.
    public var dictionary: [String: Double] {
        ["lookup_dram_gbps": lookupDRAMGBps, "lookup_cache_gbps": lookupCacheGBps, "cache_mib": cacheMiB, "lookup_passes": lookupPasses,
         "network_gbps": networkGBps, "network_latency_us": networkLatencyUs, "mlp_gflops": mlpGFlops, "thread_efficiency": threadEfficiency, "bag_ns": bagNs, "step_overhead_us": stepOverheadUs,
         "optimizer_ns_per_parameter": optimizerNsPerParameter]
    }
}

/// The dense side of the model the plan is for.
public struct DenseCost: Codable, Sendable, Equatable {
    /// FLOPs per sample of forward + backward of the MLPs and the interaction.
    public var flopsPerSample: Double
    /// Dense parameters (allreduced every step).
    public var parameters: Int
    public init(flopsPerSample: Double, parameters: Int) { self.flopsPerSample = flopsPerSample; self.parameters = parameters }
}

/// A step's estimated time on each rank, by phase, and the bytes it sends.
public struct StepEstimate: Codable, Sendable {
    public var lookupMs: [Double]
    public var allToAllMs: [Double]
    public var denseMs: Double
    public var allreduceMs: Double
    public var overheadMs: Double
    /// Bytes each rank sends per step in the embedding all-to-alls.
    public var bytesSent: [Double]
    public var stepMs: Double

    enum CodingKeys: String, CodingKey {
        case lookupMs = "lookup_ms", allToAllMs = "all_to_all_ms", denseMs = "dense_ms", allreduceMs = "allreduce_ms"
        case overheadMs = "overhead_ms", bytesSent = "bytes_sent", stepMs = "step_ms"
    }
}

/// Chooses, per table, a sharding kind and ranks that minimise the estimated step time under a per-rank memory
/// limit (greedy, largest cost first), and explains each choice with its runner-up.
///
/// Cost model per step at global batch B on N ranks (b = B/N samples per rank), per rank r:
///   lookup_r  = Σ_{shards s on r} B · p_t · f_s · w_s · 4 B · passes · ((1 − h_t)/bw_dram + h_t/bw_cache) + B · bag_ns
///   a2a_r     = 5 · (N − 1) · latency + max(sent_r, received_r) / bw_net      (counts, ids, pooled, gradients)
///       sent_r: ids and lengths of its b samples to every other owner (b · (4 + 8 · p_t · f_s)), its shards'
///       pooled rows to every other rank ((N − 1) · b · w_s · 4), and its b gradient rows to other owners (b · w_s · 4)
///   dense     = flops/sample · b / mlp_rate;  allreduce = 2 (N − 1)/N · P · 4 / bw_net + 2 (N − 1) · latency
///   step      = max_r (lookup_r + a2a_r) + dense + allreduce + P · optimizer_ns + overhead
/// (p_t pooling factor, f_s the share of a table's ids in shard s, w_s its width, h_t the hot share.)
public struct ShardPlanner: Sendable {
    public var tables: [TableStats]
    public var ranks: Int
    /// Per-rank memory for tables and their optimizer state, bytes.
    public var memoryBytes: Int
    public var batchSize: Int
    public var dense: DenseCost
    public var constants: CostConstants
    public var optimizer: SparseOptimizerKind
    /// Column-wise shards are considered (off with row-wise Adagrad, whose per-row state they change).
    public var allowColumnWise: Bool
    /// Cores each rank computes with (its threads, or its share of the host's cores when ranks outnumber them).
    public var coresPerRank: Double = 1

    /// How much faster than one core a rank runs.
    var speedup: Double { coresPerRank <= 1 ? coresPerRank : 1 + (coresPerRank - 1) * constants.threadEfficiency }

    public init(tables: [TableStats], ranks: Int, memoryBytes: Int, batchSize: Int, dense: DenseCost, constants: CostConstants = CostConstants(),
                optimizer: SparseOptimizerKind = .rowWiseAdagrad, allowColumnWise: Bool? = nil) {
        self.tables = tables; self.ranks = max(ranks, 1); self.memoryBytes = memoryBytes; self.batchSize = batchSize
        self.dense = dense; self.constants = constants; self.optimizer = optimizer
        self.allowColumnWise = allowColumnWise ?? (optimizer != .rowWiseAdagrad)
    }

    /// Bytes of `rows` rows of width `w` with the optimizer's state.
    func bytes(rows: Int, width w: Int) -> Int { rows * w * 4 + optimizer.stateCount(rows: rows, dim: w) * 4 }

    /// One candidate placement's effect on each rank.
    struct Effect {
        var ranks: [Int]
        var memory: [Int]          // per entry of `ranks`
        var lookup: [Double]       // seconds
        /// Bytes each rank of the group sends and receives for this table (all ranks, owners or not).
        var sent: [Double]
        var received: [Double]
    }

    /// Seconds per looked-up byte for table t.
    func secondsPerByte(_ t: TableStats) -> Double {
        let c = constants
        return c.lookupPasses * ((1 - t.hotShare) / (c.lookupDRAMGBps * 1e9) + t.hotShare / (c.lookupCacheGBps * 1e9))
    }

    /// The effect of putting table t's shards (kind, owners) on the group.
    func effect(_ t: TableStats, _ kind: ShardingKind, _ owners: [Int]) -> Effect {
        let n = Double(ranks), bigB = Double(batchSize), b = bigB / n, m = owners.count
        var e = Effect(ranks: owners, memory: [], lookup: [], sent: Array(repeating: 0, count: ranks), received: Array(repeating: 0, count: ranks))
        for j in 0..<m {
            let rowsJ: Int, widthJ: Int, share: Double
            switch kind {
            case .tableWise: rowsJ = t.rows; widthJ = t.dim; share = 1
            case .rowWise: rowsJ = t.rows * (j + 1) / m - t.rows * j / m; widthJ = t.dim; share = 1 / Double(m)
            case .columnWise: rowsJ = t.rows; widthJ = t.dim * (j + 1) / m - t.dim * j / m; share = 1
            }
            e.memory.append(bytes(rows: rowsJ, width: widthJ))
            e.lookup.append((bigB * t.pooling * share * Double(widthJ) * 4 * secondsPerByte(t) + bigB * constants.bagNs * 1e-9) / speedup)
            // Every other rank sends the owner its samples' ids (and lengths) and later their gradient rows, and
            // receives their pooled rows; the owner does the opposite with each of them.
            let ids = b * (4 + 8 * t.pooling * share)
            let rows = b * Double(widthJ) * 4
            let o = owners[j]
            for q in 0..<ranks where q != o {
                e.sent[q] += ids + rows; e.received[q] += rows
                e.sent[o] += rows; e.received[o] += ids + rows
            }
        }
        return e
    }

    /// Running totals per rank.
    struct Load {
        var memory: [Int]
        var lookup: [Double]
        var sent: [Double]
        var received: [Double]
        init(_ n: Int) { memory = Array(repeating: 0, count: n); lookup = Array(repeating: 0, count: n); sent = lookup; received = lookup }

        mutating func add(_ e: Effect) {
            for (i, r) in e.ranks.enumerated() { memory[r] += e.memory[i]; lookup[r] += e.lookup[i] }
            for r in sent.indices { sent[r] += e.sent[r]; received[r] += e.received[r] }
        }
    }

    /// Seconds of lookups + all-to-alls on rank r.
    func embeddingSeconds(_ l: Load, _ r: Int) -> Double {
        guard ranks > 1 else { return l.lookup[r] }
        let c = constants
        return l.lookup[r] + 5 * Double(ranks - 1) * c.networkLatencyUs * 1e-6 + max(l.sent[r], l.received[r]) / (c.networkGBps * 1e9)
    }

    /// The choice's score if `e` were added to `l`: the slowest rank's embedding seconds plus the mean rank's (the
    /// mean keeps a greedy step from buying balance now with work every later table will pay for), and that
    /// slowest rank's seconds and the most memory on a rank.
    func objective(_ l: Load, adding e: Effect) -> (score: Double, seconds: Double, memory: Int) {
        var worst = 0.0, mem = 0, total = 0.0
        var touched = [Int: Int]()
        for (i, r) in e.ranks.enumerated() { touched[r] = i }
        let c = constants
        for r in 0..<ranks {
            var lookup = l.lookup[r], m = l.memory[r]
            let sent = l.sent[r] + e.sent[r], received = l.received[r] + e.received[r]
            if let i = touched[r] { lookup += e.lookup[i]; m += e.memory[i] }
            let s = ranks > 1 ? lookup + 5 * Double(ranks - 1) * c.networkLatencyUs * 1e-6 + max(sent, received) / (c.networkGBps * 1e9) : lookup
            worst = max(worst, s); mem = max(mem, m); total += s
        }
        return (worst + total / Double(ranks), worst, mem)
    }

    /// The candidates for table t given the current load: table-wise on each rank, row-wise over all ranks, and
    /// column-wise over the 2 and 4 least-loaded ranks (when allowed and wide enough).
    func candidates(_ t: TableStats, _ l: Load) -> [(kind: ShardingKind, owners: [Int])] {
        var out: [(ShardingKind, [Int])] = (0..<ranks).map { (.tableWise, [$0]) }
        if ranks > 1, t.sumPooling, t.rows >= ranks { out.append((.rowWise, Array(0..<ranks))) }
        if allowColumnWise, ranks > 1 {
            let order = (0..<ranks).sorted { (l.lookup[$0], $0) < (l.lookup[$1], $1) }
            for m in [2, 4] where m <= ranks && t.dim >= 4 * m { out.append((.columnWise, Array(order.prefix(m)).sorted())) }
        }
        return out
    }

    /// The plan, or a refusal naming the table that does not fit, its bytes and the limit.
    public func plan() throws(DistributedError) -> (plan: ShardingPlan, estimate: StepEstimate) {
        var load = Load(ranks)
        var placements: [String: TablePlacement] = [:]
        // Most expensive first: lookup bytes per step, then size (the ones that are hardest to place).
        let order = tables.indices.sorted {
            let a = tables[$0], b = tables[$1]
            let ca = a.pooling * Double(a.dim) + Double(bytes(rows: a.rows, width: a.dim)) * 1e-9
            let cb = b.pooling * Double(b.dim) + Double(bytes(rows: b.rows, width: b.dim)) * 1e-9
            return (bytes(rows: a.rows, width: a.dim), ca, b.name) > (bytes(rows: b.rows, width: b.dim), cb, a.name)
        }
        let fixed = denseSeconds + allreduceSeconds + overheadSeconds
        for ti in order {
            let t = tables[ti]
            var scored: [(kind: ShardingKind, owners: [Int], score: Double, seconds: Double, memory: Int, effect: Effect)] = []
            for (kind, owners) in candidates(t, load) {
                let e = effect(t, kind, owners)
                guard zip(e.ranks, e.memory).allSatisfy({ load.memory[$0] + $1 <= memoryBytes }) else { continue }
                let o = objective(load, adding: e)
                scored.append((kind, owners, o.score, o.seconds, o.memory, e))
            }
            scored.sort { ($0.score, $0.memory, $0.owners.count, $0.owners.first ?? 0) < ($1.score, $1.memory, $1.owners.count, $1.owners.first ?? 0) }
            guard let best = scored.first else {
                let whole = bytes(rows: t.rows, width: t.dim)
                let split = t.sumPooling && ranks > 1 ? bytes(rows: (t.rows + ranks - 1) / ranks, width: t.dim) : whole
                let free = (0..<ranks).map { memoryBytes - load.memory[$0] }.max() ?? 0
                throw .plan("table \(t.name) (\(t.rows) rows × \(t.dim), \(whole) bytes with \(optimizer.rawValue) state) does not fit: "
                            + "it needs \(split) bytes on a rank even \(t.sumPooling && ranks > 1 ? "row-wise over all \(ranks) ranks" : "whole"), "
                            + "the limit is \(memoryBytes) bytes per rank and the most any rank has left is \(free) bytes "
                            + "(short by \(split - free) bytes; raise --memory-gib or --ranks)")
            }
            load.add(best.effect)
            // The runner-up: the best candidate of another kind, or on other ranks.
            let runner = scored.dropFirst().first { $0.kind != best.kind } ?? scored.dropFirst().first
            var reason = String(format: "%@ on %@: step %.3f ms", best.kind.rawValue, describe(best.owners), (best.seconds + fixed) * 1000)
            if let r = runner {
                reason += String(format: "; runner-up %@ on %@: %.3f ms", r.kind.rawValue, describe(r.owners), (r.seconds + fixed) * 1000)
                if r.seconds <= best.seconds { reason += " (no faster on its busiest rank, but more work on the others)" }
            } else {
                reason += "; no other placement fits the memory limit"
            }
            let e = best.effect
            placements[t.name] = TablePlacement(name: t.name, sharding: best.kind, ranks: best.owners, bytes: e.memory.reduce(0, +),
                                                estimatedMs: (e.lookup.max() ?? 0) * 1000, reason: reason)
        }
        let plan = ShardingPlan(worldSize: ranks, tables: tables.map { placements[$0.name]! }, rankMemoryBytes: load.memory,
                                estimatedStepMs: nil, constants: constants.dictionary)
        var p = plan
        let est = estimate(plan)
        p.estimatedStepMs = est.stepMs
        return (p, est)
    }

    func describe(_ owners: [Int]) -> String {
        owners.count == 1 ? "rank \(owners[0])" : owners.count == ranks && owners == Array(0..<ranks) ? "all \(ranks) ranks" : "ranks \(owners.map(String.init).joined(separator: ","))"
    }

    var denseSeconds: Double { dense.flopsPerSample * Double(batchSize) / Double(ranks) / (constants.mlpGFlops * 1e9 * speedup) }
    var allreduceSeconds: Double {
        guard ranks > 1 else { return 0 }
        let n = Double(ranks)
        return 2 * (n - 1) / n * Double(dense.parameters) * 4 / (constants.networkGBps * 1e9) + 2 * (n - 1) * constants.networkLatencyUs * 1e-6
    }
    var overheadSeconds: Double { constants.stepOverheadUs * 1e-6 + Double(dense.parameters) * constants.optimizerNsPerParameter * 1e-9 }

    /// The estimated step of any plan for these tables (tables it does not name: table-wise, balanced).
    public func estimate(_ plan: ShardingPlan) -> StepEstimate {
        var load = Load(ranks)
        for t in tables {
            let p = plan.placement(of: t.name) ?? TablePlacement(name: t.name, sharding: .tableWise, ranks: [0])
            load.add(effect(t, p.sharding, p.ranks))
        }
        let c = constants
        let a2a = (0..<ranks).map { r in ranks > 1 ? 5 * Double(ranks - 1) * c.networkLatencyUs * 1e-6 + max(load.sent[r], load.received[r]) / (c.networkGBps * 1e9) : 0 }
        let emb = (0..<ranks).map { embeddingSeconds(load, $0) }.max() ?? 0
        let step = emb + denseSeconds + allreduceSeconds + overheadSeconds
        return StepEstimate(lookupMs: load.lookup.map { $0 * 1000 }, allToAllMs: a2a.map { $0 * 1000 }, denseMs: denseSeconds * 1000,
                            allreduceMs: allreduceSeconds * 1000, overheadMs: overheadSeconds * 1000,
                            bytesSent: ranks > 1 ? load.sent : [0], stepMs: step * 1000)
    }
}

import RecKitModels

extension DenseCost {
    /// The dense cost of `model` (built with tiny tables: only its dense layers matter): 6 FLOPs per weight per
    /// sample (forward, and backward's two GEMMs) plus DLRM's pairwise dot interaction over `vectors` vectors of `dim`.
    public static func of(_ model: any CTRModel, vectors: Int, dim: Int) -> DenseCost {
        let params = model.denseParameters.reduce(0) { $0 + $1.value.count }
        let weights = model.denseParameters.filter { $0.shape.count == 2 }.reduce(0) { $0 + $1.value.count }
        let interaction = model.kind == .dlrm ? Double(vectors * (vectors - 1) / 2 * dim) * 2 * 3 : 0
        return DenseCost(flopsPerSample: 6 * Double(weights) + interaction, parameters: params)
    }
}
