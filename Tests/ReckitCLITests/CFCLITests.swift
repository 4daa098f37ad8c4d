import Foundation
import RecKitCore
import Testing

/// `reckit cf …` and `reckit data sample`: the JSON keys outside checks rely on, exit codes, and that a converted
/// dataset directory and its text file give the same model.
@Suite("reckit cf CLI contract")
struct CFCLITests {
    /// Clustered synthetic interactions: users of group g mostly pick items of group g (so models beat popularity).
    static func writeEvents(_ dir: String) throws -> (train: String, valid: String, test: String) {
        var rng = SeededRandom(seed: 17)
        var train = "user_id\titem_id\trating\n", valid = train, test = train
        for u in 0..<150 {
            let g = u % 3
            var items = Set<Int>()
            while items.count < 14 {
                let i = rng.nextDouble() < 0.85 ? g * 20 + Int(rng.next() % 20) : Int(rng.next() % 60)
                items.insert(i)
            }
            for (k, i) in items.sorted().enumerated() {
                let line = "\(u + 1)\t\(i + 1000)\t\(1 + k % 5)\n"
                if k % 7 == 3 { valid += line } else if k % 7 == 5 { test += line } else { train += line }
            }
        }
        let t = dir + "/train.tsv", v = dir + "/valid.tsv", s = dir + "/test.tsv"
        try train.write(toFile: t, atomically: true, encoding: .utf8)
        try valid.write(toFile: v, atomically: true, encoding: .utf8)
        try test.write(toFile: s, atomically: true, encoding: .utf8)
        return (t, v, s)
    }

    static func json(_ text: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }

    @Test("cf fit (λ auto) → cf eval: JSON keys, metrics as fractions, EASE beats popularity")
    func fitAndEval() throws {
        let dir = DataCLIContractTests.tmp("cf-fit")
        let f = try Self.writeEvents(dir)
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger"]
        var ndcg: [String: Double] = [:]
        for model in ["pop", "ease", "infae", "bpr"] {
            var args = ["cf", "fit", "--model", model, "--train", f.train, "--valid", f.valid, "--output", "\(dir)/\(model).rkcf", "--json", "--threads", "2"]
            if model == "ease" || model == "infae" { args += ["--lambda", "auto"] }
            if model == "bpr" { args += ["--bpr-epochs", "10"] }
            let fit = try CLIContractTests.run(args, env: env)
            #expect(fit.status == 0, "\(model): \(fit.err)")
            let report = try Self.json(fit.out)
            for key in ["model", "users", "items", "interactions", "fit_seconds", "validation", "peak_rss_mib"] { #expect(report[key] != nil, "\(model) fit: \(key)") }
            if model == "ease" { #expect((report["search"] as? [Any])?.count == 9) }
            let eval = try CLIContractTests.run(["cf", "eval", "--model", "\(dir)/\(model).rkcf", "--context", f.train, f.valid, "--test", f.test,
                                                 "--k", "10,20", "--json"])
            #expect(eval.status == 0, "\(model): \(eval.err)")
            let m = try Self.json(eval.out)
            for key in ["ndcg@10", "recall@10", "hr@10", "psp@10", "ndcg@20", "auc", "users", "items"] { #expect(m[key] != nil, "\(model) eval: \(key)") }
            #expect(m["users"] as? Int == 150 && m["items"] as? Int == 60)
            let v = m["ndcg@10"] as? Double ?? -1
            #expect(v >= 0 && v <= 1)
            ndcg[model] = v
        }
        #expect(ndcg["ease"]! > ndcg["pop"]! + 0.1, "\(ndcg)")
        #expect(ndcg["infae"]! > ndcg["pop"]! + 0.1, "\(ndcg)")
    }

    @Test("cf distill: a summary of N synthetic users as an interactions file, JSON keys, a usable ∞-AE on it, --users checked")
    func distill() throws {
        let dir = DataCLIContractTests.tmp("cf-distill")
        let f = try Self.writeEvents(dir)
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger"]
        var ratio: [Int: Double] = [:]
        for steps in [0, 60] {
            let out = "\(dir)/summary-\(steps).tsv"
            let r = try CLIContractTests.run(["cf", "distill", "--train", f.train, "--users", "12", "--steps", "\(steps)", "--batch-users", "100",
                                              "--output", out, "--valid", f.valid, "--json", "--threads", "2"], env: env)
            #expect(r.status == 0, "\(r.err)")
            let j = try Self.json(r.out)
            for key in ["users", "items", "interactions", "ndcg@10", "full_ndcg@10", "ratio"] { #expect(j[key] != nil, "missing \(key)") }
            #expect(j["users"] as? Int == 12)
            let text = try String(contentsOfFile: out, encoding: .utf8)
            #expect(text.hasPrefix("user_id\titem_id\trating\n") && Set(text.split(separator: "\n").dropFirst().map { $0.split(separator: "\t")[0] }).count <= 12)
            ratio[steps] = j["ratio"] as? Double
        }
        #expect((ratio[0] ?? 0) > 0.2 && (ratio[60] ?? 0) > 0.2, "\(ratio)")
        let bad = try CLIContractTests.run(["cf", "distill", "--train", f.train, "--users", "100000", "--output", dir + "/x.tsv"], env: env)
        #expect(bad.status == 65 && bad.err.contains("--users"), "\(bad.err)")
        // A soft summary: weights in (0, 1) in the rating column, which `cf fit --weighted` reads as the entries' values.
        // (Its nDCG need not equal distill's: the file lists only the items some synthetic user has, and the
        // kernel's input width is the item count.)
        let soft = dir + "/soft.tsv"
        let r = try CLIContractTests.run(["cf", "distill", "--train", f.train, "--users", "12", "--steps", "30", "--batch-users", "100",
                                          "--summary", "soft", "--output", soft, "--valid", f.valid, "--json", "--threads", "2"], env: env)
        #expect(r.status == 0, "\(r.err)")
        let j = try Self.json(r.out)
        let weights = try String(contentsOfFile: soft, encoding: .utf8).split(separator: "\n").dropFirst().map { Double($0.split(separator: "\t")[2])! }
        #expect(!weights.isEmpty && weights.allSatisfy { $0 > 0 && $0 < 1 } && weights.contains { $0 < 0.99 }, "soft weights")
        let lambda = try #require(j["summary_lambda"] as? Double)
        let fit = try CLIContractTests.run(["cf", "fit", "--model", "infae", "--train", soft, "--weighted", "--lambda", "\(lambda)",
                                            "--output", dir + "/soft.model", "--json", "--threads", "2"], env: env)
        #expect(fit.status == 0, "\(fit.err)")
        let eval = try CLIContractTests.run(["cf", "eval", "--model", dir + "/soft.model", "--context", f.train, "--test", f.valid, "--k", "10", "--json"], env: env)
        #expect(eval.status == 0, "\(eval.err)")
        let e = try Self.json(eval.out)
        let got = try #require(e["ndcg@10"] as? Double)
        #expect(got > 0 && (j["ndcg@10"] as? Double ?? 0) > 0, "\(e)")
        #expect(try Self.json(fit.out)["interactions"] as? Int == weights.count)
        // Step selection on half of the validation users, the other half reported apart; the masked teacher loss.
        let sel = try CLIContractTests.run(["cf", "distill", "--train", f.train, "--users", "12", "--steps", "20", "--batch-users", "100",
                                            "--summary", "soft", "--loss", "teacher", "--mask-input", "--select-every", "5",
                                            "--output", dir + "/sel.tsv", "--valid", f.valid, "--json", "--threads", "2"], env: env)
        #expect(sel.status == 0, "\(sel.err)")
        let js = try Self.json(sel.out)
        for key in ["selected_step", "heldout_ndcg@10", "heldout_full_ndcg@10", "heldout_ratio"] { #expect(js[key] != nil, "missing \(key)") }
        #expect([5, 10, 15, 20].contains(js["selected_step"] as? Int ?? -1), "\(js)")
        #expect((js["heldout_ratio"] as? Double ?? 0) > 0.2, "\(js)")
        // The Gumbel-softmax binary summary with the squared loss (masking does not apply to it): 0/1 rows.
        let binary = try CLIContractTests.run(["cf", "distill", "--train", f.train, "--users", "12", "--steps", "10", "--batch-users", "100",
                                               "--summary", "binary", "--loss", "squared", "--no-cosine-decay", "--output", dir + "/bin.tsv"], env: env)
        #expect(binary.status == 0, "\(binary.err)")
        let ratings = try String(contentsOfFile: dir + "/bin.tsv", encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: "\t")[2] }
        #expect(!ratings.isEmpty && ratings.allSatisfy { Double($0) == 1 }, "binary summary ratings")
        let noValid = try CLIContractTests.run(["cf", "distill", "--train", f.train, "--users", "12", "--select-every", "5", "--output", dir + "/z.tsv"], env: env)
        #expect(noValid.status != 0 && noValid.err.contains("--valid"), "\(noValid.err)")
    }

    @Test("A converted dataset directory and its text file fit the same EASE model")
    func shardsAndText() throws {
        let dir = DataCLIContractTests.tmp("cf-shards")
        let f = try Self.writeEvents(dir)
        let conv = try CLIContractTests.run(["data", "convert", "--format", "interactions", "--input", f.train, "--output", dir + "/ds"],
                                            env: ["RECKIT_LEDGER_DIR": dir + "/ledger"])
        #expect(conv.status == 0, "\(conv.err)")
        for (name, train) in [("text", f.train), ("shards", dir + "/ds")] {
            let r = try CLIContractTests.run(["cf", "fit", "--model", "ease", "--lambda", "10", "--train", train, "--output", "\(dir)/\(name).rkcf"],
                                             env: ["RECKIT_LEDGER_DIR": dir + "/ledger"])
            #expect(r.status == 0, "\(name): \(r.err)")
        }
        let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/text.rkcf")), b = try Data(contentsOf: URL(fileURLWithPath: dir + "/shards.rkcf"))
        #expect(a == b)
    }

    @Test("data sample and cf rank-models: JSON keys; bad input exits 65 naming file:line:column")
    func sampleRankAndErrors() throws {
        let dir = DataCLIContractTests.tmp("cf-sample")
        let f = try Self.writeEvents(dir)
        let s = try CLIContractTests.run(["data", "sample", "--strategy", "svp-cf", "--fraction", "0.5", "--input", f.train,
                                          "--output", dir + "/sampled.tsv", "--proxy-epochs", "2", "--json"])
        #expect(s.status == 0, "\(s.err)")
        let sj = try Self.json(s.out)
        #expect(sj["output_interactions"] as? Int == ((sj["input_interactions"] as? Int ?? 0) + 1) / 2)
        let r = try CLIContractTests.run(["cf", "rank-models", "--train", f.train, "--test", f.valid, "--sampled", dir + "/sampled.tsv",
                                          "--models", "pop,ease,infae", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let rj = try Self.json(r.out)
        let tau = rj["kendall_tau"] as? Double ?? -2
        #expect(tau >= -1 && tau <= 1 && (rj["ranking_full"] as? [String])?.count == 3)
        try "user\titem\n1\t2\n1\t\n".write(toFile: dir + "/bad.tsv", atomically: true, encoding: .utf8)
        let bad = try CLIContractTests.run(["cf", "fit", "--model", "pop", "--train", dir + "/bad.tsv", "--output", dir + "/x.rkcf"],
                                           env: ["RECKIT_LEDGER_DIR": dir + "/ledger"])
        #expect(bad.status == 65 && bad.err.contains("bad.tsv:3:3: item is empty"), "\(bad.status) \(bad.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.rkcf"))
        let missing = try CLIContractTests.run(["cf", "eval", "--model", dir + "/none.rkcf", "--context", f.train, "--test", f.test])
        #expect(missing.status == 66, "\(missing.status) \(missing.err)")
    }
}
