import Foundation

/// Watts per busy core for known server CPUs: TDP ÷ cores from the vendors' specification pages. A TDP is
/// sustained package power under load, so TDP/cores is a fair per-busy-core figure for throughput jobs.
public enum CPUPowerTable {
    public struct Entry: Sendable { public var match: String; public var tdp: Double; public var cores: Int; public var source: String }

    public static let entries: [Entry] = [
        Entry(match: "Platinum 8480", tdp: 350, cores: 56, source: "Intel ARK, Xeon Platinum 8480+ (Sapphire Rapids)"),
        Entry(match: "Platinum 8592", tdp: 350, cores: 64, source: "Intel ARK, Xeon Platinum 8592+ (Emerald Rapids)"),
        Entry(match: "Platinum 8380", tdp: 270, cores: 40, source: "Intel ARK, Xeon Platinum 8380 (Ice Lake)"),
        Entry(match: "Gold 6248", tdp: 150, cores: 20, source: "Intel ARK, Xeon Gold 6248 (Cascade Lake)"),
        Entry(match: "EPYC 7763", tdp: 280, cores: 64, source: "AMD, EPYC 7763 (Milan)"),
        Entry(match: "EPYC 9654", tdp: 360, cores: 96, source: "AMD, EPYC 9654 (Genoa)"),
    ]

    /// Used when the model is unknown or masked (VMs often report "Intel(R) Xeon(R) Processor"): the Xeon
    /// Platinum 8480+ figure, a current-generation server core.
    public static let defaultWattsPerCore = 350.0 / 56

    /// Resident memory power: 3 W per 8 GB, CodeCarbon's constant (codecarbon/external/hardware.py).
    public static let memoryWattsPerGiB = 0.375

    public static func wattsPerCore(model: String) -> (watts: Double, source: String) {
        if let e = entries.first(where: { model.contains($0.match) }) { return (e.tdp / Double(e.cores), e.source) }
        return (defaultWattsPerCore, "unknown CPU '\(model)': default 350 W / 56 cores (Xeon Platinum 8480+)")
    }

    /// `model name` of the first CPU in /proc/cpuinfo.
    public static func hostModel() -> String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return info.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } } ?? "unknown"
    }
}
