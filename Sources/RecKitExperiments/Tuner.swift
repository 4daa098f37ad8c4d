import Foundation
import RecKitModels

/// `reckit tune`: successive halving over sampled recipes, each job a `reckit train` process writing its own run
/// directory (`<tune>-t<trial>-r<rung>`; a promoted trial resumes from its previous rung's checkpoint), jobs run
/// concurrently up to `parallel`, under a wall-clock budget (jobs still running at the budget are stopped and
/// count as not finished). Writes into `<runs>/<tune>/`: `trials.csv` (one row per finished job, with the
/// best-so-far AUC against minutes and joules), `best_config.json` (a `--config` file), `tune.json` and
/// `tune.html` (the best-so-far curves).
public final class Tuner {
    public struct Settings: Sendable {
        public var model: ModelKind
        public var data: [String]
        public var format: String?
        public var space: SearchSpace
        public var trials = 27
        public var eta = 3
        public var minEpochs = 1
        public var maxEpochs = 9
        public var budgetSeconds = 1800.0
        public var seed: UInt64 = 1
        public var threadsPerTrial = 1
        public var parallel = 1
        public var runsRoot: String
        public var name: String
        /// The `reckit` executable that runs the trials.
        public var executable: String
        public init(model: ModelKind, data: [String], space: SearchSpace, runsRoot: String, name: String, executable: String) {
            self.model = model; self.data = data; self.space = space; self.runsRoot = runsRoot; self.name = name; self.executable = executable
        }
    }

    /// One finished job.
    public struct TrialResult: Codable, Sendable {
        public var trial: Int
        public var rung: Int
        public var epochs: Int
        public var run: String
        public var validationAUC: Double?
        public var seconds: Double
        public var joules: Double?
        public var finishedMinutes: Double
        public var bestSoFar: Double?
        public var cumulativeJoules: Double
        public var parameters: [String: ParameterValue]
        public var error: String?

        enum CodingKeys: String, CodingKey {
            case trial, rung, epochs, run, seconds, joules, parameters, error
            case validationAUC = "validation_auc"
            case finishedMinutes = "finished_minutes"
            case bestSoFar = "best_so_far"
            case cumulativeJoules = "cumulative_joules"
        }
    }

    /// `tune --json`.
    public struct Outcome: Codable, Sendable {
        public var bestConfig: [String: ParameterValue]?
        public var bestValidationAUC: Double?
        public var bestRun: String?
        public var trials: [TrialResult]
        public var minutes: Double
        public var energyKWh: Double
        public var configFile: String?
        public var seed: UInt64
        public var stoppedByBudget: Bool

        enum CodingKeys: String, CodingKey {
            case trials, minutes, seed
            case bestConfig = "best_config"
            case bestValidationAUC = "best_validation_auc"
            case bestRun = "best_run"
            case energyKWh = "energy_kwh"
            case configFile = "config_file"
            case stoppedByBudget = "stopped_by_budget"
        }
    }

    public let settings: Settings
    public let directory: String
    /// `directory`, for its write-once files.
    private let files: RunDirectory
    private let log: (String) -> Void

    public init(_ settings: Settings, log: @escaping (String) -> Void) throws(ExperimentError) {
        self.settings = settings
        self.log = log
        directory = settings.runsRoot + "/" + settings.name
        files = RunDirectory(uncheckedPath: directory)
        do { try FileManager.default.createDirectory(atPath: settings.runsRoot, withIntermediateDirectories: true) } catch {
            throw .io(path: settings.runsRoot, reason: "cannot create: \(error.localizedDescription)")
        }
        guard mkdir(directory, 0o755) == 0 else {
            throw errno == EEXIST ? .runExists(path: directory) : .io(path: directory, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
    }

    /// The recipe of `trial` for a job of `epochs` epochs, as `--config` JSON.
    static func configJSON(_ p: [String: ParameterValue], epochs: Int, seed: UInt64) throws(ExperimentError) -> Data {
        var c = p
        c["epochs"] = .int(epochs)
        c["seed"] = .int(Int(seed))
        return try RunRecorder.json(c)
    }

    private func runName(_ j: SuccessiveHalving.Job) -> String { String(format: "%@-t%02d-r%d", settings.name, j.trial, j.rung) }

    public func run() throws(ExperimentError) -> Outcome {
        let s = settings
        let recipes = s.space.sample(s.trials, seed: s.seed)
        var sh = SuccessiveHalving(trials: s.trials, eta: s.eta, minEpochs: s.minEpochs, maxEpochs: s.maxEpochs)
        let t0 = Date()
        var running: [(job: SuccessiveHalving.Job, process: Process, started: Date, out: URL)] = []
        var results: [TrialResult] = []
        var best: Double?
        var joules = 0.0
        var stoppedByBudget = false
        let csv = try AppendOnlyFile(directory + "/trials.csv")
        try csv.append(line: "trial,rung,epochs,run,validation_auc,seconds,joules,finished_minutes,best_so_far,cumulative_joules")
        log("tuning \(s.model.rawValue): \(s.trials) trials, successive halving η=\(s.eta) over \(s.minEpochs)…\(s.maxEpochs) epochs, \(s.parallel) at a time × \(s.threadsPerTrial) thread(s), budget \(Int(s.budgetSeconds / 60)) min")
        loop: while true {
            // Start what can start.
            while running.count < s.parallel {
                if Date().timeIntervalSince(t0) >= s.budgetSeconds { stoppedByBudget = true; break }
                guard case .run(let job) = sh.next() else { break }
                let cfgName = "trial-\(job.trial)-r\(job.rung).json"
                try files.writeOnce(try Self.configJSON(recipes[job.trial], epochs: job.epochs, seed: s.seed), to: cfgName)
                let cfg = files.file(cfgName)
                var args = ["train", "--model", s.model.rawValue, "--data"] + s.data + ["--config", cfg, "--run-name", runName(job),
                            "--runs-dir", s.runsRoot, "--threads", "\(s.threadsPerTrial)", "--json"]
                if let f = s.format { args += ["--format", f] }
                if let prev = job.continuesRung {
                    var p = job
                    p.rung = prev
                    args += ["--resume", s.runsRoot + "/" + runName(p) + "/" + RunDirectory.checkpointFile]
                }
                let p = Process()
                p.executableURL = URL(fileURLWithPath: s.executable)
                p.arguments = args
                let out = URL(fileURLWithPath: directory + "/" + runName(job) + ".out")
                FileManager.default.createFile(atPath: out.path, contents: nil)
                do {
                    p.standardOutput = try FileHandle(forWritingTo: out)
                    p.standardError = FileHandle.nullDevice
                    try p.run()
                } catch { throw .io(path: s.executable, reason: "cannot start a trial: \(error)") }
                running.append((job, p, Date(), out))
            }
            if running.isEmpty { break loop }
            // Wait for one to finish (or the budget).
            usleep(100_000)
            if Date().timeIntervalSince(t0) >= s.budgetSeconds, !running.isEmpty {
                stoppedByBudget = true
                for r in running {
                    r.process.terminate()
                    r.process.waitUntilExit()
                    log("budget reached: stopped trial \(r.job.trial) rung \(r.job.rung)")
                }
                running.removeAll()
                break loop
            }
            for (i, r) in running.enumerated().reversed() where !r.process.isRunning {
                running.remove(at: i)
                let name = runName(r.job)
                var auc: Double?, error: String?
                if r.process.terminationStatus == 0, let data = FileManager.default.contents(atPath: r.out.path),
                   let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                    auc = (obj["validation"] as? [String: Any])?["auc"] as? Double
                } else {
                    error = "exit \(r.process.terminationStatus)"
                }
                sh.report(r.job, score: auc ?? -.infinity)
                let run = try? RunData.load(s.runsRoot + "/" + name)
                let j = run?.carbon?.energyJoules
                joules += j ?? 0
                if let a = auc, a > (best ?? -.infinity) { best = a }
                let minutes = Date().timeIntervalSince(t0) / 60
                let result = TrialResult(trial: r.job.trial, rung: r.job.rung, epochs: r.job.epochs, run: name, validationAUC: auc,
                                         seconds: Date().timeIntervalSince(r.started), joules: j, finishedMinutes: minutes, bestSoFar: best,
                                         cumulativeJoules: joules, parameters: recipes[r.job.trial], error: error)
                results.append(result)
                try csv.append(line: [String(r.job.trial), String(r.job.rung), String(r.job.epochs), name, auc.map { String(format: "%.6f", $0) } ?? "",
                                      String(format: "%.2f", result.seconds), j.map { String(format: "%.1f", $0) } ?? "", String(format: "%.3f", minutes),
                                      best.map { String(format: "%.6f", $0) } ?? "", String(format: "%.1f", joules)].joined(separator: ","))
                log(String(format: "trial %d rung %d (%d epochs): AUC %@ in %.0f s; best %@; %.1f of %.0f min", r.job.trial, r.job.rung, r.job.epochs,
                           auc.map { String(format: "%.4f", $0) } ?? "failed (\(error ?? ""))", result.seconds,
                           best.map { String(format: "%.4f", $0) } ?? "—", minutes, s.budgetSeconds / 60))
            }
        }
        var outcome = Outcome(bestConfig: nil, bestValidationAUC: nil, bestRun: nil, trials: results, minutes: Date().timeIntervalSince(t0) / 60,
                              energyKWh: joules / 3.6e6, configFile: nil, seed: s.seed, stoppedByBudget: stoppedByBudget)
        if let b = sh.best {
            var cfg = recipes[b.trial]
            cfg["epochs"] = .int(sh.epochs(rung: b.rung))
            cfg["seed"] = .int(Int(s.seed))
            outcome.bestConfig = cfg
            outcome.bestValidationAUC = b.score
            outcome.bestRun = runName(SuccessiveHalving.Job(trial: b.trial, rung: b.rung, epochs: 0, continuesRung: nil))
            outcome.configFile = directory + "/best_config.json"
            try files.writeOnce(try RunRecorder.json(cfg), to: "best_config.json")
        }
        try files.writeOnce(try RunRecorder.json(outcome), to: "tune.json")
        try files.writeOnce(Data(Self.html(outcome, name: s.name).utf8), to: "tune.html")
        let (byTime, byEnergy) = Self.charts(outcome, name: s.name)
        try files.writeOnce(Data(byTime.svg.utf8), to: "best_so_far_minutes.svg")
        try files.writeOnce(Data(byEnergy.svg.utf8), to: "best_so_far_joules.svg")
        return outcome
    }

    /// The best-so-far validation AUC against minutes and against cumulative joules (also written as
    /// `best_so_far_minutes.svg` and `best_so_far_joules.svg`).
    static func charts(_ o: Outcome, name: String) -> (byTime: SVGChart, byEnergy: SVGChart) {
        let done = o.trials.filter { $0.bestSoFar != nil }
        return (SVGChart(title: "Best validation AUC so far (\(name))", xLabel: "minutes", yLabel: "AUC",
                         series: [.init(name: name, color: SVGChart.palette[0], points: done.map { ($0.finishedMinutes, $0.bestSoFar!) })]),
                SVGChart(title: "Best validation AUC against energy (\(name))", xLabel: "joules (cumulative, all trials)", yLabel: "AUC",
                         series: [.init(name: name, color: SVGChart.palette[1], points: done.map { ($0.cumulativeJoules, $0.bestSoFar!) })]))
    }

    /// The two curves and the trials table.
    static func html(_ o: Outcome, name: String) -> String {
        let (byTime, byEnergy) = charts(o, name: name)
        var h = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>RecKit tune \(HTML.escape(name))</title>"
        h += "<style>body{font-family:system-ui,sans-serif;margin:24px} table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ccc;padding:3px 6px}</style></head><body>"
        h += "<h1>Tuning \(HTML.escape(name))</h1><p>" + String(format: "%.1f min, %.3g kWh; best validation AUC %@ (%@).", o.minutes, o.energyKWh,
                                                                 o.bestValidationAUC.map { String(format: "%.4f", $0) } ?? "—", HTML.escape(o.bestRun ?? "—")) + "</p>"
        h += byTime.svg + byEnergy.svg
        h += "<table><tr><th>trial</th><th>rung</th><th>epochs</th><th>AUC</th><th>seconds</th><th>recipe</th></tr>"
        for t in o.trials {
            h += "<tr><td>\(t.trial)</td><td>\(t.rung)</td><td>\(t.epochs)</td><td>\(t.validationAUC.map { String(format: "%.4f", $0) } ?? "—")</td>"
            h += "<td>\(String(format: "%.0f", t.seconds))</td><td>\(HTML.escape(t.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")))</td></tr>"
        }
        return h + "</table></body></html>\n"
    }
}
