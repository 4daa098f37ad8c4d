import ArgumentParser
import Foundation
import RecKitData
import RecKitExperiments

extension CLIError {
    /// A run-directory failure: input (a missing or malformed run) 65 or 66, output that cannot be written 73.
    static func onExperimentError<T>(_ body: () throws(ExperimentError) -> T) throws -> T {
        do throws(ExperimentError) { return try body() } catch {
            switch error {
            case .io(_, let reason) where reason.contains("write") || reason.contains("create") || reason.contains("exists"):
                throw CLIError(message: error.description, code: 73)
            case .runExists: throw CLIError(message: error.description, code: 73)
            case .notARun, .io: throw CLIError(message: error.description, code: 66)
            default: throw CLIError(message: error.description, code: 65)
            }
        }
    }
}

/// Where run directories live: `--runs-dir`, else `$RECKIT_RUNS_DIR`, else `./runs`.
struct RunsDirOption: ParsableArguments {
    @Option(name: .customLong("runs-dir"), help: "Directory of run directories (default $RECKIT_RUNS_DIR, else ./runs).")
    var runsDir: String?

    var root: String { RunDirectory.root(runsDir) }

    /// A run given as a path to its directory, or as a name under the runs directory.
    func resolve(_ run: String) throws -> RunData {
        let path = FileManager.default.fileExists(atPath: run + "/" + RunDirectory.configFile) ? run : root + "/" + run
        return try CLIError.onExperimentError { () throws(ExperimentError) in try RunData.load(path) }
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "One self-contained HTML page (inline SVG, no network) for one or more run directories.",
        discussion: "Loss and AUC curves overlaid, a calibration plot per decile, throughput, energy and carbon, and the config differences.")

    @Argument(help: "Run directories (paths, or names under --runs-dir).")
    var runs: [String]

    @Option(name: .long, help: "HTML file to write.")
    var output: String

    @OptionGroup var where_: RunsDirOption

    func run() throws {
        guard !runs.isEmpty else { throw ValidationError("name at least one run directory") }
        let data = try runs.map(where_.resolve)
        let html = RunReport.html(data)
        try CLIError.onDataError(code: 73) { () throws(DataError) in try AtomicFile.write(Data(html.utf8), to: output) }
        print("wrote \(output): \(data.count) run\(data.count == 1 ? "" : "s"), \(html.utf8.count / 1024) KiB")
    }
}

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs", abstract: "The run directories `reckit train` writes: list, show, compare.",
        subcommands: [RunsList.self, RunsShow.self, RunsCompare.self])
}

/// A fixed-width text table.
func textTable(_ header: [String], _ rows: [[String]]) -> String {
    let widths = header.indices.map { c in ([header[c]] + rows.map { c < $0.count ? $0[c] : "" }).map(\.count).max() ?? 0 }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }
    return ([line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)).joined(separator: "\n")
}

func cell(_ v: Double?, _ format: String) -> String { v.map { String(format: format, $0) } ?? "—" }

struct RunsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every run: model, status, steps, AUC, speed, energy.")
    @OptionGroup var where_: RunsDirOption
    @Flag(name: .long, help: "Print JSON: {\"runs\": [...]}.") var json = false

    func run() throws {
        let listings = try CLIError.onExperimentError { () throws(ExperimentError) -> [RunListing] in
            try RunDirectory.all(in: where_.root).map { d throws(ExperimentError) in RunListing(try RunData.load(d.path)) }
        }
        if json { try printJSON(["runs": listings]); return }
        print(textTable(["run", "model", "status", "steps", "val AUC", "best AUC", "samples/s", "seconds", "energy J"],
                        listings.map { l in
                            [l.name, l.model, l.status, l.steps.map(String.init) ?? "—", cell(l.validationAUC, "%.4f"), cell(l.bestValidationAUC, "%.4f"),
                             cell(l.samplesPerSecond, "%.0f"), cell(l.seconds, "%.1f"), cell(l.energyJoules, "%.0f")]
                        }))
    }
}

struct RunsShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One run: its recipe, validation passes and results.")
    @Argument(help: "A run directory (path, or name under --runs-dir).") var name: String
    @OptionGroup var where_: RunsDirOption
    @Flag(name: .long, help: "Print JSON: {listing, config, validation}.") var json = false

    struct Shown: Encodable {
        let listing: RunListing
        let config: RunConfig
        let validation: [Pass]
    }
    struct Pass: Encodable {
        let step: Int, epoch: Int, auc: Double?, logloss: Double?, ne: Double?, calibration: Double?
    }

    func run() throws {
        let r = try where_.resolve(name)
        let passes = r.validationRows.map { Pass(step: $0.step, epoch: $0.epoch, auc: $0.validationAUC, logloss: $0.validationLogloss,
                                                   ne: $0.validationNE, calibration: $0.validationCalibration) }
        if json { try printJSON(Shown(listing: RunListing(r), config: r.config, validation: passes)); return }
        print("run \(r.name) (\(r.finished ? "finished" : "incomplete")): \(r.config.model) on \(r.config.data.joined(separator: " ")), created \(r.config.created)")
        print(textTable(["key", "value"], r.config.flattened.sorted { $0.key < $1.key }.map { [$0.key, $0.value] }))
        print("")
        print(textTable(["step", "epoch", "AUC", "logloss", "NE", "calibration"],
                        passes.map { [String($0.step), String($0.epoch), cell($0.auc, "%.4f"), cell($0.logloss, "%.4f"), cell($0.ne, "%.4f"), cell($0.calibration, "%.3f")] }))
        let l = RunListing(r)
        print("\nsamples/s \(cell(l.samplesPerSecond, "%.0f")), seconds \(cell(l.seconds, "%.1f")), energy \(cell(l.energyJoules, "%.1f")) J, \(cell(l.gramsCO2e, "%.3g")) gCO2e")
    }
}

struct RunsCompare: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "compare", abstract: "Runs side by side: results and the config keys that differ.")
    @Argument(help: "Two or more run directories (paths, or names under --runs-dir).") var runs: [String]
    @OptionGroup var where_: RunsDirOption
    @Flag(name: .long, help: "Print JSON: {runs, config_differences}.") var json = false

    struct Compared: Encodable {
        let runs: [RunListing]
        let config_differences: [String: [String]]
    }

    func run() throws {
        guard runs.count >= 2 else { throw ValidationError("compare needs two or more runs") }
        let data = try runs.map(where_.resolve)
        let diffs = configDifferences(data)
        let listings = data.map(RunListing.init)
        if json {
            try printJSON(Compared(runs: listings, config_differences: Dictionary(uniqueKeysWithValues: diffs.map { ($0.key, $0.values) })))
            return
        }
        print(textTable(["run", "model", "status", "val AUC", "best AUC", "logloss", "samples/s", "seconds", "energy J"],
                        listings.map { l in
                            [l.name, l.model, l.status, cell(l.validationAUC, "%.4f"), cell(l.bestValidationAUC, "%.4f"), cell(l.validationLogloss, "%.4f"),
                             cell(l.samplesPerSecond, "%.0f"), cell(l.seconds, "%.1f"), cell(l.energyJoules, "%.0f")]
                        }))
        print("")
        print(diffs.isEmpty ? "same configuration" : textTable(["config"] + data.map(\.name), diffs.map { [$0.key] + $0.values }))
    }
}
