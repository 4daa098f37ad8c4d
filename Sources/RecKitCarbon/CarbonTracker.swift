import Foundation

/// Where carbon settings come from: explicit options win over environment variables, which win over defaults.
/// Environment: RECKIT_REGION, RECKIT_GRID_INTENSITY (gCO2e/kWh), RECKIT_PUE, RECKIT_CPU_WATTS_PER_CORE,
/// RECKIT_LEDGER_DIR.
public struct CarbonSettings: Sendable {
    public var region: String?
    public var gridIntensity: Double?
    public var pue: Double?
    public var wattsPerCore: Double?
    public var ledgerDirectory: String?

    public init(region: String? = nil, gridIntensity: Double? = nil, pue: Double? = nil, wattsPerCore: Double? = nil,
                ledgerDirectory: String? = nil) {
        self.region = region; self.gridIntensity = gridIntensity; self.pue = pue; self.wattsPerCore = wattsPerCore
        self.ledgerDirectory = ledgerDirectory
    }

    /// Fills unset fields from `environment`.
    public func resolved(environment: [String: String] = ProcessInfo.processInfo.environment) throws(CarbonError) -> CarbonSettings {
        var s = self
        func number(_ key: String) throws(CarbonError) -> Double? {
            guard let v = environment[key] else { return nil }
            guard let d = Double(v), d.isFinite, d >= 0 else { throw .invalidSetting("\(key)=\(v) is not a non-negative number") }
            return d
        }
        if s.region == nil { s.region = environment["RECKIT_REGION"] }
        if s.gridIntensity == nil { s.gridIntensity = try number("RECKIT_GRID_INTENSITY") }
        if s.pue == nil { s.pue = try number("RECKIT_PUE") }
        if s.wattsPerCore == nil { s.wattsPerCore = try number("RECKIT_CPU_WATTS_PER_CORE") }
        if s.ledgerDirectory == nil { s.ledgerDirectory = environment["RECKIT_LEDGER_DIR"] }
        return s
    }

    /// The carbon model these settings describe.
    public func model(coresUsed: Int, serverCores: Int) throws(CarbonError) -> CarbonModel {
        var region = GridRegions.defaultRegion
        if let code = self.region {
            guard let r = GridRegions.find(code) else {
                throw .invalidSetting("unknown region '\(code)'; known: \(GridRegions.all.map(\.code).joined(separator: ", "))")
            }
            region = r
        }
        if let g = gridIntensity {
            region = GridRegion(code: region.code + "-override", name: region.name + " (user intensity)", gramsPerKWh: g,
                                source: "user override", year: 0)
        }
        if let p = pue, p < 1 { throw .invalidSetting("PUE must be ≥ 1, got \(p)") }
        return CarbonModel(region: region, pue: pue ?? CarbonModel.hyperscalePUE, serverCores: serverCores, coresUsed: coresUsed)
    }

    /// Default ledger directory: $XDG_STATE_HOME/reckit or ~/.local/state/reckit.
    public static func defaultLedgerDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let x = environment["XDG_STATE_HOME"], !x.isEmpty { return x + "/reckit" }
        return (environment["HOME"] ?? NSTemporaryDirectory()) + "/.local/state/reckit"
    }
}

public enum CarbonError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidSetting(String)
    case ledger(path: String, reason: String)
    public var description: String {
        switch self {
        case .invalidSetting(let s): return "carbon settings: \(s)"
        case let .ledger(path, reason): return "carbon ledger \(path): \(reason)"
        }
    }
}

/// One run's energy and carbon: a ledger line.
public struct RunRecord: Codable, Sendable, Equatable {
    public var timestamp: String
    public var runID: String
    public var command: String
    public var model: String?
    public var seconds: Double
    public var energyJoules: Double
    public var method: EnergyMethod
    public var methodNote: String
    public var operationalGrams: Double
    public var embodiedGrams: Double
    public var samples: Int?
    public var joulesPer1kSamples: Double?
    public var region: String
    public var gridGramsPerKWh: Double
    public var pue: Double
    public var cpuModel: String
    public var cpuCount: Int

    enum CodingKeys: String, CodingKey {
        case timestamp, command, model, seconds, method, samples, region, pue
        case runID = "run_id"
        case energyJoules = "energy_joules"
        case methodNote = "method_note"
        case operationalGrams = "operational_gco2e"
        case embodiedGrams = "embodied_gco2e"
        case joulesPer1kSamples = "joules_per_1k_samples"
        case gridGramsPerKWh = "grid_gco2e_per_kwh"
        case cpuModel = "cpu_model"
        case cpuCount = "cpu_count"
    }

    /// The one-line summary every command prints at its end.
    public var summary: String {
        var s = "carbon: \(Joules(energyJoules)) (\(String(format: "%.3g", energyJoules / 3.6e6)) kWh), operational \(GramsCO2e(operationalGrams)), embodied \(GramsCO2e(embodiedGrams))"
        if let j = joulesPer1kSamples { s += String(format: ", %.3g J/1k samples", j) }
        s += ", method \(method.rawValue)"
        if method != .measuredRAPL { s += " (no readable RAPL counters here)" }
        return s
    }
}

/// Measures a command from `start()` to `finish(samples:)` and appends the record to the ledger
/// (`ledger.jsonl` and CodeCarbon-compatible `emissions.csv` in the ledger directory).
public final class CarbonTracker: @unchecked Sendable {
    public let command: String
    public let model: String?
    public let settings: CarbonSettings
    public let carbon: CarbonModel
    private var meter: any EnergyMeter
    public private(set) var meterNote: String
    private let wallClock: @Sendable () -> Date

    /// Uses RAPL when its counters are readable, else the estimate (the note says why).
    public init(command: String, model: String? = nil, settings: CarbonSettings = CarbonSettings(), coresUsed: Int,
                meter: (any EnergyMeter)? = nil, wallClock: @escaping @Sendable () -> Date = { Date() }) throws(CarbonError) {
        self.command = command
        self.model = model
        self.settings = try settings.resolved()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        carbon = try self.settings.model(coresUsed: coresUsed, serverCores: cores)
        self.wallClock = wallClock
        if let meter {
            self.meter = meter
            meterNote = ""
        } else {
            var rapl = RAPLMeter()
            do throws(EnergyError) {
                try rapl.begin()
                self.meter = rapl
                meterNote = ""
            } catch {
                self.meter = EstimatedMeter(wattsPerCoreOverride: self.settings.wattsPerCore)
                meterNote = error.description
            }
        }
    }

    public func start() throws(EnergyError) { try meter.begin() }

    /// Ends the measurement, appends to the ledger, returns the record.
    /// Running totals since `start()` without ending the run (long-lived processes: the server's /metrics).
    public func snapshot() throws -> (joules: Double, operationalGrams: Double, embodiedGrams: Double, seconds: Double, method: EnergyMethod) {
        let m = try meter.end()
        return (m.energy.value, carbon.operational(m.energy).value, carbon.embodied(seconds: m.seconds).value, m.seconds, m.method)
    }

    public func finish(samples: Int? = nil, writeLedger: Bool = true) throws -> RunRecord {
        try record(try meter.end(), samples: samples, writeLedger: writeLedger)
    }

    /// Ends this process's measurement without recording it: a distributed run gathers its ranks' measurements
    /// and records their `EnergyMeasurement.combined` on one rank.
    public func measure() throws(EnergyError) -> EnergyMeasurement { try meter.end() }

    /// Records a measurement (this process's, or several processes' combined) and appends it to the ledger.
    public func record(_ m: EnergyMeasurement, samples: Int? = nil, writeLedger: Bool = true) throws -> RunRecord {
        let record = RunRecord(
            timestamp: ISO8601DateFormatter().string(from: wallClock()), runID: UUID().uuidString, command: command,
            model: model, seconds: m.seconds, energyJoules: m.energy.value, method: m.method,
            methodNote: m.note + (meterNote.isEmpty ? "" : "; RAPL: \(meterNote)"),
            operationalGrams: carbon.operational(m.energy).value, embodiedGrams: carbon.embodied(seconds: m.seconds).value,
            samples: samples, joulesPer1kSamples: samples.flatMap { $0 > 0 ? m.energy.value * 1000 / Double($0) : nil },
            region: carbon.region.code, gridGramsPerKWh: carbon.region.gramsPerKWh, pue: carbon.pue,
            cpuModel: CPUPowerTable.hostModel(), cpuCount: ProcessInfo.processInfo.activeProcessorCount)
        if writeLedger {
            try Ledger(directory: settings.ledgerDirectory ?? CarbonSettings.defaultLedgerDirectory()).append(record)
        }
        return record
    }
}
