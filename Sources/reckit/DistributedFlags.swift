import ArgumentParser
import Foundation
import Logging
import RecKitDistributed
import RecKitKernels

/// How `reckit train` spreads over processes.
enum DistributedMode: String, ExpressibleByArgument, CaseIterable {
    /// One rank per process, launched by `mpirun -np N` (Open MPI).
    case mpi
    /// `--ranks` ranks as threads of this process (the same code path without MPI: tests, trying plans).
    case threads
}

/// `--distributed`, `--ranks`, `--plan`, `--deterministic`: hybrid-parallel training (RecKitDistributed).
struct DistributedFlags: ParsableArguments {
    @Option(name: .long, help: "Train as one rank of several: mpi (each process of `mpirun -np N reckit train …`) or threads (--ranks in-process ranks).")
    var distributed: DistributedMode?

    @Option(name: .long, help: "With --distributed threads: the number of ranks (default 2).")
    var ranks: Int?

    @Option(name: .long, help: "Sharding plan from `reckit plan shard --json` (default: tables table-wise, largest first onto the least-loaded rank).")
    var plan: String?

    @Flag(name: .long, help: "Sum gradients in rank order (bit-reproducible at a given world size) instead of overlapping MPI's own allreduce.")
    var deterministic = false

    /// CPUs this process may run on (its affinity mask, `Cpus_allowed` of /proc/self/status).
    static func allowedCores() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return ThreadPool.hardwareConcurrency }
        let hex = line.dropFirst("Cpus_allowed:".count).filter { $0.isHexDigit }
        let n = hex.reduce(0) { $0 + (Int(String($1), radix: 16) ?? 0).nonzeroBitCount }
        return n > 0 ? n : ThreadPool.hardwareConcurrency
    }

    func loadPlan() throws -> ShardingPlan? {
        guard let plan else { return nil }
        guard let data = FileManager.default.contents(atPath: plan) else { throw CLIError(message: "--plan \(plan): cannot read the file", code: 66) }
        do { return try JSONDecoder().decode(ShardingPlan.self, from: data) } catch {
            throw CLIError(message: "--plan \(plan): not a sharding plan (\(error))", code: 65)
        }
    }

    /// Runs `body` once (no --distributed), once in this process as its MPI rank, or once per in-process rank;
    /// passes the threads each rank's pool gets (by default the cores shared among the ranks on this host).
    func run(threads requested: Int?, log: Logger, _ body: @escaping @Sendable (DistributedTraining?, Int) throws -> Void) throws {
        let cores = ThreadPool.hardwareConcurrency
        if ranks != nil, distributed != .threads { throw ValidationError("--ranks goes with --distributed threads (under mpirun, -np sets the ranks)") }
        guard let distributed else {
            if plan != nil || deterministic { throw ValidationError("--plan and --deterministic need --distributed mpi or threads") }
            try body(nil, max(1, requested ?? cores))
            return
        }
        let plan = try loadPlan()
        switch distributed {
        case .mpi:
            let comm: MPICommunicator
            do { comm = try MPICommunicator.world() } catch {
                throw CLIError(message: "--distributed mpi: \(error.reason)", code: 69)
            }
            let local = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? comm.size
            let d = DistributedTraining(comm: comm, plan: plan, deterministic: deterministic)
            let threads = max(1, requested ?? cores / max(local, 1))
            // mpirun binds each rank to one core by default (np ≤ 2): more threads than that only take turns.
            let allowed = Self.allowedCores()
            if threads > allowed {
                log.warning("rank \(comm.rank): \(threads) threads but this process may run on \(allowed) core(s) (mpirun binds ranks to cores); use `mpirun --bind-to none` or `--map-by slot:PE=\(threads)`")
            }
            do {
                try body(d, threads)
            } catch {
                // Stop every rank now (MPI_Abort) rather than leave them waiting in a collective.
                log.error("rank \(comm.rank): \(error)")
                if comm.size > 1 { comm.abort(code: 1, reason: "\(error)") }
                comm.finalize()
                throw error
            }
            comm.finalize()
        case .threads:
            let n = ranks ?? 2
            guard n >= 1 else { throw ValidationError("--ranks must be at least 1") }
            let each = max(1, (requested ?? cores) / n)
            _ = try InProcessGroup.run(size: n) { comm -> Int in
                try body(DistributedTraining(comm: comm, plan: plan, deterministic: deterministic), each)
                return 0
            }
        }
    }
}
