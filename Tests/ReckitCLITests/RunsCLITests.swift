import Foundation
import Testing

@Suite("reckit runs / report CLI contract")
struct RunsCLITests {
    @Test("train writes a run directory; runs list/show/compare --json; report writes one HTML page; bad runs are clear errors")
    func runs() throws {
        let dir = DataCLIContractTests.tmp("runs")
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger", "RECKIT_RUNS_DIR": dir + "/runs"]
        _ = try CLIContractTests.run(["data", "synth", "--rows", "3000", "--output", dir + "/d", "--tables", "20,20,20,20,300"], env: env)
        for (name, model) in [("a", "dlrm"), ("b", "fm")] {
            let t = try CLIContractTests.run(["train", "--model", model, "--data", dir + "/d", "--epochs", "2", "--run-name", name, "--log-every", "2"], env: env)
            #expect(t.status == 0, "\(t.err)")
            #expect(t.out.contains(dir + "/runs/\(name)/checkpoint.safetensors"), "\(t.out)")
        }
        for f in ["config.json", "metrics.csv", "calibration.csv", "summary.json", "carbon.json", "checkpoint.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/runs/a/" + f), "missing \(f)")
        }
        let again = try CLIContractTests.run(["train", "--model", "fm", "--data", dir + "/d", "--epochs", "1", "--run-name", "a"], env: env)
        #expect(again.status == 73 && again.err.contains("never rewritten"), "\(again.err)")

        let list = try CLIContractTests.run(["runs", "list", "--json"], env: env)
        #expect(list.status == 0, "\(list.err)")
        let lj = try #require(try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [String: Any])
        let runs = try #require(lj["runs"] as? [[String: Any]])
        #expect(runs.map { $0["name"] as? String } == ["a", "b"])
        #expect(runs.allSatisfy { $0["status"] as? String == "finished" && ($0["validation_auc"] as? Double ?? 0) > 0.5 && $0["energy_joules"] is Double })

        let show = try CLIContractTests.run(["runs", "show", "a", "--json"], env: env)
        let sj = try #require(try JSONSerialization.jsonObject(with: Data(show.out.utf8)) as? [String: Any])
        let config = try #require(sj["config"] as? [String: Any])
        #expect((config["recipe"] as? [String: Any])?["epochs"] as? Int == 2 && config["manifest_crc32c"] is String)
        #expect((sj["validation"] as? [Any])?.count == 2)

        let cmp = try CLIContractTests.run(["runs", "compare", "a", dir + "/runs/b", "--json"], env: env)
        let cj = try #require(try JSONSerialization.jsonObject(with: Data(cmp.out.utf8)) as? [String: Any])
        #expect((cj["config_differences"] as? [String: [String]])?["model"] == ["dlrm", "fm"])

        let rep = try CLIContractTests.run(["report", "a", "b", "--output", dir + "/report.html"], env: env)
        #expect(rep.status == 0, "\(rep.err)")
        let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        #expect(html.components(separatedBy: "<path class=\"curve\"").count - 1 == 8)

        let missing = try CLIContractTests.run(["report", "nope", "--output", dir + "/x.html"], env: env)
        #expect(missing.status == 66 && missing.err.contains("not a run directory"), "\(missing.err)")
        try "step,epoch\n1,x\n".write(toFile: dir + "/runs/a/metrics.csv.bad", atomically: true, encoding: .utf8)
        let cut = try CLIContractTests.run(["runs", "show", "a"], env: env)
        #expect(cut.status == 0 && cut.out.contains("run a (finished)"), "\(cut.err)")
    }

    @Test("tune: successive halving over trial run directories; JSON keys; the best recipe trains as a --config; seeded")
    func tune() throws {
        let dir = DataCLIContractTests.tmp("tune")
        let env = ["RECKIT_LEDGER_DIR": dir + "/ledger", "RECKIT_RUNS_DIR": dir + "/runs"]
        _ = try CLIContractTests.run(["data", "synth", "--rows", "2000", "--output", dir + "/d", "--tables", "20,20,300"], env: env)
        try #"{"learning_rate": {"log_uniform": [0.001, 0.01]}, "batch_size": {"choice": [128, 256]}}"#.write(toFile: dir + "/space.json", atomically: true, encoding: .utf8)
        var results: [[String: Any]] = []
        for name in ["t1", "t2"] {
            let t = try CLIContractTests.run(["tune", "--model", "fm", "--data", dir + "/d", "--trials", "3", "--max-epochs", "3", "--space", dir + "/space.json",
                                              "--budget-minutes", "5", "--name", name, "--seed", "3", "--json"], env: env)
            #expect(t.status == 0, "\(t.err)")
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(t.out.utf8)) as? [String: Any])
            for key in ["best_config", "best_validation_auc", "trials", "minutes", "energy_kwh"] { #expect(obj[key] != nil, "missing \(key)") }
            let trials = try #require(obj["trials"] as? [[String: Any]])
            #expect(trials.count == 4, "3 jobs of 1 epoch, then the best one to 3 epochs")
            #expect(trials.filter { $0["rung"] as? Int == 1 }.count == 1)
            results.append(obj)
        }
        // Same seed: the same best recipe and AUC (each trial is a seeded, single-threaded run).
        #expect(results[0]["best_validation_auc"] as? Double == results[1]["best_validation_auc"] as? Double)
        #expect(NSDictionary(dictionary: results[0]["best_config"] as? [String: Any] ?? [:]).isEqual(to: results[1]["best_config"] as? [String: Any] ?? [:]))
        let best = dir + "/runs/t1/best_config.json"
        let again = try CLIContractTests.run(["train", "--model", "fm", "--data", dir + "/d", "--config", best, "--json"], env: env)
        #expect(again.status == 0, "\(again.err)")
        let aj = try #require(try JSONSerialization.jsonObject(with: Data(again.out.utf8)) as? [String: Any])
        let auc = try #require((aj["validation"] as? [String: Any])?["auc"] as? Double)
        let bestAUC = try #require(results[0]["best_validation_auc"] as? Double)
        #expect(abs(auc - bestAUC) < 0.02, "retraining the best recipe from scratch: \(auc) vs \(bestAUC)")
        let list = try CLIContractTests.run(["runs", "list", "--json"], env: env)
        #expect(list.status == 0 && list.out.contains("t1-t00-r0"), "\(list.err)")
    }
}
