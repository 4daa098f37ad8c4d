import ArgumentParser
import Foundation
import RecKitData
import RecKitDistributed
import RecKitKernels
import RecKitModels
import RecKitTraining

/// `reckit plan shard`: where each embedding table lives on N ranks, from the data's statistics and a cost model.
struct PlanShard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shard",
        abstract: "Choose per table a sharding (table-, row- or column-wise) and ranks that minimise the estimated step time under a memory limit.",
        discussion: """
            Statistics (rows, pooling factor, access skew) come from the dataset; the cost model's constants from \
            `reckit bench comm --output F` (--constants F), or defaults. Use the plan with `reckit train --plan F`. \
            Works for any --ranks without starting them: it is a model, compared with measured runs in docs/distributed.md.
            """)

    @Option(name: .long, help: "Shard dataset directory the model trains on.")
    var dataset: String

    @Option(name: .long, help: "Ranks (processes) to plan for.")
    var ranks: Int

    @Option(name: .customLong("memory-gib"), help: "Memory per rank for embedding tables and their optimizer state, GiB.")
    var memoryGiB: Double

    @Option(name: .customLong("bandwidth-gbps"), help: "Network bandwidth between ranks, GB/s (overrides the constants' network_gbps).")
    var bandwidthGBps: Double?

    @Option(name: .long, help: "Cost-model constants (JSON from `reckit bench comm --output`).")
    var constants: String?

    @Option(name: .long, help: "Model: dlrm, dcnv2, fm, lr (default dlrm).")
    var model: ModelKind = .dlrm

    @Option(name: .customLong("embedding-dim"), help: "Embedding dimension (default 16).")
    var dim = 16

    @Option(name: .customLong("batch-size"), help: "Global batch size (default: what `reckit train` picks for this dataset).")
    var batchSize: Int?

    @Option(name: .customLong("sparse-optimizer"), help: "Sparse optimizer (its state counts toward memory; default rowwise_adagrad).")
    var sparseOptimizer: SparseOptimizerKind = .rowWiseAdagrad

    @Option(name: .customLong("cores-per-rank"), help: "Cores each rank computes with (default 1).")
    var coresPerRank = 1.0

    @Option(name: .customLong("sample-rows"), help: "Rows read for the statistics (default 1,000,000).")
    var sampleRows = 1_000_000

    @Option(name: .long, help: "Write the plan (JSON) here, for `reckit train --plan`.")
    var output: String?

    @Flag(name: .long, help: "Print the plan as JSON.")
    var json = false

    func run() throws {
        let t0 = Date()
        guard ranks >= 1 else { throw ValidationError("--ranks must be at least 1") }
        guard memoryGiB > 0 else { throw ValidationError("--memory-gib must be positive") }
        let ds: ShardDataset
        let stats: RowAccessStats
        do throws(DataError) {
            ds = try ShardDataset(directory: dataset)
            stats = try RowAccessStats.count(ds, maxRows: sampleRows)
        } catch { throw CLIError(message: error.description, code: 65) }
        var c = try PlanInputs.constants(constants)
        if let bandwidthGBps { c.networkGBps = bandwidthGBps }
        var o = TrainOptions.recipe(rows: ds.manifest.rows)
        o.embeddingDim = dim
        if let batchSize { o.batchSize = batchSize }
        let sampled = min(sampleRows, ds.manifest.rows)
        let (tables, dense) = try PlanInputs.make(ds, stats: stats, sampled: sampled, model: model, options: o, ranks: ranks, constants: c)
        var planner = ShardPlanner(tables: tables, ranks: ranks, memoryBytes: Int(memoryGiB * 1_073_741_824), batchSize: o.batchSize, dense: dense,
                                   constants: c, optimizer: sparseOptimizer)
        planner.coresPerRank = coresPerRank
        let result: (plan: ShardingPlan, estimate: StepEstimate)
        let s0 = Date()
        do throws(DistributedError) { result = try planner.plan() } catch { throw CLIError(message: error.description, code: 65) }
        let solveSeconds = Date().timeIntervalSince(s0)
        let seconds = Date().timeIntervalSince(t0)
        if let output {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try CLIError.onDataError(code: 73) { () throws(DataError) in try AtomicFile.write(try! enc.encode(result.plan), to: output) }
        }
        if json {
            try printJSON(PlanShardOutput(plan: result.plan, estimate: result.estimate, batchSize: o.batchSize, statistics: tables,
                                          dense: dense, planningSeconds: seconds, solveSeconds: solveSeconds))
            return
        }
        print("plan for \(ranks) ranks, \(String(format: "%.2f", memoryGiB)) GiB each, global batch \(o.batchSize), \(sparseOptimizer.rawValue) "
              + "(statistics from \(sampled) rows of \(dataset)); planned in \(String(format: "%.2f", seconds)) s (\(String(format: "%.2f", solveSeconds)) s choosing)")
        print("table".padding(toLength: 14, withPad: " ", startingAt: 0) + "rows".leftPad(11) + "pool".leftPad(6) + "hot".leftPad(6)
              + "  sharding     ranks".padding(toLength: 30, withPad: " ", startingAt: 0) + "bytes".leftPad(13) + "lookup ms".leftPad(11) + "  why")
        for (t, p) in zip(tables, result.plan.tables) {
            print(t.name.padding(toLength: 14, withPad: " ", startingAt: 0) + String(t.rows).leftPad(11) + String(format: "%.2f", t.pooling).leftPad(6)
                  + String(format: "%.2f", t.hotShare).leftPad(6) + "  " + p.sharding.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
                  + p.ranks.map(String.init).joined(separator: ",").padding(toLength: 16, withPad: " ", startingAt: 0)
                  + String(p.bytes).leftPad(13) + String(format: "%.3f", p.estimatedMs ?? 0).leftPad(11) + "  " + (p.reason ?? ""))
        }
        let e = result.estimate
        print("bytes per rank: " + result.plan.rankMemoryBytes.map(String.init).joined(separator: ", "))
        print(String(format: "estimated step %.3f ms: embeddings (lookups + all-to-all) up to %.3f ms, dense %.3f ms, allreduce %.3f ms, overhead %.3f ms; sent per rank per step up to %.0f bytes",
                     e.stepMs, zip(e.lookupMs, e.allToAllMs).map { $0 + $1 }.max() ?? 0, e.denseMs, e.allreduceMs, e.overheadMs, e.bytesSent.max() ?? 0))
        if let output { print("plan written to \(output) (use: reckit train --plan \(output))") }
    }
}

/// `plan shard --json`: the plan (contract keys `tables`, `rank_memory_bytes`, `estimated_step_ms`, `constants`),
/// the estimate by phase, the statistics and the planning time.
struct PlanShardOutput: Encodable {
    let plan: ShardingPlan
    let estimate: StepEstimate
    let batchSize: Int
    let statistics: [TableStats]
    let dense: DenseCost
    let planningSeconds: Double
    /// The planner alone (without reading the statistics).
    let solveSeconds: Double
    enum Keys: String, CodingKey { case estimate, batch_size, statistics, dense, planning_seconds, solve_seconds }
    func encode(to encoder: Encoder) throws {
        try plan.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(estimate, forKey: .estimate)
        try c.encode(batchSize, forKey: .batch_size)
        try c.encode(statistics, forKey: .statistics)
        try c.encode(dense, forKey: .dense)
        try c.encode(planningSeconds, forKey: .planning_seconds)
        try c.encode(solveSeconds, forKey: .solve_seconds)
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

/// What the planner needs from a dataset and a model: per-table statistics and the dense cost.
enum PlanInputs {
    /// The cost model's constants from `--constants FILE` (`bench comm --output`), or the defaults.
    static func constants(_ path: String?) throws -> CostConstants {
        guard let path else { return CostConstants() }
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError(message: "--constants \(path): cannot read", code: 66) }
        do { return try JSONDecoder().decode(CostConstants.self, from: data) } catch { throw CLIError(message: "--constants \(path): \(error)", code: 65) }
    }

    static func make(_ ds: ShardDataset, stats: RowAccessStats, sampled: Int, model: ModelKind, options o: TrainOptions, ranks: Int,
                     constants c: CostConstants) throws -> (tables: [TableStats], dense: DenseCost) {
        // Dense cost from the model itself, built with one-row tables (only its dense layers matter here).
        var tiny = ds.schema
        for i in tiny.sparse.indices { tiny.sparse[i].cardinality = 1 }
        let shape = try CLIError.onTrainingError { () throws(TrainingError) -> any CTRModel in
            do throws(ModelError) {
                return try o.modelConfiguration(model, schema: tiny).makeModel(initialization: .none, sparseOptimizer: nil, quantization: nil)
            } catch { throw .model(error) }
        }
        let tableDims = shape.embeddingCollections.flatMap { c in c.specs.map { ($0.name, $0.dim) } }
        let dense = DenseCost.of(shape, vectors: ds.schema.sparse.count + 1, dim: o.embeddingDim)
        // Per table: the hottest rows that fit this table's share of a rank's cache.
        let perTableCache = c.cacheMiB * 1_048_576 * Double(ranks) / Double(max(tableDims.count, 1))
        let byName = Dictionary(stats.tables.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var tables: [TableStats] = []
        for (name, d) in tableDims {
            guard let s = byName[name] else { continue }
            let hot = s.lookups == 0 ? 0 : Double(s.lookups(ofHottest: Int(perTableCache / Double(d * 4)))) / Double(s.lookups)
            let pooling = sampled == 0 ? 1 : Double(s.lookups) / Double(sampled)
            // FM's first-order (dim 1) and factor tables share a name: plan them as one table of both widths.
            if let i = tables.firstIndex(where: { $0.name == name }) { tables[i].dim += d; continue }
            tables.append(TableStats(name: name, rows: s.rows, dim: d, pooling: pooling, hotShare: hot))
        }
        return (tables, dense)
    }
}
