import Foundation
import Testing

/// `mpirun -np N reckit train --distributed mpi`: the same results as one process, checkpoints that load at another
/// world size and in `reckit eval`, and a killed rank that stops the job quickly and leaves a checkpoint to resume.
/// The mpirun the tests launch (scripts/bootstrap.sh installs openmpi-bin).
let mpirunPath: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

@Suite("reckit train under mpirun", .serialized, .enabled(if: mpirunPath != nil, "mpirun not installed (scripts/bootstrap.sh installs openmpi-bin)"))
struct DistributedCLITests {
    static var mpirun: String? { mpirunPath }

    /// mpirun may run as root in CI containers and must oversubscribe the 2 cores at np 4.
    static let env = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1"]

    static func mpi(_ np: Int, _ args: [String], env extra: [String: String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun!)
        p.arguments = ["-np", String(np), CLIContractTests.binary.path] + args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env.merging(extra, uniquingKeysWith: { $1 }) { e[k] = v }
        p.environment = e
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), r = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: r, as: UTF8.self))
    }

    static func json(_ s: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any], "not JSON: \(s.prefix(300))")
    }

    static func dataset(_ name: String) throws -> (dir: String, data: String, env: [String: String]) {
        let dir = DataCLIContractTests.tmp(name)
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger", "RECKIT_RUNS_DIR": dir + "/runs"]
        let r = try CLIContractTests.run(["data", "synth", "--rows", "6000", "--tables", "300,300,50,1000,20", "--user-tables", "2",
                                          "--output", dir + "/d"], env: env)
        #expect(r.status == 0, "\(r.err)")
        return (dir, dir + "/d", env)
    }

    @Test("np 2 and np 4 (--deterministic) give one process's final loss and validation AUC; the np 2 checkpoint resumes at np 1 and evaluates")
    func matchesSingleProcess() throws {
        let (dir, data, env) = try Self.dataset("mpi-train")
        let common = ["train", "--model", "dlrm", "--data", data, "--epochs", "1", "--batch-size", "256", "--patience", "0", "--json"]
        let single = try CLIContractTests.run(common + ["--run-name", "single", "--threads", "1"], env: env)
        #expect(single.status == 0, "\(single.err)")
        let s = try Self.json(single.out)
        for np in [2, 4] {
            let r = try Self.mpi(np, common + ["--run-name", "np\(np)", "--distributed", "mpi", "--deterministic"], env: env)
            #expect(r.status == 0, "np \(np): \(r.err.suffix(2000))")
            #expect(r.err.contains("Open MPI") && r.err.contains("of \(np)"), "the log names the backend and world size")
            let j = try Self.json(r.out)      // only rank 0 prints
            let l1 = try #require(s["final_loss"] as? Double), l2 = try #require(j["final_loss"] as? Double)
            #expect(abs(l1 - l2) <= 1e-6 * abs(l1), "np \(np) final loss \(l2) vs \(l1)")
            let a1 = try #require((s["validation"] as? [String: Any])?["auc"] as? Double)
            let a2 = try #require((j["validation"] as? [String: Any])?["auc"] as? Double)
            #expect(abs(a1 - a2) <= 1e-5, "np \(np) AUC \(a2) vs \(a1)")
            #expect(j["rows_trained"] as? Int == s["rows_trained"] as? Int)
        }
        // Stop at np 2 after 5 steps; one process continues from its checkpoint to the same end.
        let half = try Self.mpi(2, common + ["--run-name", "half", "--distributed", "mpi", "--deterministic", "--max-steps", "5"], env: env)
        #expect(half.status == 0, "\(half.err.suffix(2000))")
        let ckpt = dir + "/runs/half/checkpoint.safetensors"
        let resumed = try CLIContractTests.run(["train", "--model", "dlrm", "--data", data, "--resume", ckpt, "--json", "--threads", "1",
                                                "--run-name", "half", "--patience", "0"], env: env)
        #expect(resumed.status == 0, "\(resumed.err)")
        let rj = try Self.json(resumed.out)
        let lr = try #require(rj["final_loss"] as? Double), l1 = try #require(s["final_loss"] as? Double)
        #expect(abs(lr - l1) <= 1e-5 * abs(l1), "np 2 → np 1 resumed final loss \(lr) vs \(l1)")
        let eval = try CLIContractTests.run(["eval", "--model", dir + "/runs/np4/checkpoint.safetensors", "--data", data], env: env)
        #expect(eval.status == 0 && eval.out.contains("AUC"), "\(eval.err)")
    }

    @Test("a rank killed mid-run stops the job within 30 s with a message naming it, and --resume continues from the last checkpoint")
    func killedRank() throws {
        let (dir, data, env) = try Self.dataset("mpi-fault")
        let ckpt = dir + "/ckpt.safetensors"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.mpirun!)
        p.arguments = ["-np", "2", CLIContractTests.binary.path, "train", "--model", "dlrm", "--data", data, "--epochs", "50", "--batch-size", "128",
                       "--patience", "0", "--distributed", "mpi", "--checkpoint-every", "5", "--output", ckpt, "--run-name", "fault"]
        var e = ProcessInfo.processInfo.environment
        for (k, v) in Self.env.merging(env, uniquingKeysWith: { $1 }) { e[k] = v }
        p.environment = e
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        // Wait for the first periodic checkpoint, then kill rank 1.
        let start = Date()
        while !FileManager.default.fileExists(atPath: ckpt), Date().timeIntervalSince(start) < 120 { usleep(100_000) }
        #expect(FileManager.default.fileExists(atPath: ckpt), "no checkpoint after 120 s")
        let victim = try #require(Self.rank(1, of: p.processIdentifier), "rank 1's process")
        kill(victim, SIGKILL)
        let killed = Date()
        while p.isRunning, Date().timeIntervalSince(killed) < 60 { usleep(100_000) }
        let stopped = Date().timeIntervalSince(killed)
        if p.isRunning { p.terminate() }
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(stopped < 30, "the job took \(stopped) s to stop after rank 1 died")
        #expect(p.terminationStatus != 0)
        #expect(message.contains("rank 1") || message.contains("signal 9") || message.contains("Killed"), "\(message.suffix(1500))")
        let resumed = try Self.mpi(2, ["train", "--model", "dlrm", "--data", data, "--epochs", "1", "--patience", "0", "--distributed", "mpi",
                                       "--resume", ckpt, "--output", dir + "/after.safetensors", "--run-name", "after", "--json"], env: env)
        #expect(resumed.status == 0, "\(resumed.err.suffix(2000))")
    }

    /// The pid of MPI rank `rank` among the descendants of `parent` (read from each process's environment).
    static func rank(_ rank: Int, of parent: Int32) -> Int32? {
        guard let all = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for name in all {
            guard let pid = Int32(name), let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
            let vars = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard vars.contains("OMPI_COMM_WORLD_RANK=\(rank)"), vars.contains(where: { $0.hasPrefix("RECKIT_RUNS_DIR=") && $0.contains("mpi-fault") }) else { continue }
            _ = parent
            return pid
        }
        return nil
    }
}
