import ArgumentParser
import Foundation
import RecKitData
import RecKitKernels
import RecKitTraining

/// The README's main job: synthetic Criteo-shaped data made on the spot, DLRM trained and evaluated.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Make synthetic Criteo-shaped data, train DLRM on it, evaluate on held-out rows (no downloads).")

    @Option(name: .long, help: "Rows to synthesize (default 2,000,000).")
    var rows = 2_000_000

    @Option(name: .long, help: "Working directory (data, checkpoint).")
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
        log.info("synthesizing \(rows) Criteo-shaped rows into \(so.output)")
        let synth = try CLIError.onDataError(code: 73) { () throws(DataError) in try Synthesizer.run(so) }
        let ds = try CLIError.openDataset(so.output)
        var o = TrainOptions.recipe(rows: rows)
        o.epochs = 1
        o.batchSize = 512
        o.threads = common.resolvedThreads
        o.seed = seed
        log.info("training DLRM (dim \(o.embeddingDim), bottom \(o.bottomHidden), top \(o.topHidden), batch \(o.batchSize), Adam + row-wise Adagrad)")
        let (model, opt, report) = try Trainer.trainDLRM(ds, options: o) { p in
            log.info("step \(p.step): loss \(String(format: "%.4f", p.loss)), \(Int(p.samplesPerSecond)) samples/s, ETA \(Int(p.eta)) s")
        }
        let ckpt = output + "/dlrm.ckpt"
        let header = CheckpointHeader(model: "dlrm", dlrm: model.config, schema: ds.schema, step: opt.step, rowsSeen: report.rowsTrained,
                                      denseOptimizer: o.denseOptimizer, sparseOptimizer: o.sparseOptimizer.rawValue, seed: seed)
        do throws(CheckpointError) { try Checkpoint.save(model, optimizer: opt, header: header, to: ckpt) } catch {
            throw CLIError(message: error.description, code: 73)
        }
        run.finish(samples: report.rowsTrained)
        let v = report.validation
        print(String(format: "DLRM on %d synthetic rows: held-out AUC %.4f (the planted model itself: %.4f), logloss %.4f; training %.0f samples/s over %d rows; checkpoint %@",
                     rows, v?.auc ?? .nan, synth.plantedAUC, v?.logloss ?? .nan, report.samplesPerSecond, report.rowsTrained, ckpt))
    }
}
