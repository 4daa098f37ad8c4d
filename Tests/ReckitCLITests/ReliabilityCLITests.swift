import Foundation
import Testing

/// Input errors, divergence, JSON numbers, all-or-nothing writes and the loader's memory bound, through the CLI.
@Suite("reckit reliability CLI")
struct ReliabilityCLITests {
    static func run(_ args: [String], env: [String: String]) throws -> (status: Int32, out: String, err: String) {
        try CLIContractTests.run(args, env: env)
    }

    static func synth(_ dir: String, rows: Int = 3000, extra: [String] = [], env: [String: String]) throws -> String {
        let out = dir + "/d"
        let r = try Self.run(["data", "synth", "--rows", String(rows), "--tables", "20,30,200", "--output", out] + extra, env: env)
        #expect(r.status == 0, "\(r.err)")
        return out
    }

    @Test("manifests: paths out of the directory, bad counts, an empty shard list: exit 65 with file, field and reason")
    func manifests() throws {
        let dir = DataCLIContractTests.tmp("manifests")
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger"]
        let data = try Self.synth(dir, env: env)
        let manifest = data + "/manifest.json"
        let good = try String(contentsOfFile: manifest, encoding: .utf8)
        func edited(_ change: (inout [String: Any]) -> Void) throws -> Data {
            var object = try #require(try JSONSerialization.jsonObject(with: Data(good.utf8)) as? [String: Any])
            change(&object)
            return try JSONSerialization.data(withJSONObject: object)
        }
        func shard0(_ o: inout [String: Any], _ key: String, _ value: Any) {
            var shards = o["shards"] as! [[String: Any]]
            shards[0][key] = value
            o["shards"] = shards
        }
        let cases: [(Data, String)] = [
            (try edited { shard0(&$0, "file", "../../etc/passwd") }, "shards[0].file"),
            (try edited { $0["rows"] = 3001 }, "rows: 3001, but the shards hold 3000"),
            (try edited { shard0(&$0, "rows", -3000); $0["rows"] = -3000 }, "shards[0].rows: negative"),
        ]
        for (bytes, field) in cases {
            try bytes.write(to: URL(fileURLWithPath: manifest))
            let e = try Self.run(["eval", "--model", dir + "/none.safetensors", "--data", data], env: env)
            #expect(e.status == 65, "\(e.err)")
            let t = try Self.run(["train", "--model", "lr", "--data", data, "--output", dir + "/m.safetensors"], env: env)
            #expect(t.status == 65 && t.err.contains("manifest.json") && t.err.contains(field), "\(t.status) \(t.err.suffix(300))")
            #expect(!t.err.contains("Error: "), "a bare error line")
        }
        var object = try #require(try JSONSerialization.jsonObject(with: Data(good.utf8)) as? [String: Any])
        object["shards"] = []
        object["rows"] = 0
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: manifest))
        let empty = try Self.run(["train", "--model", "lr", "--data", data, "--output", dir + "/m.safetensors"], env: env)
        #expect(empty.status == 65 && empty.err.contains("the list is empty"), "\(empty.err)")
    }

    @Test("a diverging run exits 70 and writes no checkpoint; --json numbers are numbers or null, never strings")
    func divergenceAndJSON() throws {
        let dir = DataCLIContractTests.tmp("diverge")
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger"]
        let data = try Self.synth(dir, env: env)
        let out = dir + "/m.safetensors"
        let r = try Self.run(["train", "--model", "dlrm", "--data", data, "--output", out, "--lr", "1e30", "--sparse-lr", "1e30", "--json"], env: env)
        #expect(r.status == 70 && r.err.contains("diverged"), "\(r.status) \(r.err)")
        #expect(!FileManager.default.fileExists(atPath: out) && r.out.isEmpty)
        // One-class labels: AUC and NE cannot be measured; the JSON says null, not "nan".
        let ok = try Self.run(["train", "--model", "lr", "--data", data, "--output", out, "--epochs", "1"], env: env)
        #expect(ok.status == 0, "\(ok.err)")
        let e = try Self.run(["eval", "--model", out, "--data", data, "--json"], env: env)
        #expect(e.status == 0 && !e.out.contains("\"nan\"") && !e.out.contains("\"inf\""), "\(e.out)")
        let inspect = try Self.run(["checkpoint", "inspect", out, "--json"], env: env)
        #expect(inspect.status == 0, "\(inspect.err)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(inspect.out.utf8)) as? [String: Any])
        #expect(j["model"] as? String == "lr" && j["step"] is Int && j["optimizer"] as? String == "adam")
        let tensors = try #require(j["tensors"] as? [[String: Any]])
        #expect(tensors.contains { $0["name"] as? String == "first_order.C1.weight" && $0["dtype"] as? String == "F32" && ($0["shape"] as? [Int]) == [20, 1] })
    }

    @Test("data convert: a non-empty output is refused without --overwrite; a run stopped by a write error leaves the old dataset whole")
    func allOrNothing() throws {
        let dir = DataCLIContractTests.tmp("atomic")
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger"]
        var lines: [String] = []
        for i in 0..<6000 { lines.append("\(i % 2)\t" + (0..<13).map { String(($0 * 7 + i) % 50) }.joined(separator: "\t") + "\t"
                                          + (0..<26).map { String(format: "%08x", ($0 * 31 + i) % 97) }.joined(separator: "\t")) }
        try (lines.prefix(2000).joined(separator: "\n") + "\n").write(toFile: dir + "/small.txt", atomically: true, encoding: .utf8)
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/big.txt", atomically: true, encoding: .utf8)
        let out = dir + "/out"
        let first = try Self.run(["data", "convert", "--format", "criteo", "--input", dir + "/small.txt", "--output", out], env: env)
        #expect(first.status == 0, "\(first.err)")
        let manifest = try String(contentsOfFile: out + "/manifest.json", encoding: .utf8)
        let again = try Self.run(["data", "convert", "--format", "criteo", "--input", dir + "/big.txt", "--output", out], env: env)
        #expect(again.status == 65 && again.err.contains("--overwrite"), "\(again.err)")
        // A file-size limit of 100 KiB makes the bigger run's writes fail part-way (as a full disk would).
        let bash = Process()
        bash.executableURL = URL(fileURLWithPath: "/bin/bash")
        bash.arguments = ["-c", "ulimit -f 100; exec \"$0\" data convert --format criteo --input \"$1\" --output \"$2\" --overwrite --shard-rows 2000",
                          CLIContractTests.binary.path, dir + "/big.txt", out]
        var e = ProcessInfo.processInfo.environment
        e["RECKIT_LEDGER_DIR"] = dir + "/ledger"
        bash.environment = e
        let err = Pipe()
        bash.standardError = err
        bash.standardOutput = FileHandle.nullDevice
        try bash.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        bash.waitUntilExit()
        #expect(bash.terminationReason == .exit && bash.terminationStatus == 73, "\(bash.terminationReason) \(bash.terminationStatus): \(message)")
        #expect(message.contains("write failed") || message.contains("File too large"), "\(message)")
        #expect(try String(contentsOfFile: out + "/manifest.json", encoding: .utf8) == manifest, "the old dataset was touched")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".out.") }
        #expect(leftovers.isEmpty, "staging directories left behind: \(leftovers)")
        let ok = try Self.run(["data", "convert", "--format", "criteo", "--input", dir + "/big.txt", "--output", out, "--overwrite"], env: env)
        #expect(ok.status == 0 && ok.out.contains("6000 rows"), "\(ok.err)")
    }

    @Test("the loader holds a bounded number of shards: 20 shards read with shuffle buffers 1 and 10,000 stay within the bound")
    func loaderMemory() throws {
        let dir = DataCLIContractTests.tmp("loader-memory")
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger"]
        let r = try Self.run(["data", "synth", "--rows", "400000", "--shard-rows", "20000", "--output", dir + "/d"], env: env)
        #expect(r.status == 0, "\(r.err)")
        for buffer in [1, 10_000] {
            let l = try Self.run(["bench", "loader", "--data", dir + "/d", "--shuffle-buffer", String(buffer), "--json"], env: env)
            #expect(l.status == 0, "\(l.err)")
            let j = try #require(try JSONSerialization.jsonObject(with: Data(l.out.utf8)) as? [String: Any])
            let peak = try #require(j["peak_rss_mib"] as? Double), bound = try #require(j["bound_mib"] as? Double)
            let shard = try #require(j["largest_shard_mib"] as? Double)
            #expect(j["rows"] as? Int == 400_000 && j["shards"] as? Int == 20)
            #expect(peak <= bound, "buffer \(buffer): peak RSS \(peak) MiB over the bound \(bound) MiB")
            #expect(peak < 40 + 10 * shard, "buffer \(buffer): \(peak) MiB: shards are being retained (20 shards of \(shard) MiB)")
        }
    }

    @Test("eval maps a checkpoint into its storage: peak RSS within 1.3× the file + 300 MB (and under file + 200 MB here)")
    func evalMemory() throws {
        let dir = DataCLIContractTests.tmp("eval-memory")
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger"]
        // Three 1.5M-row tables, dim 16: a ~310 MB checkpoint (weights + row-wise Adagrad sums), 2,000 rows of data.
        let data = dir + "/d"
        let s = try Self.run(["data", "synth", "--rows", "2000", "--tables", "1500000,1500000,1500000", "--output", data], env: env)
        #expect(s.status == 0, "\(s.err)")
        let ckpt = dir + "/m.safetensors"
        let t = try Self.run(["train", "--model", "dlrm", "--data", data, "--max-steps", "1", "--output", ckpt], env: env)
        #expect(t.status == 0, "\(t.err)")
        let fileMiB = Double(try #require(try FileManager.default.attributesOfItem(atPath: ckpt)[.size] as? Int)) / 1_048_576
        #expect(fileMiB > 250)
        let e = try Self.run(["eval", "--model", ckpt, "--data", data, "--json"], env: env)
        #expect(e.status == 0, "\(e.err)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as? [String: Any])
        let peak = try #require(j["peak_rss_mib"] as? Double)
        print(String(format: "eval memory: checkpoint %.0f MiB, peak RSS %.0f MiB (%.2f× the file)", fileMiB, peak, peak / fileMiB))
        #expect(peak <= 1.3 * fileMiB + 300 * 1_000_000 / 1_048_576)
        // A load that random-initialises the tables first, or reads the file and then copies it, is ≥ 2× the file.
        #expect(peak <= fileMiB + 200, "peak \(peak) MiB for a \(fileMiB) MiB checkpoint: tensors are being copied")
    }
}
