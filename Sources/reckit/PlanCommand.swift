import ArgumentParser
import Foundation
import RecKitData
import RecKitKernels
import RecKitModels
import RecKitTiered

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Plan where embedding rows live.", subcommands: [PlanTiering.self, PlanShard.self])
}

struct PlanTiering: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tiering",
        abstract: "From access statistics, decide which tables stay in RAM and which hot rows are pinned in the cache of tiered tables.",
        discussion: "Make the statistics with `reckit data stats DIR --access-counts FILE`; use the plan with `reckit train --tier-dir D --cache-mb N --placement PLAN`.")

    @Option(name: .long, help: "Access statistics from `reckit data stats --access-counts`.")
    var stats: String

    @Option(name: .customLong("cache-mb"), help: "RAM for cached rows (and tables kept whole), MiB.")
    var cacheMB: Int

    @Option(name: .long, help: "Model whose tables are planned: dlrm, dcnv2 (embeddings.<feature>), fm (factors.<feature> and first_order.<feature>), lr.")
    var model: ModelKind = .dlrm

    @Option(name: .customLong("embedding-dim"), help: "Embedding dimension (default 16).")
    var dim = 16

    @Option(name: .customLong("sparse-optimizer"), help: "Sparse optimizer whose state each record carries (default rowwise_adagrad).")
    var sparseOptimizer: SparseOptimizerKind = .rowWiseAdagrad

    @Option(name: .customLong("tier-min-table-mb"), help: "Tables smaller than this stay wholly in RAM (default 64).")
    var minimumTableMB = 64

    @Option(name: .customLong("pin-min-count"), help: "Rows seen fewer times in the statistics are never pinned (default \(TierPlanner.defaultMinimumCount)).")
    var pinMinCount = Int(TierPlanner.defaultMinimumCount)
    @Option(name: .long, help: "Write the plan here (JSON).")
    var output: String?

    @Flag(name: .long, help: "Print the plan as JSON.")
    var json = false

    func run() throws {
        let t0 = Date()
        let statistics: RowAccessStats
        do { statistics = try RowAccessStats.read(stats) } catch { throw CLIError(message: error.description, code: 65) }
        var records: [String: Int] = [:], features: [String: String] = [:]
        let state = { (d: Int) in 4 * self.sparseOptimizer.stateCount(rows: 1, dim: d) }
        for t in statistics.tables {
            switch model {
            case .dlrm, .dcnv2:
                records["embeddings." + t.name] = 4 * dim + state(dim); features["embeddings." + t.name] = t.name
            case .fm:
                records["factors." + t.name] = 4 * dim + state(dim); features["factors." + t.name] = t.name
                records["first_order." + t.name] = 4 + state(1); features["first_order." + t.name] = t.name
            case .lr:
                records["first_order." + t.name] = 4 + state(1); features["first_order." + t.name] = t.name
            }
        }
        var planner = TierPlanner(cacheBytes: cacheMB << 20, recordBytes: records, features: features)
        planner.minimumTableBytes = minimumTableMB << 20
        planner.minimumCount = UInt32(max(1, pinMinCount))
        let statsReference = output.map { out -> String in
            // Relative to the plan's directory when both are in the same place.
            let dir = (out as NSString).deletingLastPathComponent
            return (stats as NSString).deletingLastPathComponent == dir ? (stats as NSString).lastPathComponent : (stats as NSString).standardizingPath
        } ?? stats
        let plan: TierPlacement
        do { plan = try planner.plan(statistics, statsPath: statsReference) } catch { throw CLIError(message: "\(error)", code: 65) }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data = try enc.encode(plan)
        if let output { try data.write(to: URL(fileURLWithPath: output), options: .atomic) }
        if json { print(String(decoding: data, as: UTF8.self)); return }
        let seconds = Date().timeIntervalSince(t0)
        print(String(format: "plan for %d tables under %d MiB: expected hit rate %.4f from resident tables and pinned rows (%.2f s)",
                     plan.tables.count, cacheMB, plan.expectedHitRate, seconds))
        print("table                      mode      rows          cache rows   pinned      RAM MiB  hit rate")
        let rows = Dictionary(statistics.tables.map { ($0.name, $0.rows) }, uniquingKeysWith: { a, _ in a })
        for t in plan.tables {
            let r = rows[t.feature] ?? 0, rb = plan.recordBytes[t.name] ?? 0
            let ram = t.mode == .resident ? Double(r * rb) : Double(t.cacheRows * (rb + TieredStorageProvider.slotOverheadBytes))
            print(t.name.padding(toLength: 27, withPad: " ", startingAt: 0) + t.mode.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
                  + String(format: "%-13d %-12d %-11d %7.1f  %.4f", r, t.cacheRows, t.pinnedRows, ram / 1_048_576, t.expectedHitRate))
        }
        if let output { print("written: \(output)") }
    }
}
