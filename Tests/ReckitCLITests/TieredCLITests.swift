import Foundation
import Testing

/// Tables larger than their cache through the CLI: statistics, a plan, training with it, `kill -9` and resume.
@Suite("reckit tiered tables (CLI)", .serialized)
struct TieredCLITests {
    static let config = #"{"epochs": 2, "batch_size": 256, "embedding_dim": 8, "bottom_hidden": [8], "top_hidden": [8], "early_stopping_patience": 0}"#

    /// Two 40k-row tables with uniform ids (each epoch touches ~21k rows of each) and caches of ~18k rows: every
    /// epoch evicts dirty rows.
    static func dataset(_ name: String) throws -> (dir: String, data: String, config: String, env: [String: String]) {
        let dir = DataCLIContractTests.tmp(name)
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger"]
        let r = try CLIContractTests.run(["data", "synth", "--rows", "30000", "--tables", "40000,40000,30,500", "--zipf", "0",
                                          "--output", dir + "/d"], env: env)
        #expect(r.status == 0, "\(r.err)")
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/tier", withIntermediateDirectories: true)
        return (dir, dir + "/d", dir + "/config.json", env)
    }

    static let tierFlags = ["--cache-mb", "3", "--tier-min-table-mb", "0", "--checkpoint-every", "10"]

    /// Raw bytes of every tensor of a checkpoint, by name (through `checkpoint inspect --json` offsets would need
    /// the header; read the safetensors layout directly).
    static func tensors(_ path: String) throws -> [String: Data] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = Int(data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        let header = try #require(try JSONSerialization.jsonObject(with: data[8..<(8 + n)]) as? [String: Any])
        var out: [String: Data] = [:]
        for (name, v) in header where name != "__metadata__" {
            let o = try #require((v as? [String: Any])?["data_offsets"] as? [Int])
            out[name] = data[(8 + n + o[0])..<(8 + n + o[1])]
        }
        return out
    }

    @Test("kill -9 at any moment of a tiered run (training or writing a checkpoint), then --resume: the same final checkpoint as an uninterrupted run")
    func killAndResume() throws {
        let (dir, data, cfg, env) = try Self.dataset("tiered-kill")
        let straight = dir + "/straight.safetensors"
        let t0 = Date()
        let s = try CLIContractTests.run(["train", "--model", "dlrm", "--data", data, "--config", cfg, "--tier-dir", dir + "/tier",
                                          "--output", straight] + Self.tierFlags, env: env)
        #expect(s.status == 0, "\(s.err)")
        let duration = Date().timeIntervalSince(t0)
        #expect(s.err.contains("tiering:") && s.err.contains("written back"), "\(s.err)")
        let expected = try Self.tensors(straight)
        let inspect = try CLIContractTests.run(["checkpoint", "inspect", straight, "--json"], env: env)
        #expect(inspect.out.contains("\"storage\"") && inspect.out.contains("\"tiered\""), "\(inspect.out)")
        var resumedRuns = 0
        for (k, fraction) in [0.35, 0.6, 0.85].enumerated() {
            let out = dir + "/killed-\(k).safetensors"
            let p = Process()
            p.executableURL = CLIContractTests.binary
            p.arguments = ["train", "--model", "dlrm", "--data", data, "--config", cfg, "--tier-dir", dir + "/tier", "--output", out] + Self.tierFlags
            var e = ProcessInfo.processInfo.environment
            for (key, value) in env { e[key] = value }
            p.environment = e
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            Thread.sleep(forTimeInterval: duration * fraction)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            // Resume until done (a kill before the first checkpoint starts over).
            let exists = FileManager.default.fileExists(atPath: out)
            let args = ["train", "--model", "dlrm", "--data", data, "--tier-dir", dir + "/tier", "--output", out] + Self.tierFlags
                + (exists ? ["--resume", out] : ["--config", cfg])
            let r = try CLIContractTests.run(args, env: env)
            #expect(r.status == 0, "\(r.err)")
            if exists { resumedRuns += 1 }
            print("tiered kill -9 at \(Int(fraction * 100))% of \(String(format: "%.1f", duration)) s: \(exists ? "resumed from the last checkpoint" : "no checkpoint yet, started over")")
            let got = try Self.tensors(out)
            #expect(got.keys.sorted() == expected.keys.sorted())
            for (name, bytes) in expected { #expect(got[name] == bytes, "\(name) after a kill at \(Int(fraction * 100))% (resumed: \(exists))") }
        }
        #expect(resumedRuns >= 2, "the kills must land after a periodic checkpoint")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/tier")
        #expect(leftovers.isEmpty, "tier files left behind: \(leftovers)")
    }

    @Test("statistics, a plan and training with it: small tables resident, hot rows pinned, the plan's JSON keys")
    func statsPlanTrain() throws {
        let (dir, data, cfg, env) = try Self.dataset("tiered-plan")
        let stats = dir + "/access.rks", plan = dir + "/plan.json"
        let a = try CLIContractTests.run(["data", "stats", data, "--access-counts", stats], env: env)
        #expect(a.status == 0, "\(a.err)")
        let p = try CLIContractTests.run(["plan", "tiering", "--stats", stats, "--cache-mb", "4", "--embedding-dim", "8", "--tier-min-table-mb", "1",
                                          "--output", plan, "--json"], env: env)
        #expect(p.status == 0, "\(p.err)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(p.out.utf8)) as? [String: Any])
        let tables = try #require(j["tables"] as? [[String: Any]])
        #expect(tables.count == 4 && (j["expected_hit_rate"] as? Double ?? 0) > 0.3)
        let modes = Dictionary(uniqueKeysWithValues: tables.map { ($0["name"] as? String ?? "", $0["mode"] as? String ?? "") })
        #expect(modes["embeddings.C3"] == "resident" && modes["embeddings.C4"] == "resident" && modes["embeddings.C1"] == "tiered", "\(modes)")
        let pinned = tables.compactMap { $0["pinned_rows"] as? Int }.reduce(0, +)
        #expect(pinned > 0)
        let t = try CLIContractTests.run(["train", "--model", "dlrm", "--data", data, "--config", cfg, "--tier-dir", dir + "/tier", "--cache-mb", "4",
                                          "--placement", plan, "--output", dir + "/m.safetensors", "--json"], env: env)
        #expect(t.status == 0, "\(t.err)")
        let r = try #require(try JSONSerialization.jsonObject(with: Data(t.out.utf8)) as? [String: Any])
        let tiering = try #require(r["tiering"] as? [String: Any])
        #expect(tiering["tables"] as? Int == 2 && (tiering["hit_rate"] as? Double ?? 0) > 0)
        #expect(t.err.contains("pinned by the placement"), "\(t.err)")
        // A plan that cannot fit names the problem.
        let small = try CLIContractTests.run(["plan", "tiering", "--stats", stats, "--cache-mb", "1", "--embedding-dim", "64", "--tier-min-table-mb", "0"], env: env)
        #expect(small.status == 65 && small.err.contains("MiB"), "\(small.err)")
    }
}
