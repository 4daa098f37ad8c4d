import ArgumentParser
import Foundation
import RecKitData
import RecKitExperiments
import RecKitKernels
import RecKitModels
import RecKitTraining

struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Search recipes with successive halving on the validation split; each trial is a run directory; writes the best as a --config file.",
        discussion: """
        Validation is the last --validation fraction of --data by file order (default 10%); give only training rows, \
        never the rows you will test on. Space: learning rates, optimizers, embedding L2, batch size, widths and, for raw \
        input, min_count (override with --space space.json). Same seed and space: the same trials and promotions.
        """)

    @Option(name: .long, help: "Model: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")).") var model: ModelKind
    @Option(name: .long, parsing: .upToNextOption, help: "A shard dataset directory, or raw files with --format.") var data: [String]
    @Option(name: .long, help: "Raw input format (each trial converts with its min_count).") var format: InputFormat?
    @Option(name: .long, help: "Trials sampled at the first rung (default 27).") var trials = 27
    @Option(name: .customLong("budget-minutes"), help: "Wall-clock budget; jobs still running then are stopped (default 30).") var budgetMinutes = 30.0
    @Option(name: .long, help: "Search space JSON (default: the standard space for the model).") var space: String?
    @Option(name: .long, help: "Halving rate η: keep the best 1/η at each rung (default 3).") var eta = 3
    @Option(name: .customLong("min-epochs"), help: "Epochs of the first rung (default 1).") var minEpochs = 1
    @Option(name: .customLong("max-epochs"), help: "Epochs of the last rung (default 9).") var maxEpochs = 9
    @Option(name: .long, help: "Seed of the sampling and of every trial (default 1).") var seed: UInt64 = 1
    @Option(name: .customLong("trial-threads"), help: "Threads per trial (default 1: trials run side by side on the cores).") var trialThreads = 1
    @Option(name: .long, help: "Name of the tuning directory under --runs-dir (default tune-<UTC time>-<model>).") var name: String?
    @Option(name: .long, help: "Also copy the best recipe to this --config file.") var output: String?
    @OptionGroup var runs: RunsDirOption
    @Flag(name: .long, help: "Print JSON: best_config, best_validation_auc, trials, minutes, energy_kwh.") var json = false

    func run() throws {
        let log = CLILog.logger("reckit.tune")
        guard trials >= 1, budgetMinutes > 0, eta >= 2, minEpochs >= 1, maxEpochs >= minEpochs, trialThreads >= 1 else {
            throw ValidationError("--trials ≥ 1, --budget-minutes > 0, --eta ≥ 2, 1 ≤ --min-epochs ≤ --max-epochs, --trial-threads ≥ 1")
        }
        var searchSpace = SearchSpace.standard(for: model, rawInput: format != nil)
        if let space {
            guard let d = FileManager.default.contents(atPath: space) else { throw CLIError(message: "\(space): cannot read the search space", code: 66) }
            do { searchSpace = try JSONDecoder().decode(SearchSpace.self, from: d) } catch {
                throw CLIError(message: "\(space): not a search space: \(error)", code: 65)
            }
            let known = TrainOptions.File.keys
            let unknown = searchSpace.parameters.keys.filter { !known.contains($0) }.sorted()
            guard unknown.isEmpty else { throw CLIError(message: "\(space): unknown parameters \(unknown.joined(separator: ", ")) (use `reckit train --config` keys)", code: 65) }
        }
        var s = Tuner.Settings(model: model, data: data, space: searchSpace, runsRoot: runs.root,
                               name: name ?? "tune-\(RunDirectory.timestampName())-\(model.rawValue)", executable: Provenance.executablePath)
        s.format = format?.rawValue
        s.trials = trials; s.eta = eta; s.minEpochs = minEpochs; s.maxEpochs = maxEpochs; s.budgetSeconds = budgetMinutes * 60
        s.seed = seed; s.threadsPerTrial = trialThreads; s.parallel = max(1, ThreadPool.hardwareConcurrency / trialThreads)
        let settings = s
        let outcome = try CLIError.onExperimentError { () throws(ExperimentError) in
            try Tuner(settings, log: { log.info("\($0)") }).run()
        }
        if let output, let cfg = outcome.configFile {
            try CLIError.onDataError(code: 73) { () throws(DataError) in
                try AtomicFile.write(FileManager.default.contents(atPath: cfg) ?? Data(), to: output)
            }
        }
        if json { try printJSON(outcome); return }
        print(String(format: "tuned %@ in %.1f min (%.3g kWh, %d jobs%@): best validation AUC %@ (%@); recipe: %@", model.rawValue, outcome.minutes,
                     outcome.energyKWh, outcome.trials.count, outcome.stoppedByBudget ? ", stopped by the budget" : "",
                     outcome.bestValidationAUC.map { String(format: "%.4f", $0) } ?? "—", outcome.bestRun ?? "—",
                     output ?? outcome.configFile ?? "none"))
    }
}
