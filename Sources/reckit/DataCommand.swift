import ArgumentParser
import Foundation
import RecKitCarbon
import RecKitData

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Convert click logs and interactions into RecKit shards.",
        subcommands: [DataConvert.self, DataSynth.self, DataStats.self, DataSampleCommand.self, DataCroissant.self])
}

extension InputFormat: ExpressibleByArgument {}
extension ErrorPolicy: ExpressibleByArgument {}

struct DataConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Stream text inputs (Criteo TSV, Avazu CSV, libFM, interactions) into a checksummed shard dataset.")

    @Option(name: .long, help: "Input format: \(InputFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: InputFormat

    @Option(name: .long, parsing: .upToNextOption, help: "Input files, converted in order.")
    var input: [String]

    @Option(name: .long, help: "Output directory (shards + manifest.json).")
    var output: String

    @Option(name: .customLong("on-error"), help: "Malformed rows: skip (count, report the first 10) or fail (stop at the first).")
    var onError: ErrorPolicy = .skip

    @Option(name: .customLong("max-ind-range"), help: "Hash categorical ids modulo this size (no vocabulary pass).")
    var maxIndRange: Int?

    @Option(name: .customLong("min-count"), help: "Vocabulary mode: ids seen fewer times share one out-of-vocabulary row (default 1).")
    var minCount: Int?

    @Option(name: .customLong("shard-rows"), help: "Rows per shard (default 524,288).")
    var shardRows: Int?

    @Flag(name: .long, help: "Replace a non-empty output directory (it is otherwise refused).")
    var overwrite = false

    @OptionGroup var carbon: CarbonOptions

    @Flag(name: .long, help: "Print one JSON object at the end.")
    var json = false

    func run() throws {
        let log = CLILog.logger("reckit.data")
        let run = try CarbonRun(command: "data convert", model: format.rawValue, options: carbon,
                                threads: ProcessInfo.processInfo.activeProcessorCount)
        var o = ConvertOptions(format: format, inputs: input, output: output)
        o.onError = onError
        o.maxIndRange = maxIndRange
        o.minCount = minCount
        if let shardRows { o.shardRows = max(1, shardRows) }
        o.overwrite = overwrite
        let report = try run.measure(code: 65, samples: { $0.rows }) { () throws(DataError) in
            try Converter.run(o) { p in
                let rate = Double(p.bytesDone) / 1e6 / max(p.seconds, 1e-9)
                let eta = rate > 0 ? Double(p.bytesTotal - p.bytesDone) / 1e6 / rate : 0
                log.info("pass \(p.pass): \(p.rows) rows, \(String(format: "%.1f", rate)) MB/s, \(String(format: "%.0f", Double(p.bytesDone) * 100 / Double(max(p.bytesTotal, 1))))%, ETA \(String(format: "%.0f", eta)) s")
            }
        }
        if json {
            try printJSON(report)
        } else {
            print("converted \(report.rows) rows (\(report.skipped) skipped) into \(report.shards) shard(s) in \(report.output): \(String(format: "%.1f", report.mbPerSecond)) MB/s")
            for e in report.errors { print("  skipped \(e)") }
        }
    }
}

/// A failure to report as one line on stderr with a specific exit code (sysexits: 65 bad input data, 66 cannot
/// open input, 73 cannot create output).
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var code: Int32
    var description: String { message }

    /// Runs `body`; a DataError becomes a one-line CLI error with `code`.
    static func onDataError<T>(code: Int32, _ body: () throws(DataError) -> T) throws -> T {
        do throws(DataError) { return try body() } catch { throw CLIError(message: error.description, code: isWriteFailure(error) ? 73 : code) }
    }

    /// Output that could not be written (disk full, a file size limit, permissions): exit 73, whatever the command.
    static func isWriteFailure(_ e: DataError) -> Bool {
        guard case .io(_, let reason) = e else { return false }
        return ["write failed", "fsync failed", "rename failed", "cannot create", "cannot move"].contains { reason.contains($0) }
    }

    /// Opens a shard dataset (exit 65 when it cannot: every input error is 65).
    static func openDataset(_ directory: String) throws -> ShardDataset {
        try onDataError(code: 65) { () throws(DataError) in try ShardDataset(directory: directory) }
    }
}

struct DataSynth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Criteo-shaped synthetic data with a planted model (learnable AUC), streamed to shards.")

    @Option(name: .long, help: "Rows to generate.")
    var rows: Int

    @Option(name: .long, help: "Output directory.")
    var output: String

    @Option(name: .long, help: "Random seed (the output depends only on it and the options).")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Table sizes: 'kaggle' (the 26 Criteo Kaggle tables) or comma-separated sizes.")
    var tables = "kaggle"

    @Option(name: .long, help: "Zipf exponent of id popularity; 0 for uniform ids.")
    var zipf = 1.05

    @Option(name: .customLong("session-size"), help: "Consecutive rows sharing user-side features (RecD pattern).")
    var sessionSize = 1

    @Option(name: .customLong("user-tables"), help: "How many leading tables are user-side (shared in a session).")
    var userTables = 13

    @Option(name: .customLong("shard-rows"), help: "Rows per shard (default 262,144).")
    var shardRows: Int?

    @Option(name: .customLong("user-pooling"), help: "Ids per row of the user-side tables (1 = one-hot; P > 1: multi-hot bags, e.g. histories).")
    var userPooling = 1

    @Flag(name: .long, help: "Replace a non-empty output directory (it is otherwise refused).")
    var overwrite = false

    @OptionGroup var carbon: CarbonOptions

    @Flag(name: .long, help: "Print one JSON object at the end.")
    var json = false

    func run() throws {
        let log = CLILog.logger("reckit.data")
        var o = SynthOptions(rows: rows, output: output, seed: seed)
        if tables != "kaggle" {
            let sizes = tables.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                throw ValidationError("--tables must be 'kaggle' or comma-separated positive sizes, got '\(tables)'")
            }
            o.tables = sizes.map { $0! }
        }
        o.zipf = zipf
        o.sessionSize = sessionSize
        o.userTables = min(userTables, o.tables.count)
        o.overwrite = overwrite
        if let shardRows { o.shardRows = max(1, shardRows) }
        o.userPooling = userPooling
        o.userPooling = userPooling
        let total = rows
        let run = try CarbonRun(command: "data synth", options: carbon, threads: ProcessInfo.processInfo.activeProcessorCount)
        let report = try run.measure(code: 65, samples: { $0.rows }) { () throws(DataError) in
            try Synthesizer.run(o) { done, seconds in
                let rate = Double(done) / max(seconds, 1e-9)
                log.info("\(done)/\(total) rows, \(Int(rate)) rows/s, ETA \(Int(Double(total - done) / max(rate, 1))) s")
            }
        }
        if json {
            try printJSON(report)
        } else {
            print("wrote \(report.rows) rows in \(report.shards) shard(s) to \(report.output): \(String(format: "%.1f", report.mbPerSecond)) MB/s, positive rate \(String(format: "%.3f", report.positiveRate)), planted-model AUC \(String(format: "%.4f", report.plantedAUC))")
        }
    }
}

struct DataStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Per feature: ids seen, coverage, top ids, access-frequency CDF, in-batch duplication.")

    @Argument(help: "A shard dataset directory.")
    var directory: String

    @Option(name: .customLong("batch-size"), help: "Batch size for the in-batch duplication factor.")
    var batchSize = 2048

    @Option(name: .customLong("access-counts"), help: "Also count every row's lookups per table into this file (for `reckit plan tiering`).")
    var accessCounts: String?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run() throws {
        let stats: DatasetStats
        do throws(DataError) {
            let ds = try ShardDataset(directory: directory)
            stats = try DatasetStats.compute(ds, batchSize: max(1, batchSize))
            if let accessCounts {
                let log = CLILog.logger("reckit.data")
                let t0 = Date()
                let counts = try RowAccessStats.count(ds)
                try counts.write(to: accessCounts)
                log.info("access counts of \(counts.tables.count) tables (\(counts.tables.reduce(0) { $0 + $1.seen }) rows seen) in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s: \(accessCounts)")
            }
        } catch {
            throw CLIError(message: error.description, code: 65)
        }
        if json { try printJSON(stats); return }
        print("\(stats.rows) rows\(stats.positiveRate.map { String(format: ", positive rate %.4f", $0) } ?? ""), batch size \(stats.batchSize)")
        print("feature          rows     seen  coverage  top1%→acc  dup@B")
        for f in stats.features {
            let top1 = f.cdf.first { $0.rows == 0.01 }?.accesses ?? 0
            print(String(format: "%-12@ %9d %8d %8.4f %9.3f %7.2f", f.name, f.cardinality, f.idsSeen, f.coverage, top1, f.inBatchDuplication))
        }
    }
}

struct DataCroissant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "croissant",
        abstract: "Write Croissant 1.0 JSON-LD metadata (files with SHA-256, record sets, fields) for a converted dataset.",
        discussion: "The license field is left empty for you to fill in with the source data's terms.")

    @Argument(help: "A shard dataset directory (from `reckit data convert` or `data synth`).") var directory: String
    @Option(name: .long, help: "Output file (default DIR/croissant.json).") var output: String?
    @Option(name: .long, help: "Dataset name (default: the directory's name).") var name: String?
    @Option(name: .long, help: "Dataset description (default: rows, source format and feature counts).") var description: String?

    func run() throws {
        let path = output ?? directory + "/" + Croissant.fileName
        try CLIError.onDataError(code: 65) { () throws(DataError) in
            let doc = try Croissant.metadata(directory: directory, name: name, description: description)
            try AtomicFile.write(doc, to: path)
        }
        print("wrote \(path)")
    }
}
