import Foundation
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
