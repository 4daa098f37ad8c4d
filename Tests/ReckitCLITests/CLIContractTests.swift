import Foundation
import RecKitCore
import Testing

/// Runs the built `reckit` binary (SwiftPM builds it for this test target) and checks the CLI contract:
/// command names, `--json` keys and exit codes that outside checks rely on.
@Suite("reckit CLI contract")
struct CLIContractTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var binary: URL {
        let build = root.appendingPathComponent(".build")
        for candidate in ["debug/reckit", "x86_64-unknown-linux-gnu/debug/reckit", "release/reckit"] {
            let url = build.appendingPathComponent(candidate)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return build.appendingPathComponent("debug/reckit")
    }

    static func run(_ args: [String], env: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        // Run directories of `reckit train` go to a temp directory, not the checkout (a test may name its own).
        e["RECKIT_RUNS_DIR"] = e["RECKIT_RUNS_DIR"] ?? FileManager.default.temporaryDirectory.appendingPathComponent("reckit-cli-runs-\(getpid())").path
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let r = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: r, as: UTF8.self))
    }

    @Test("bench kernels --json prints one JSON object with the contract keys")
    func benchKernelsJSON() throws {
        let r = try Self.run(["bench", "kernels", "--quick", "--threads", "2", "--json"])
        #expect(r.status == 0, "stderr: \(r.err)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        for key in ["mlp_vs_raw_gemm", "mlp_vs_peak", "embedding_forward_ratio", "embedding_backward_ratio",
                    "sgemm_peak_gflops", "gather_ceiling_gbps", "threads", "batch_size", "embedding", "machine"] {
            #expect(obj[key] != nil, "missing key \(key)")
        }
        #expect(obj["threads"] as? Int == 2)
        let ratio = try #require(obj["mlp_vs_raw_gemm"] as? Double)
        #expect(ratio > 0 && ratio.isFinite)
        let emb = try #require(obj["embedding"] as? [[String: Any]])
        #expect(emb.count == 4, "uniform/zipf × pooling 1/20")
    }

    @Test("bench train / infer --json carry the contract keys; bf16 is refused clearly")
    func benchModel() throws {
        for mode in ["train", "infer"] {
            let r = try Self.run(["bench", mode, "--table-cap", "500", "--batch-size", "128", "--json"])
            #expect(r.status == 0, "\(r.err)")
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
            for key in ["samples_per_s", "ms_per_iter", "phases", "peak_rss_mb", "joules_per_1k", "batch_size", "threads", "precision"] {
                #expect(obj[key] != nil, "\(mode): missing \(key)")
            }
            #expect((obj["phases"] as? [String: Double])?["embedding_forward"] != nil)
        }
        // bf16 runs where oneDNN and AMX/AVX512-BF16 are present (`reckit kernels` says), and is refused clearly elsewhere.
        let available = try Self.run(["kernels"]).out.contains("bf16: available")
        let bf16 = try Self.run(["bench", "train", "--precision", "bf16", "--table-cap", "500", "--batch-size", "128", "--json"])
        if available {
            #expect(bf16.status == 0, "\(bf16.err)")
            let obj = try JSONSerialization.jsonObject(with: Data(bf16.out.utf8)) as? [String: Any]
            #expect(obj?["precision"] as? String == "bf16")
        } else {
            #expect(bf16.status != 0 && bf16.err.contains("bf16"), "\(bf16.err)")
        }
        let bogus = try Self.run(["bench", "train", "--precision", "fp8"])
        #expect(bogus.status != 0 && bogus.err.contains("precision"))
    }

    @Test("bench serve --json carries qps, p99_ms, errors and the python keys (null when skipped)")
    func benchServe() throws {
        let r = try Self.run(["bench", "serve", "--skip-python", "--duration", "0.5", "--connections", "4", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        for key in ["qps", "p50_ms", "p99_ms", "p999_ms", "errors", "python_qps", "python_p99_ms", "scenarios"] {
            #expect(obj.keys.contains(key), "missing \(key)")
        }
        #expect(obj["errors"] as? Int == 0)
        #expect((obj["qps"] as? Double ?? 0) > 0)
        #expect(obj["python_qps"] is NSNull)
    }

    @Test("reckit kernels lists the registry; RECKIT_KERNELS=reference switches the variant")
    func kernelsListing() throws {
        let r = try Self.run(["kernels"])
        #expect(r.status == 0)
        #expect(r.out.contains("variant: optimized") || ProcessInfo.processInfo.environment["RECKIT_KERNELS"] == "reference")
        #expect(r.out.contains("embedding_bag_backward"))
        let ref = try Self.run(["kernels"], env: ["RECKIT_KERNELS": "reference"])
        #expect(ref.out.contains("variant: reference"))
    }

    @Test("unknown subcommands and bad options fail with a usage error, not a crash")
    func badUsage() throws {
        let r = try Self.run(["bench", "nope"])
        #expect(r.status != 0 && r.status < 128)
        let t = try Self.run(["bench", "kernels", "--threads", "abc"])
        #expect(t.status != 0 && t.status < 128)
        #expect(t.err.contains("threads"))
    }
}

@Suite("reckit data CLI contract")
struct DataCLIContractTests {
    static func tmp(_ name: String) -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-cli-\(getpid())-\(name)").path
        try? FileManager.default.removeItem(atPath: d)
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test("data convert --json has rows, skipped, bytes_in, seconds, errors (file, line, reason)")
    func convertJSON() throws {
        let dir = Self.tmp("convert")
        let good = (0..<5).map { _ in "1\t" + Array(repeating: "3", count: 13).joined(separator: "\t") + "\t" + Array(repeating: "0a1b2c3d", count: 26).joined(separator: "\t") }
        let text = (good + ["0\tnot\tenough"]).joined(separator: "\n") + "\n"
        try text.write(toFile: dir + "/in.tsv", atomically: true, encoding: .utf8)
        let r = try CLIContractTests.run(["data", "convert", "--format", "criteo", "--input", dir + "/in.tsv", "--output", dir + "/out", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        #expect(obj["rows"] as? Int == 5 && obj["skipped"] as? Int == 1)
        #expect(obj["bytes_in"] as? Int == text.utf8.count && obj["seconds"] is Double)
        let errors = try #require(obj["errors"] as? [[String: Any]])
        #expect(errors.count == 1 && errors[0]["line"] as? Int == 6 && (errors[0]["file"] as? String)?.hasSuffix("in.tsv") == true)
        #expect(errors[0]["reason"] is String)
        // --on-error fail: non-zero exit, file:line:column on stderr.
        let f = try CLIContractTests.run(["data", "convert", "--format", "criteo", "--input", dir + "/in.tsv", "--output", dir + "/out2", "--on-error", "fail"])
        #expect(f.status == 65 && f.err.contains("in.tsv:6:"), "\(f.err)")
        let missing = try CLIContractTests.run(["data", "convert", "--format", "criteo", "--input", dir + "/nope.tsv", "--output", dir + "/o3"])
        #expect(missing.status == 65 && missing.err.contains("nope.tsv"))
    }

    @Test("data synth --json and data stats --json")
    func synthAndStats() throws {
        let dir = Self.tmp("synth")
        let s = try CLIContractTests.run(["data", "synth", "--rows", "3000", "--output", dir, "--seed", "4", "--tables", "100,20,5000", "--json"])
        #expect(s.status == 0, "\(s.err)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(s.out.utf8)) as? [String: Any])
        #expect(obj["rows"] as? Int == 3000 && obj["planted_auc"] is Double && obj["mb_per_s"] is Double)
        let st = try CLIContractTests.run(["data", "stats", dir, "--batch-size", "256", "--json"])
        #expect(st.status == 0, "\(st.err)")
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(st.out.utf8)) as? [String: Any])
        let features = try #require(stats["features"] as? [[String: Any]])
        #expect(features.count == 3 && features[0]["ids_seen"] is Int && features[0]["cdf"] is [Any]
                && features[0]["in_batch_duplication"] is Double && features[0]["top"] is [Any])
        let bad = try CLIContractTests.run(["data", "synth", "--rows", "10", "--output", dir + "/x", "--tables", "3,abc"])
        #expect(bad.status != 0 && bad.status < 128)
    }
}

@Suite("reckit carbon CLI contract")
struct CarbonCLIContractTests {
    @Test("measured commands end with a carbon line and append to the ledger; carbon report totals them")
    func ledger() throws {
        let dir = DataCLIContractTests.tmp("carbon")
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger"]
        let s = try CLIContractTests.run(["data", "synth", "--rows", "2000", "--output", dir + "/d", "--tables", "50,60"], env: env)
        #expect(s.status == 0 && s.err.contains("carbon: ") && (s.err.contains("estimated-tdp") || s.err.contains("measured-rapl")), "\(s.err)")
        let r = try CLIContractTests.run(["carbon", "report", "--json", "--html", dir + "/r.html"], env: env)
        #expect(r.status == 0, "\(r.err)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let groups = try #require(obj["groups"] as? [[String: Any]])
        #expect(groups.first?["command"] as? String == "data synth")
        let html = try String(contentsOfFile: dir + "/r.html", encoding: .utf8)
        #expect(html.contains("<svg"))
        let csv = try String(contentsOfFile: dir + "/ledger/emissions.csv", encoding: .utf8)
        #expect(csv.hasPrefix("timestamp,project_name,run_id,duration,emissions"))
        let none = try CLIContractTests.run(["carbon", "report"], env: ["RECKIT_LEDGER_DIR": dir + "/empty"])
        #expect(none.status == 66 && none.err.contains("ledger"))
    }
}

@Suite("reckit train / eval CLI contract")
struct TrainCLIContractTests {
    @Test("train --json and eval --json keys; wrong model and corrupt checkpoint give clear errors")
    func trainEval() throws {
        let dir = DataCLIContractTests.tmp("train")
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger"]
        _ = try CLIContractTests.run(["data", "synth", "--rows", "3000", "--output", dir + "/d", "--tables", "20,20,20,20,300"], env: env)
        let t = try CLIContractTests.run(["train", "--model", "dlrm", "--data", dir + "/d", "--output", dir + "/m.ckpt",
                                         "--epochs", "1", "--json"], env: env)
        #expect(t.status == 0, "\(t.err)")
        let tj = try #require(try JSONSerialization.jsonObject(with: Data(t.out.utf8)) as? [String: Any])
        #expect(tj["samples_per_s"] is Double && tj["checkpoint"] as? String == dir + "/m.ckpt" && tj["validation"] is [String: Any])
        let e = try CLIContractTests.run(["eval", "--model", dir + "/m.ckpt", "--data", dir + "/d", "--json"], env: env)
        #expect(e.status == 0, "\(e.err)")
        let ej = try #require(try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as? [String: Any])
        for key in ["auc", "logloss", "ne", "calibration", "rows"] { #expect(ej[key] != nil, "missing \(key)") }
        #expect(ej["rows"] as? Int == 3000)
        try #"{"epochs": 2, "embedding_dim": 4, "early_stopping_patience": 0}"#.write(toFile: dir + "/c.json", atomically: true, encoding: .utf8)
        let cfg = try CLIContractTests.run(["train", "--model", "dlrm", "--data", dir + "/d", "--output", dir + "/c.ckpt", "--config", dir + "/c.json", "--json"], env: env)
        #expect(cfg.status == 0 && cfg.out.contains("\"epochs\" : 2"), "\(cfg.err)")
        try #"{"epochz": 2}"#.write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        let badCfg = try CLIContractTests.run(["train", "--model", "dlrm", "--data", dir + "/d", "--output", dir + "/c.ckpt", "--config", dir + "/bad.json"], env: env)
        #expect(badCfg.status == 65 && badCfg.err.contains("epochz"), "\(badCfg.err)")
        let unknown = try CLIContractTests.run(["train", "--model", "xgboost", "--data", dir + "/d", "--output", dir + "/x"], env: env)
        #expect(unknown.status != 0 && unknown.status < 128 && unknown.err.contains("model"))
        for kind in ["lr", "fm", "dcnv2"] {
            let r = try CLIContractTests.run(["train", "--model", kind, "--data", dir + "/d", "--output", dir + "/\(kind).ckpt", "--epochs", "1"], env: env)
            #expect(r.status == 0, "\(kind): \(r.err)")
            let ev = try CLIContractTests.run(["eval", "--model", dir + "/\(kind).ckpt", "--data", dir + "/d", "--json"], env: env)
            #expect(ev.status == 0 && ev.out.contains("\"auc\""), "\(kind): \(ev.err)")
        }
        // quantize: sizes and the AUC change; the quantized checkpoint evaluates; any model kind quantizes (the storage seam).
        let q = try CLIContractTests.run(["quantize", "--model", dir + "/m.ckpt", "--dtype", "int8", "--output", dir + "/m8.ckpt",
                                         "--eval", dir + "/d", "--json"], env: env)
        #expect(q.status == 0, "\(q.err)")
        let qj = try #require(try JSONSerialization.jsonObject(with: Data(q.out.utf8)) as? [String: Any])
        for key in ["fp32_bytes", "quantized_bytes", "size_ratio", "auc_fp32", "auc_quantized", "delta_auc"] { #expect(qj[key] != nil, "missing \(key)") }
        #expect(abs(qj["delta_auc"] as? Double ?? 1) < 0.01)
        let qe = try CLIContractTests.run(["eval", "--model", dir + "/m8.ckpt", "--data", dir + "/d", "--json"], env: env)
        #expect(qe.status == 0 && qe.out.contains("\"auc\""), "\(qe.err)")
        let qf = try CLIContractTests.run(["quantize", "--model", dir + "/fm.ckpt", "--dtype", "int4", "--output", dir + "/fm4.ckpt"], env: env)
        #expect(qf.status == 0, "\(qf.err)")
        let qfe = try CLIContractTests.run(["eval", "--model", dir + "/fm4.ckpt", "--data", dir + "/d", "--json"], env: env)
        #expect(qfe.status == 0 && qfe.out.contains("\"auc\""), "\(qfe.err)")
        try Data("RKCKPT01garbage".utf8).write(to: URL(fileURLWithPath: dir + "/bad.ckpt"))
        let bad = try CLIContractTests.run(["eval", "--model", dir + "/bad.ckpt", "--data", dir + "/d"], env: env)
        #expect(bad.status == 65 && bad.err.contains("bad.ckpt"))
    }
}

@Suite("reckit predict / eval on raw files")
struct PredictCLIContractTests {
    @Test("raw Criteo rows get the checkpoint's vocabulary: eval --format and predict give one score per row")
    func rawRows() throws {
        let dir = DataCLIContractTests.tmp("predict")
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger"]
        var rng = SeededRandom(seed: 31)  // seeded: the same rows on every run
        func line(_ label: Bool) -> String {
            let ints = (0..<13).map { _ in String(rng.nextBelow(20)) }
            let cats = (0..<26).map { _ in String(format: "%08x", rng.nextBelow(8)) }
            return (label ? [String(rng.nextBelow(2))] : []) .joined() + (label ? "\t" : "") + (ints + cats).joined(separator: "\t")
        }
        try ((0..<400).map { _ in line(true) }.joined(separator: "\n") + "\n").write(toFile: dir + "/train.txt", atomically: true, encoding: .utf8)
        try ((0..<37).map { _ in line(false) }.joined(separator: "\n") + "\n").write(toFile: dir + "/test.txt", atomically: true, encoding: .utf8)
        _ = try CLIContractTests.run(["data", "convert", "--format", "criteo", "--input", dir + "/train.txt", "--output", dir + "/d"], env: env)
        let t = try CLIContractTests.run(["train", "--model", "dlrm", "--data", dir + "/d", "--output", dir + "/m.ckpt", "--epochs", "1"], env: env)
        #expect(t.status == 0, "\(t.err)")
        let e = try CLIContractTests.run(["eval", "--model", dir + "/m.ckpt", "--data", dir + "/train.txt", "--format", "criteo", "--json"], env: env)
        #expect(e.status == 0, "\(e.err)")
        let p = try CLIContractTests.run(["predict", "--model", dir + "/m.ckpt", "--data", dir + "/test.txt", "--format", "criteo",
                                         "--output", dir + "/scores.txt"], env: env)
        #expect(p.status == 0, "\(p.err)")
        let raw = try CLIContractTests.run(["train", "--model", "fm", "--data", dir + "/train.txt", "--format", "criteo",
                                           "--output", dir + "/raw.ckpt", "--epochs", "1", "--json"], env: env)
        #expect(raw.status == 0 && raw.out.contains("\"checkpoint\""), "\(raw.err)")
        let scores = try String(contentsOfFile: dir + "/scores.txt", encoding: .utf8).split(separator: "\n")
        #expect(scores.count == 37 && scores.allSatisfy { Double($0).map { $0 > 0 && $0 < 1 } ?? false })
        try "1\tbad\n".write(toFile: dir + "/bad.txt", atomically: true, encoding: .utf8)
        let bad = try CLIContractTests.run(["predict", "--model", dir + "/m.ckpt", "--data", dir + "/bad.txt", "--format", "criteo",
                                           "--output", dir + "/x.txt"], env: env)
        #expect(bad.status == 65 && bad.err.contains("bad.txt:1"))
    }
}
