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

    static func mpi(_ np: Int, _ args: [String], env extra: [String: String], launcher: [String] = []) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun!)
        p.arguments = launcher + ["-np", String(np), CLIContractTests.binary.path] + args
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

    @Test("np 2, np 4 and np 2 over TCP (--deterministic) give one process's final loss and validation AUC; the np 2 checkpoint resumes at np 1 and evaluates")
    func matchesSingleProcess() throws {
        let (dir, data, env) = try Self.dataset("mpi-train")
        let common = ["train", "--model", "dlrm", "--data", data, "--epochs", "1", "--batch-size", "256", "--patience", "0", "--json"]
        let single = try CLIContractTests.run(common + ["--run-name", "single", "--threads", "1"], env: env)
        #expect(single.status == 0, "\(single.err)")
        let s = try Self.json(single.out)
        // The third run uses TCP over loopback instead of shared memory: the transport a hostfile's hosts use.
        for (np, launcher) in [(2, [String]()), (4, []), (2, ["--mca", "btl", "tcp,self"])] {
            let r = try Self.mpi(np, common + ["--run-name", "np\(np)\(launcher.isEmpty ? "" : "-tcp")", "--distributed", "mpi", "--deterministic"],
                                 env: env, launcher: launcher)
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
        // The carbon ledger has one row per distributed run, recorded by rank 0 with every rank's energy in it.
        let ledger = try String(contentsOfFile: dir + "/ledger/ledger.jsonl", encoding: .utf8).split(separator: "\n").map { try Self.json(String($0)) }
        let notes = ledger.filter { $0["command"] as? String == "train" }.compactMap { $0["method_note"] as? String }
        #expect(notes.count == 6, "one row per run (single, np 2, np 4, np 2 TCP, half, resumed): \(notes)")
        #expect(notes.filter { $0.contains("2 ranks on 1 host") }.count == 3 && notes.filter { $0.contains("4 ranks on 1 host") }.count == 1, "\(notes)")
        let eval = try CLIContractTests.run(["eval", "--model", dir + "/runs/np4/checkpoint.safetensors", "--data", data], env: env)
        #expect(eval.status == 0 && eval.out.contains("AUC"), "\(eval.err)")
    }

    /// Network namespaces can be made here (root with CAP_NET_ADMIN and iproute2): the simulated hosts of `twoHosts`.
    static let netnsAvailable: Bool = {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip") else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "ip netns add rkprobe$$ && ip netns del rkprobe$$"]
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    @Test("np 2 on two simulated hosts (network namespaces: separate network stacks, TCP only, ranks launched through an rsh agent as over ssh) gives one process's final loss; its checkpoint evaluates",
          .enabled(if: netnsAvailable, "needs root with CAP_NET_ADMIN and iproute2 to make network namespaces"))
    func twoHosts() throws {
        let (dir, data, env) = try Self.dataset("mpi-netns")
        let script = CLIContractTests.root.appendingPathComponent("scripts/netns-hosts.sh").path
        let common = ["train", "--model", "dlrm", "--data", data, "--epochs", "1", "--batch-size", "256", "--patience", "0", "--json"]
        let single = try CLIContractTests.run(common + ["--run-name", "single", "--threads", "1"], env: env)
        #expect(single.status == 0, "\(single.err)")
        func sh(_ args: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = [script] + args
            let out = Pipe(); p.standardOutput = out; p.standardError = FileHandle.nullDevice
            try p.run()
            let o = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: o, as: UTF8.self))
        }
        let (status, hosts) = try sh(["up", "2"])
        defer { _ = try? sh(["down", "2"]) }
        try #require(status == 0, "could not make the namespaces")
        try hosts.write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
        let launcher = ["--hostfile", dir + "/hosts", "--mca", "plm_rsh_agent", script + " rsh", "--mca", "btl", "tcp,self",
                        "--mca", "btl_tcp_if_include", "10.77.0.0/16", "--mca", "oob_tcp_if_include", "10.77.0.0/16"]
        let r = try Self.mpi(2, common + ["--run-name", "hosts", "--distributed", "mpi", "--deterministic"], env: env, launcher: launcher)
        #expect(r.status == 0, "\(r.err.suffix(3000))")
        let s = try Self.json(single.out), j = try Self.json(r.out)
        let l1 = try #require(s["final_loss"] as? Double), l2 = try #require(j["final_loss"] as? Double)
        #expect(abs(l1 - l2) <= 1e-6 * abs(l1), "two hosts: final loss \(l2) vs \(l1)")
        let eval = try CLIContractTests.run(["eval", "--model", dir + "/runs/hosts/checkpoint.safetensors", "--data", data], env: env)
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

/// `reckit plan shard`, `bench comm` and `bench train --distributed` through the CLI, without MPI (threads ranks).
@Suite("reckit plan shard and the distributed benchmarks")
struct PlanShardCLITests {
    @Test("plan shard --json has the contract keys; the plan drives train --plan; an impossible limit names the table, bytes and limit")
    func planShard() throws {
        let (dir, data, env) = try DistributedCLITests.dataset("plan-shard")
        let r = try CLIContractTests.run(["plan", "shard", "--dataset", data, "--ranks", "2", "--memory-gib", "1", "--json",
                                          "--output", dir + "/plan.json"], env: env)
        #expect(r.status == 0, "\(r.err)")
        let j = try DistributedCLITests.json(r.out)
        let tables = try #require(j["tables"] as? [[String: Any]])
        #expect(tables.count == 5)
        for t in tables {
            for key in ["name", "sharding", "ranks", "bytes"] { #expect(t[key] != nil, "table misses \(key)") }
            #expect(["table_wise", "row_wise", "column_wise"].contains(t["sharding"] as? String ?? ""))
        }
        let memory = try #require(j["rank_memory_bytes"] as? [Int])
        #expect(memory.count == 2 && memory.reduce(0, +) == tables.reduce(0) { $0 + ($1["bytes"] as? Int ?? 0) })
        #expect((j["estimated_step_ms"] as? Double ?? 0) > 0)
        #expect((j["constants"] as? [String: Any])?["network_gbps"] != nil)
        // The written plan trains (2 in-process ranks) and matches one process (deterministic sums).
        let common = ["train", "--model", "dlrm", "--data", data, "--epochs", "1", "--batch-size", "256", "--patience", "0", "--json", "--threads", "1"]
        let one = try CLIContractTests.run(common + ["--run-name", "one"], env: env)
        let two = try CLIContractTests.run(common + ["--run-name", "two", "--distributed", "threads", "--ranks", "2", "--plan", dir + "/plan.json",
                                                     "--deterministic"], env: env)
        #expect(one.status == 0 && two.status == 0, "\(one.err)\n\(two.err)")
        let l1 = try #require(try DistributedCLITests.json(one.out)["final_loss"] as? Double)
        let l2 = try #require(try DistributedCLITests.json(two.out)["final_loss"] as? Double)
        #expect(abs(l1 - l2) <= 1e-6 * l1, "\(l1) vs \(l2)")
        // 1 KiB per rank cannot hold the 1000-row table (68 KB with its row state).
        let tiny = try CLIContractTests.run(["plan", "shard", "--dataset", data, "--ranks", "2", "--memory-gib", "0.000001"], env: env)
        #expect(tiny.status == 65)
        #expect(tiny.err.contains("table C4") && tiny.err.contains("1073 bytes per rank") && tiny.err.contains("short by"), "\(tiny.err)")
        // A plan for another world size is refused by train.
        let wrong = try CLIContractTests.run(common + ["--run-name", "wrong", "--distributed", "threads", "--ranks", "3", "--plan", dir + "/plan.json"], env: env)
        #expect(wrong.status != 0 && wrong.err.contains("the plan is for 2 ranks"), "\(wrong.err)")
    }

    @Test("bench comm and bench train --distributed (threads) print their JSON keys")
    func benches() throws {
        let (_, data, env) = try DistributedCLITests.dataset("bench-dist")
        let c = try CLIContractTests.run(["bench", "comm", "--distributed", "threads", "--ranks", "2", "--quick", "--json"], env: env)
        #expect(c.status == 0, "\(c.err)")
        let cj = try DistributedCLITests.json(c.out)
        for key in ["constants", "all_to_all_gbps", "latency_us", "allreduce_gbps", "ranks", "machine"] { #expect(cj[key] != nil, "bench comm misses \(key)") }
        let t = try CLIContractTests.run(["bench", "train", "--data", data, "--distributed", "threads", "--ranks", "2", "--steps", "3",
                                          "--batch-size", "256", "--json"], env: env)
        #expect(t.status == 0, "\(t.err)")
        let tj = try DistributedCLITests.json(t.out)
        for key in ["samples_per_s", "step_ms", "per_rank", "predicted", "prediction_error", "bytes_sent_per_step", "predicted_bytes_sent_per_step", "machine"] {
            #expect(tj[key] != nil, "bench train --distributed misses \(key)")
        }
        #expect((tj["per_rank"] as? [[String: Any]])?.count == 2)
    }
}
