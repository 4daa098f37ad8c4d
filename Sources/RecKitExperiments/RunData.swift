import Foundation
import RecKitCarbon
import RecKitTraining

/// A run directory read back: its config, metric rows, calibration deciles, summary and carbon row (the last three
/// only for a finished run; an interrupted run has a readable prefix of metrics). For a run resumed into its own
/// directory, the files of its latest leg (`RunDirectory.latestLeg`) and every leg's metrics.
public struct RunData: Sendable {
    public var directory: RunDirectory
    public var config: RunConfig
    public var metrics: [MetricsRow]
    public var calibration: [ReliabilityBin]
    public var summary: TrainReport?
    public var carbon: RunRecord?

    public var name: String { directory.name }
    public var finished: Bool { summary != nil }
    public var trainingRows: [MetricsRow] { metrics.filter { !$0.isValidation } }
    public var validationRows: [MetricsRow] { metrics.filter(\.isValidation) }

    /// The best validation AUC any pass reached.
    public var bestValidationAUC: Double? { validationRows.compactMap(\.validationAUC).max() }

    /// Samples per second over the whole run (the summary's), else the mean of the logged intervals.
    public var samplesPerSecond: Double? {
        if let s = summary?.samplesPerSecond { return s }
        let r = trainingRows.compactMap(\.samplesPerSecond)
        return r.isEmpty ? nil : r.reduce(0, +) / Double(r.count)
    }

    public static func load(_ path: String) throws(ExperimentError) -> RunData {
        let dir = try RunDirectory(existing: path)
        let leg = dir.latestLeg
        func file(_ base: String) -> String { dir.file(RunDirectory.legFile(base, leg)) }
        let config: RunConfig = try decode(file(RunDirectory.configFile))
        let metricsPath = dir.file(RunDirectory.metricsFile)
        let metrics = FileManager.default.fileExists(atPath: metricsPath) ? try MetricsRow.read(metricsPath) : []
        let summaryPath = file(RunDirectory.summaryFile), carbonPath = file(RunDirectory.carbonFile)
        let calibrationPath = file(RunDirectory.calibrationFile)
        return RunData(directory: dir, config: config, metrics: metrics,
                       calibration: FileManager.default.fileExists(atPath: calibrationPath) ? try readCalibration(calibrationPath) : [],
                       summary: FileManager.default.fileExists(atPath: summaryPath) ? try decode(summaryPath) : nil,
                       carbon: FileManager.default.fileExists(atPath: carbonPath) ? try decode(carbonPath) : nil)
    }

    static func decode<T: Decodable>(_ path: String) throws(ExperimentError) -> T {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read") }
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try d.decode(T.self, from: data) } catch { throw .malformed(path: path, line: nil, reason: "\(error)") }
    }

    static func readCalibration(_ path: String) throws(ExperimentError) -> [ReliabilityBin] {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read") }
        var out: [ReliabilityBin] = []
        for (i, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() where i > 0 {
            let c = line.split(separator: ",")
            guard c.count == 4, let p = Double(c[1]), let y = Double(c[2]), let n = Int(c[3]) else {
                throw .malformed(path: path, line: i + 1, reason: "expected decile,mean_prediction,observed_rate,count")
            }
            out.append(ReliabilityBin(meanPrediction: p, observedRate: y, count: n))
        }
        return out
    }
}

/// One line of `reckit runs list` (and its JSON).
public struct RunListing: Codable, Sendable, Equatable {
    public var name: String
    public var model: String
    public var status: String
    public var created: String
    public var steps: Int?
    public var epochs: Int?
    public var bestValidationAUC: Double?
    public var validationAUC: Double?
    public var validationLogloss: Double?
    public var samplesPerSecond: Double?
    public var seconds: Double?
    public var energyJoules: Double?
    public var gramsCO2e: Double?

    enum CodingKeys: String, CodingKey {
        case name, model, status, created, steps, epochs, seconds
        case bestValidationAUC = "best_validation_auc"
        case validationAUC = "validation_auc"
        case validationLogloss = "validation_logloss"
        case samplesPerSecond = "samples_per_s"
        case energyJoules = "energy_joules"
        case gramsCO2e = "gco2e"
    }

    public init(_ r: RunData) {
        name = r.name
        model = r.config.model
        status = r.finished ? "finished" : "incomplete"
        created = r.config.created
        steps = r.summary?.steps ?? r.metrics.last?.step
        epochs = r.summary?.epochs
        bestValidationAUC = r.bestValidationAUC
        validationAUC = r.summary?.validation?.auc
        validationLogloss = r.summary?.validation?.logloss
        samplesPerSecond = r.samplesPerSecond
        seconds = r.summary?.seconds
        energyJoules = r.carbon?.energyJoules
        gramsCO2e = r.carbon.map { $0.operationalGrams + $0.embodiedGrams }
    }
}

/// The configuration keys whose values differ between runs (every key for one run), each with the runs' values
/// in order ("—" where a run lacks the key). Keys that always differ by nature (name, created, host) are left out.
public func configDifferences(_ runs: [RunData]) -> [(key: String, values: [String])] {
    let flat = runs.map(\.config.flattened)
    let keys = Set(flat.flatMap(\.keys)).sorted()
    return keys.compactMap { k in
        let values = flat.map { $0[k] ?? "—" }
        return runs.count == 1 || Set(values).count > 1 ? (k, values) : nil
    }
}
