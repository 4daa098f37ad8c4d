import ArgumentParser
import Foundation
import Logging
import RecKitBenchmarks
import RecKitData
import RecKitDistributed
import RecKitKernels
import RecKitModels
import RecKitTraining

/// `reckit bench comm`: the cost model's constants measured on this machine (network between the ranks, lookup
/// and MLP rates of one rank), for `reckit plan shard --constants`.
struct BenchComm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comm", abstract: "Measure all-to-all, allreduce and latency between ranks, and one rank's lookup and MLP rates (the planner's constants).",
        discussion: "Run it as `mpirun -np 2 reckit bench comm --distributed mpi --output constants.json` (or --distributed threads --ranks 2).")

    @OptionGroup var distribution: DistributedFlags
    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: "Write the constants here (JSON for `reckit plan shard --constants`).")
    var output: String?

    @Flag(name: .long, help: "Fewer repeats and smaller messages (smoke runs).")
    var quick = false

    func run() throws {
        let log = CLILog.logger("reckit.bench")
        guard distribution.distributed != nil else { throw ValidationError("bench comm needs ranks: --distributed mpi (under mpirun) or --distributed threads --ranks N") }
        let output = self.output, quick = self.quick, json = common.json
        try distribution.run(threads: common.threads, log: log) { d, threads in
            guard let d else { return }
            let r = try Calibration.run(d.comm, pool: ThreadPool(threads: threads), quick: quick)
            guard d.rank == 0 else { return }
            if let output {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                try CLIError.onDataError(code: 73) { () throws(DataError) in try AtomicFile.write(try! enc.encode(r.constants), to: output) }
            }
            if json { try printJSON(WithMachine(r)); return }
            let c = r.constants
            print("\(r.backend), \(threads) threads per rank, on \(MachineInfo.current(isa: CPUFeatures.host.summary, openblasCore: nil).cpu)")
            print(String(format: "all-to-all %.2f GB/s per rank (%d KiB per peer), latency %.1f µs per peer, allreduce %.2f GB/s (%d floats)",
                         r.allToAllGBps, r.allToAllBytesPerPeer / 1024, r.latencyUs, r.allreduceGBps, r.allreduceFloats))
            print(String(format: "lookup + update: DRAM %.2f GB/s, cache %.2f GB/s (×%.0f passes), %.1f ns per bag; MLP %.1f GFLOP/s",
                         c.lookupDRAMGBps, c.lookupCacheGBps, c.lookupPasses, c.bagNs, c.mlpGFlops))
            if let output { print("constants written to \(output) (use: reckit plan shard --constants \(output))") }
        }
    }
}

/// `bench train --distributed`: hybrid-parallel DLRM steps on a dataset, per-phase time per rank, bytes sent, and
/// the planner's prediction for the same plan.
enum DistributedTrainBench {
    struct Output: Encodable {
        let result: DistributedBenchmark.Result
        let predicted: StepEstimate
        let predictionError: Double
        let bytesSentPerStep: Double
        let predictedBytesSentPerStep: Double
        let plan: ShardingPlan
        let machine: MachineInfo
        enum Keys: String, CodingKey {
            case predicted, prediction_error, bytes_sent_per_step, predicted_bytes_sent_per_step, plan, machine
        }
        func encode(to encoder: Encoder) throws {
            try result.encode(to: encoder)
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(predicted, forKey: .predicted)
            try c.encode(predictionError, forKey: .prediction_error)
            try c.encode(bytesSentPerStep, forKey: .bytes_sent_per_step)
            try c.encode(predictedBytesSentPerStep, forKey: .predicted_bytes_sent_per_step)
            try c.encode(plan, forKey: .plan)
            try c.encode(machine, forKey: .machine)
        }
    }

    static func run(data: String, batchSize: Int, steps: Int, constants: String?, distribution: DistributedFlags, threads: Int?, json: Bool,
                    log: Logger) throws {
        let ds: ShardDataset
        do throws(DataError) { ds = try ShardDataset(directory: data) } catch { throw CLIError(message: error.description, code: 65) }
        let given = try distribution.loadPlan(), constantsUsed = try PlanInputs.constants(constants)
        try distribution.run(threads: threads, log: log) { d, threads in
            guard let d else { return }
            var o = TrainOptions()
            o.batchSize = batchSize
            o.threads = threads
            let model = try CLIError.onTrainingError { () throws(TrainingError) in try d.makeModel(o.modelConfiguration(.dlrm, schema: ds.schema), options: o) }
            let trainer = try CLIError.onTrainingError { () throws(TrainingError) in
                try Trainer(model: model, optimizer: DenseOptimizer(kind: o.denseOptimizer), options: o, pool: ThreadPool(threads: threads))
            }
            try CLIError.onTrainingError { () throws(TrainingError) in try d.attach(trainer) }
            if d.rank == 0 { log.info("\(d.summary); \(steps) steps of \(batchSize) on \(data)") }
            let r = try DistributedBenchmark.run(trainer, d, source: d.shard(ShardBatchSource(dataset: ds, batchSize: batchSize)), steps: steps)
            guard d.rank == 0 else { return }
            // The planner's estimate for the plan this run used.
            let plan = given ?? ShardingPlan.balanced(model.embeddingCollections[0].specs, ranks: d.worldSize)
            let stats: RowAccessStats
            do throws(DataError) { stats = try RowAccessStats.count(ds, maxRows: 200_000) } catch { throw CLIError(message: error.description, code: 65) }
            let (tables, dense) = try PlanInputs.make(ds, stats: stats, sampled: min(200_000, ds.manifest.rows), model: .dlrm, options: o,
                                                      ranks: d.worldSize, constants: constantsUsed)
            var planner = ShardPlanner(tables: tables, ranks: d.worldSize, memoryBytes: .max, batchSize: batchSize, dense: dense, constants: constantsUsed,
                                       optimizer: o.sparseOptimizer)
            // Each rank computes with its threads, or its share of the cores when the ranks outnumber them.
            let local = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? d.worldSize
            planner.coresPerRank = min(Double(threads), Double(ThreadPool.hardwareConcurrency) / Double(max(local, 1)))
            let est = planner.estimate(plan)
            let measuredBytes = r.perRank.map(\.bytesSentPerStep).max() ?? 0
            let out = Output(result: r, predicted: est, predictionError: abs(est.stepMs - r.stepMs) / r.stepMs, bytesSentPerStep: measuredBytes,
                             predictedBytesSentPerStep: d.worldSize > 1 ? est.bytesSent.max() ?? 0 : 0, plan: plan,
                             machine: MachineInfo.current(isa: CPUFeatures.host.summary, openblasCore: BLASRuntime.available?.coreName))
            if json { try printJSON(out); return }
            print(String(format: "%d ranks × %d threads: %.0f samples/s, step %.2f ms (predicted %.2f ms, error %.0f%%); bytes sent per step %.0f (model %.0f)",
                         r.ranks, r.threadsPerRank, r.samplesPerSecond, r.stepMs, est.stepMs, 100 * out.predictionError, measuredBytes,
                         out.predictedBytesSentPerStep))
            for p in r.perRank {
                print(String(format: "  rank %d: step %.2f ms = batch %.2f + lookups %.2f + all-to-all %.2f + allreduce %.2f + dense and the rest %.2f (optimizer %.2f); sent %.0f B/step",
                             p.rank, p.stepMs, p.loaderMs, p.lookupMs, p.allToAllMs, p.allreduceMs, p.denseMs, p.optimizerMs, p.bytesSentPerStep))
            }
            print(String(format: "  model: lookups %@ ms, all-to-all %@ ms, dense %.2f, allreduce %.2f, overhead %.2f",
                         est.lookupMs.map { String(format: "%.2f", $0) }.joined(separator: "/"), est.allToAllMs.map { String(format: "%.2f", $0) }.joined(separator: "/"),
                         est.denseMs, est.allreduceMs, est.overheadMs))
        }
    }
}

/// A result with the machine it was measured on.
struct WithMachine<T: Encodable>: Encodable {
    let value: T
    init(_ v: T) { value = v }
    enum Keys: String, CodingKey { case machine }
    func encode(to encoder: Encoder) throws {
        try value.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(MachineInfo.current(isa: CPUFeatures.host.summary, openblasCore: BLASRuntime.available?.coreName), forKey: .machine)
    }
}
