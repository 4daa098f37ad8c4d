import Foundation

/// The run ledger: `ledger.jsonl` (one RunRecord per line) and `emissions.csv` with CodeCarbon's column names
/// and units (duration s, emissions kg CO2eq, energies kWh, powers W) so existing dashboards can read it.
public struct Ledger: Sendable {
    public let directory: String
    public var jsonlPath: String { directory + "/ledger.jsonl" }
    public var csvPath: String { directory + "/emissions.csv" }

    public init(directory: String) { self.directory = directory }

    public static let csvColumns = ["timestamp", "project_name", "run_id", "duration", "emissions", "emissions_rate",
                                    "cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy", "ram_energy",
                                    "energy_consumed", "country_name", "country_iso_code", "region", "cloud_provider",
                                    "cloud_region", "os", "python_version", "codecarbon_version", "cpu_count", "cpu_model",
                                    "gpu_count", "gpu_model", "longitude", "latitude", "ram_total_size", "tracking_mode",
                                    "on_cloud", "pue"]

    public func append(_ r: RunRecord) throws(CarbonError) {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .ledger(path: directory, reason: "cannot create: \(error.localizedDescription)")
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        guard let json = try? enc.encode(r) else { throw .ledger(path: jsonlPath, reason: "cannot encode record") }
        try appendLine(String(decoding: json, as: UTF8.self), to: jsonlPath)
        let newCSV = !FileManager.default.fileExists(atPath: csvPath)
        if newCSV { try appendLine(Self.csvColumns.joined(separator: ","), to: csvPath) }
        let kwh = r.energyJoules / 3.6e6
        let kg = (r.operationalGrams + r.embodiedGrams) / 1000
        let power = r.seconds > 0 ? r.energyJoules / r.seconds : 0
        let fields: [String] = [
            r.timestamp, "reckit " + r.command + (r.model.map { " " + $0 } ?? ""), r.runID, fmt(r.seconds), fmt(kg),
            fmt(r.seconds > 0 ? kg / r.seconds : 0), fmt(power), "0", "0", fmt(kwh), "0", "0", fmt(kwh), "", "",
            r.region, "", "", "Linux", "", "reckit-" + r.method.rawValue, String(r.cpuCount), r.cpuModel, "0", "", "", "",
            "", "machine", "N", fmt(r.pue),
        ]
        try appendLine(fields.map(csvEscape).joined(separator: ","), to: csvPath)
    }

    /// Every record of `ledger.jsonl`; malformed lines are reported with their line number.
    public func records() throws(CarbonError) -> [RunRecord] {
        guard let text = try? String(contentsOfFile: jsonlPath, encoding: .utf8) else {
            throw .ledger(path: jsonlPath, reason: "cannot read (no runs recorded yet?)")
        }
        var out: [RunRecord] = []
        for (i, line) in text.split(separator: "\n").enumerated() {
            guard let r = try? JSONDecoder().decode(RunRecord.self, from: Data(line.utf8)) else {
                throw .ledger(path: jsonlPath, reason: "line \(i + 1) is not a run record")
            }
            out.append(r)
        }
        return out
    }

    private func appendLine(_ line: String, to path: String) throws(CarbonError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw .ledger(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let bytes = Array((line + "\n").utf8)
        let n = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress!, $0.count) }  // one O_APPEND write: atomic line
        guard n == bytes.count else { throw .ledger(path: path, reason: "short write") }
    }

    private func fmt(_ x: Double) -> String { String(format: "%.9g", x) }
    private func csvEscape(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
