import ArgumentParser
import Foundation
import RecKitCarbon
import RecKitData
import RecKitDistributed

/// Carbon options every measured command takes.
struct CarbonOptions: ParsableArguments {
    @Option(name: .long, help: "Grid region for carbon intensity (\(GridRegions.all.map(\.code).joined(separator: ", "))); env RECKIT_REGION.")
    var region: String?

    @Option(name: .customLong("grid-intensity"), help: "Grid carbon intensity in gCO2e/kWh (overrides the region's); env RECKIT_GRID_INTENSITY.")
    var gridIntensity: Double?

    @Option(name: .long, help: "Data-centre PUE (default 1.1, hyperscale; 1.55 industry average); env RECKIT_PUE.")
    var pue: Double?

    @Option(name: .customLong("cpu-watts-per-core"), help: "Watts per busy core for the energy estimate; env RECKIT_CPU_WATTS_PER_CORE.")
    var cpuWattsPerCore: Double?

    @Option(name: .long, help: "Ledger directory (default ~/.local/state/reckit); env RECKIT_LEDGER_DIR.")
    var ledger: String?

    var settings: CarbonSettings {
        CarbonSettings(region: region, gridIntensity: gridIntensity, pue: pue, wattsPerCore: cpuWattsPerCore, ledgerDirectory: ledger)
    }
}

/// Measures one command and ends it with the one-line carbon summary on stderr (and a ledger record).
struct CarbonRun {
    let tracker: CarbonTracker

    init(command: String, model: String? = nil, options: CarbonOptions, threads: Int) throws {
        do throws(CarbonError) {
            tracker = try CarbonTracker(command: command, model: model, settings: options.settings, coresUsed: threads)
        } catch {
            throw ValidationError(error.description)
        }
        try tracker.start()
    }

    /// Runs `body` and ends the measurement either way, counting `samples(result)` when it succeeds; a DataError
    /// becomes a one-line CLI error with `code`.
    func measure<T>(code: Int32, samples: (T) -> Int?, _ body: () throws(DataError) -> T) throws -> T {
        try measure(samples: samples) { try CLIError.onDataError(code: code, body) }
    }

    /// Runs `body` and ends the measurement either way, counting `samples(result)` when it succeeds.
    func measure<T>(samples: (T) -> Int? = { _ in nil }, _ body: () throws -> T) throws -> T {
        let result: T
        do { result = try body() } catch { finish(); throw error }
        finish(samples: samples(result))
        return result
    }

    /// A distributed run's record: every rank ends its measurement, the ranks' measurements are gathered, and rank
    /// 0 records their combination (`EnergyMeasurement.combined`: RAPL once per host, estimates summed) and returns
    /// it; the other ranks return nil. Every rank must call it (it is a collective).
    func finishDistributed(samples: Int?, comm: any Communicator) throws -> RunRecord? {
        var local: EnergyMeasurement?
        var note = ""
        do throws(EnergyError) { local = try tracker.measure() } catch { note = error.description }
        // [joules, seconds, method, valid, host key]; a rank whose meter failed sends valid = 0.
        let mine = (local?.numbers ?? [0, 0, 0]) + [local == nil ? 0 : 1, Double(Self.hostKey())]
        let all: [Double]
        do throws(CommError) { all = try comm.allGather(mine) } catch { throw CLIError(message: "carbon: gathering the ranks' energy failed: \(error)", code: 70) }
        guard comm.rank == 0 else { return nil }
        var parts: [(measurement: EnergyMeasurement, host: UInt64)] = []
        for r in 0..<comm.size {
            let row = all[(r * 5)..<(r * 5 + 5)]
            guard row[row.startIndex + 3] == 1 else { continue }
            parts.append((EnergyMeasurement(numbers: row.prefix(3), note: r == 0 ? local?.note ?? "" : ""), UInt64(row[row.startIndex + 4])))
        }
        if let l = local, !parts.isEmpty { parts[0].measurement.inputs = l.inputs }
        guard let combined = EnergyMeasurement.combined(parts) else {
            FileHandle.standardError.write(Data("carbon: not recorded: \(note)\n".utf8))
            return nil
        }
        return recorded { try tracker.record(combined, samples: samples) }
    }

    /// This host's name as a 52-bit key (exact in a Double, for the gather above): the raw-id rule interaction
    /// tokens use (`InteractionsFormat.rawID`, FNV-1a-64 of non-numeric text).
    static func hostKey() -> UInt64 {
        var name = Array(ProcessInfo.processInfo.hostName.utf8)
        guard !name.isEmpty else { return 0 }
        return name.withUnsafeMutableBufferPointer { InteractionsFormat.rawID($0.baseAddress!, $0.count) } & ((1 << 52) - 1)
    }

    @discardableResult
    func finish(samples: Int? = nil) -> RunRecord? {
        recorded { try tracker.finish(samples: samples) }
    }

    /// The ledger row `make` appends, with its one-line summary on stderr; or nil, saying why it was not recorded.
    private func recorded(_ make: () throws -> RunRecord) -> RunRecord? {
        do {
            let r = try make()
            FileHandle.standardError.write(Data((r.summary + "\n").utf8))
            return r
        } catch {
            FileHandle.standardError.write(Data("carbon: not recorded: \(error)\n".utf8))
            return nil
        }
    }
}

struct CarbonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carbon", abstract: "Energy and carbon of past runs.", subcommands: [CarbonReportCommand.self])
}

struct CarbonReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Totals per command and model from the ledger; optional self-contained HTML page.")

    @Option(name: .long, help: "Ledger file (ledger.jsonl) or its directory (default ~/.local/state/reckit).")
    var ledger: String?

    @Option(name: .long, help: "Write an HTML report (inline SVG chart, no network) to this file.")
    var html: String?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run() throws {
        var dir = ledger ?? ProcessInfo.processInfo.environment["RECKIT_LEDGER_DIR"] ?? CarbonSettings.defaultLedgerDirectory()
        if dir.hasSuffix(".jsonl") { dir = (dir as NSString).deletingLastPathComponent }
        let records: [RunRecord]
        do throws(CarbonError) { records = try Ledger(directory: dir).records() } catch {
            throw CLIError(message: error.description, code: 66)
        }
        let report = CarbonReport(records: records)
        if let html {
            do { try report.html.write(toFile: html, atomically: true, encoding: .utf8) } catch {
                throw CLIError(message: "cannot write \(html): \(error.localizedDescription)", code: 73)
            }
        }
        if json { try printJSON(report) } else {
            print(report.text)
            if let html { print("HTML report: \(html)") }
        }
    }
}
