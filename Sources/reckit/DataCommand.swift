import ArgumentParser
import Foundation
import RecKitData

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Convert click logs and interactions into RecKit shards.",
        subcommands: [DataConvert.self])
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

    @Option(name: .customLong("shard-rows"), help: "Rows per shard (default 1,048,576).")
    var shardRows: Int?

    @Flag(name: .long, help: "Print one JSON object at the end.")
    var json = false

    func run() throws {
        let log = CLILog.logger("reckit.data")
        var o = ConvertOptions(format: format, inputs: input, output: output)
        o.onError = onError
        o.maxIndRange = maxIndRange
        o.minCount = minCount
        if let shardRows { o.shardRows = max(1, shardRows) }
        let report: ConvertReport
        do throws(DataError) {
            report = try Converter.run(o) { p in
                let rate = Double(p.bytesDone) / 1e6 / max(p.seconds, 1e-9)
                let eta = rate > 0 ? Double(p.bytesTotal - p.bytesDone) / 1e6 / rate : 0
                log.info("pass \(p.pass): \(p.rows) rows, \(String(format: "%.1f", rate)) MB/s, \(String(format: "%.0f", Double(p.bytesDone) * 100 / Double(max(p.bytesTotal, 1))))%, ETA \(String(format: "%.0f", eta)) s")
            }
        } catch {
            throw CLIError(message: error.description, code: 65)
        }
        if json {
            try printJSON(report)
        } else {
            print("converted \(report.rows) rows (\(report.skipped) skipped) into \(report.shards) shard(s) in \(report.output): \(String(format: "%.1f", report.mbPerSecond)) MB/s")
            for e in report.errors { print("  skipped \(e)") }
        }
    }
}

/// A failure to report as one line on stderr with a specific exit code (65 = bad input data, as sysexits).
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var code: Int32
    var description: String { message }
}
