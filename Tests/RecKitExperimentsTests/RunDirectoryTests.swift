import Foundation
import RecKitCore
import RecKitData
import RecKitModels
@testable import RecKitExperiments
import RecKitTraining
import Testing

/// A synthetic dataset in a fresh temp directory.
func synthetic(_ name: String, rows: Int = 4000) throws -> String {
    let dir = temporary("data-\(name)")
    try? FileManager.default.removeItem(atPath: dir)
    var o = SynthOptions(rows: rows, output: dir, seed: 5)
    o.tables = [30, 30, 200, 500]
    o.userTables = 2
    o.shardRows = 1000
    _ = try Synthesizer.run(o)
    return dir
}

/// Trains `model` on `data` with a recorder in `root/name`; returns the run directory and the outcome.
func recordedRun(_ root: String, name: String?, data: String, model: ModelKind = .dlrm, epochs: Int = 3, logEvery: Int? = 3,
                 resume: String? = nil, maxSteps: Int? = nil) throws -> (RunDirectory, TrainingRun.Outcome) {
    let dir = try RunDirectory.create(root: root, name: name, model: model.rawValue, appending: resume != nil)
    let out = dir.file(RunDirectory.checkpointFile) + (resume == nil ? "" : ".2")
    let recorder = try RunRecorder(directory: dir, context: .init(data: [data], threads: 1, checkpoint: out))
    var run = TrainingRun(model: model, data: [data], output: out)
    run.threads = 1
    run.flags.epochs = epochs
    run.flags.max_steps = maxSteps
    run.resume = resume
    run.observer = recorder
    run.logEvery = logEvery
    let outcome = try run.run()
    try recorder.finish(summary: outcome.report, carbon: nil)
    return (dir, outcome)
}

@Suite("Run directories: config, metrics.csv, TensorBoard, calibration, never rewritten")
struct RunDirectoryTests {
    @Test("a recorded run has its effective recipe, one metrics row per interval and per validation pass, events that match, deciles")
    func recordsRun() throws {
        let data = try synthetic("record")
        let root = temporary("runs-record")
        let (dir, outcome) = try recordedRun(root, name: "first", data: data)
        let r = try RunData.load(dir.path)
        #expect(r.finished)
        #expect(r.config.model == "dlrm" && r.config.recipe == outcome.options.file && r.config.seed == outcome.options.seed)
        #expect(r.config.manifestCRC32C.count == 8 && r.config.trainRows + r.config.validationRows == 4000)
        // Every step is in exactly one logged interval: the intervals end at multiples of 3 and at epoch ends.
        let steps = r.trainingRows.map(\.step)
        #expect(steps.last == outcome.report.steps)
        #expect(steps == steps.sorted() && Set(steps).count == steps.count)
        let perEpoch = outcome.report.steps / outcome.report.epochs
        #expect(steps.filter { $0 % 3 != 0 }.allSatisfy { $0 % perEpoch == 0 })
        #expect(r.trainingRows.allSatisfy { ($0.trainLoss ?? .nan).isFinite && ($0.samplesPerSecond ?? 0) > 0 && $0.learningRate == 1e-3 })
        // A validation pass per epoch (early stopping on), the kept one equal to the summary's.
        #expect(r.validationRows.count == outcome.report.epochs)
        #expect(r.validationRows.map(\.epoch) == Array(1...outcome.report.epochs))
        let kept = try #require(outcome.report.validation)
        let keptRow = r.validationRows[outcome.report.bestEpoch - 1]
        #expect(abs((keptRow.validationAUC ?? 0) - (kept.auc ?? 1)) < 1e-6)
        // Deciles: 10 bins of the validation rows, their mean prediction rising, counts summing to the rows.
        #expect(r.calibration.count == 10 && r.calibration.map(\.count).reduce(0, +) == kept.rows)
        #expect(zip(r.calibration, r.calibration.dropFirst()).allSatisfy { $0.meanPrediction <= $1.meanPrediction })
        // TensorBoard: the same series.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("events.out.tfevents.") }
        #expect(files.count == 1)
        let events = try TensorBoardEvent.read(dir.file(files[0]))
        let loss = events.flatMap { e in e.scalars.filter { $0.tag == "train/loss" }.map { (e.step, $0.value) } }
        #expect(loss.map { Int($0.0) } == steps)
        #expect(zip(loss, r.trainingRows).allSatisfy { abs(Double($0.1) - $1.trainLoss!) <= 1e-5 * max(1, abs($1.trainLoss!)) })
        #expect(events.filter { $0.scalars.contains { $0.tag == "validation/auc" } }.count == r.validationRows.count)
    }

    @Test("names are never reused; files are written once; a run stopped by max-steps resumes into its own directory as a new leg")
    func neverRewritten() throws {
        let data = try synthetic("rewrite")
        let root = temporary("runs-rewrite")
        let (dir, _) = try recordedRun(root, name: "a", data: data, epochs: 1)
        #expect(throws: ExperimentError.runExists(path: root + "/a")) { _ = try RunDirectory.create(root: root, name: "a", model: "dlrm") }
        #expect(throws: ExperimentError.self) { try dir.writeOnce(Data("{}".utf8), to: RunDirectory.configFile) }
        for bad in ["", "a/b", ".."] {
            #expect(throws: ExperimentError.self) { _ = try RunDirectory.create(root: root, name: bad, model: "dlrm") }
        }
        // Timestamped names: a second run in the same second gets -2.
        let now = Date()
        let t1 = try RunDirectory.create(root: root, name: nil, model: "fm", now: now)
        let t2 = try RunDirectory.create(root: root, name: nil, model: "fm", now: now)
        #expect(t2.name == t1.name + "-2" && t1.name.hasSuffix("-fm"))
        // Interrupted at step 5 (max_steps), then resumed into the same directory: rows continue, config kept.
        let (b, first) = try recordedRun(root, name: "b", data: data, epochs: 2, maxSteps: 5)
        #expect(first.report.steps == 5)
        let (_, second) = try recordedRun(root, name: "b", data: data, epochs: 2, resume: b.file(RunDirectory.checkpointFile))
        let r = try RunData.load(b.path)
        #expect(r.finished && second.report.steps > 5)
        for f in ["config.resume-5.json", "summary.resume-5.json", "calibration.resume-5.csv", "summary.json", "config.json"] {
            #expect(FileManager.default.fileExists(atPath: b.file(f)), "\(f)")
        }
        #expect(b.latestLeg == ".resume-5" && r.summary?.steps == second.report.steps)
        let steps = r.trainingRows.map(\.step)
        #expect(steps == steps.sorted() && steps.first! <= 5 && steps.last == second.report.steps)
    }

    @Test("metrics.csv: a half-written last line is ignored; a malformed line is an error with file and line")
    func metricsParsing() throws {
        let dir = temporary("metrics-parse")
        let path = dir + "/metrics.csv"
        var row = MetricsRow(step: 3, epoch: 0, elapsed: 1.5)
        row.trainLoss = 0.5
        let good = MetricsRow.header + "\n" + row.csvLine + "\n"
        try (good + "4,0,1.6,0.4").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try MetricsRow.read(path) == [row])
        try (good + "4,0,x,0.4,,,,,,\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ExperimentError.malformed(path: path, line: 3, reason: "field elapsed_s: not a number: \"x\"")) { try MetricsRow.read(path) }
        try (good + "4,0\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ExperimentError.self) { try MetricsRow.read(path) }
    }

    @Test("reliability deciles: equal counts, sorted by prediction, exact on a hand-made case; empty and tiny inputs")
    func reliability() {
        #expect(ReliabilityBin.quantiles(logits: [], labels: []).isEmpty)
        let three = ReliabilityBin.quantiles(logits: [2, 0, -2], labels: [1, 0, 0])
        #expect(three.count == 3 && three.map(\.observedRate) == [0, 0, 1] && three.map(\.count) == [1, 1, 1])
        #expect(abs(three[1].meanPrediction - 0.5) < 1e-12)
        let z = (0..<1000).map { Float($0 % 97) / 10 - 5 }
        let y = z.map { $0 > 0 ? Float(1) : 0 }
        let bins = ReliabilityBin.quantiles(logits: z, labels: y)
        #expect(bins.count == 10 && bins.allSatisfy { $0.count == 100 })
        #expect(bins.first!.observedRate == 0 && bins.last!.observedRate == 1)
    }
}
