import ArgumentParser
import Foundation
import RecKitData
import RecKitExperiments
import RecKitKernels
import RecKitTraining

/// The README's main job: synthetic Criteo-shaped data made on the spot, DLRM trained and evaluated.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Make synthetic Criteo-shaped data, train DLRM on it, evaluate on held-out rows (no downloads).")

    @Option(name: .long, help: "Rows to synthesize (default 2,000,000).")
    var rows = 2_000_000

    @Option(name: .long, help: "Working directory (data, checkpoint); its data is replaced on every run.")
    var output = "runs/demo"

    @Option(name: .long, help: "Seed.")
    var seed: UInt64 = 1

    @OptionGroup var common: CommonOptions
    @OptionGroup var carbon: CarbonOptions

    func run() throws {
        let log = CLILog.logger("reckit.demo")
        try CLILog.checkEnvironment(log)
        let run = try CarbonRun(command: "demo", model: "dlrm", options: carbon, threads: common.resolvedThreads)
        // The 26 Criteo Kaggle tables, capped at 100k rows each so the demo fits in a few hundred MB.
        var so = SynthOptions(rows: rows, output: output + "/data", seed: seed)
        so.tables = SynthOptions.kaggleCardinalities.map { min($0, 100_000) }
        so.overwrite = true
        log.info("synthesizing \(rows) Criteo-shaped rows into \(so.output)")
        let synth = try CLIError.onDataError(code: 73) { () throws(DataError) in try Synthesizer.run(so) }
        var request = TrainingRun(model: .dlrm, data: [so.output], output: output + "/dlrm.safetensors")
        request.flags.epochs = 1
        request.flags.batch_size = 512
        request.flags.seed = seed
        request.threads = common.resolvedThreads
        // Like every training run, the demo's is recorded in a run directory (curves, calibration, cost).
        let directory = try CLIError.onExperimentError { () throws(ExperimentError) in
            try RunDirectory.create(root: RunDirectory.root(nil), name: nil, model: "demo-dlrm")
        }
        let recorder = try CLIError.onExperimentError { () throws(ExperimentError) in
            try RunRecorder(directory: directory, context: .init(data: [so.output], threads: common.resolvedThreads, checkpoint: request.output))
        }
        request.observer = recorder
        let outcome = try CLIError.onTrainingError { () throws(TrainingError) in
            try request.run(log: { log.info("\($0)") }) { p in
                log.info("step \(p.step): loss \(String(format: "%.4f", p.loss)), \(Int(p.samplesPerSecond)) samples/s, ETA \(Int(p.eta)) s")
            }
        }
        let report = outcome.report
        let ledgerRow = run.finish(samples: report.rowsTrained)
        try CLIError.onExperimentError { () throws(ExperimentError) in try recorder.finish(summary: report, carbon: ledgerRow) }
        let v = report.validation
        print(String(format: "DLRM on %d synthetic rows: held-out AUC %.4f (the planted model itself: %.4f), logloss %.4f; training %.0f samples/s over %d rows; checkpoint %@",
                     rows, v?.auc ?? 0, synth.plantedAUC, v?.logloss ?? 0, report.samplesPerSecond, report.rowsTrained, request.output))
        print("run directory: \(directory.path) — see it with `reckit report \(directory.path) --output report.html`")
    }
}
