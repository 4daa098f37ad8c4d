import Foundation

/// Reads energy for one run. `begin()` then `end()`; implementations are injected with their data sources so
/// tests control counters and clocks.
public protocol EnergyMeter {
    var method: EnergyMethod { get }
    /// Records the starting point.
    mutating func begin() throws(EnergyError)
    /// Energy since `begin()`, with what it was computed from.
    func end() throws(EnergyError) -> EnergyMeasurement
}

public struct EnergyMeasurement: Sendable, Equatable, Codable {
    public var energy: Joules
    public var seconds: Double
    public var method: EnergyMethod
    /// Inputs of the figure, for the record (e.g. "cpu_seconds": 3.2, "watts_per_core": 7.5).
    public var inputs: [String: Double]
    public var note: String
}

extension EnergyMeasurement {
    /// One run's energy from its processes' measurements (the ranks of a distributed run), each with a key for its
    /// host. RAPL counters are package-wide, so the ranks on one host read the same energy: per host the largest
    /// reading counts once. The estimates are per process (its CPU time and resident memory), so they add up.
    /// Seconds are the longest rank's; the method is the first part's, and the note says how many ranks and hosts.
    ///
    ///     E = Σ_hosts max_{rapl ranks on host} E_r + Σ_{estimated ranks} E_r
    public static func combined(_ parts: [(measurement: EnergyMeasurement, host: UInt64)]) -> EnergyMeasurement? {
        guard let first = parts.first?.measurement else { return nil }
        var perHost: [UInt64: Double] = [:]
        var estimated = 0.0, seconds = 0.0
        for (m, host) in parts {
            if m.method == .measuredRAPL { perHost[host] = max(perHost[host] ?? 0, m.energy.value) } else { estimated += m.energy.value }
            seconds = max(seconds, m.seconds)
        }
        let hosts = Set(parts.map(\.host)).count
        var inputs = first.inputs
        inputs["ranks"] = Double(parts.count); inputs["hosts"] = Double(hosts)
        return EnergyMeasurement(energy: Joules(perHost.values.reduce(0, +) + estimated), seconds: seconds, method: first.method, inputs: inputs,
                                 note: first.note + "; \(parts.count) ranks on \(hosts) host\(hosts == 1 ? "" : "s") (RAPL once per host, estimates summed)")
    }

    /// The measurement as numbers for a collective (`[joules, seconds, method]`), and back (`init(numbers:)`).
    public var numbers: [Double] {
        [energy.value, seconds, method == .measuredRAPL ? 0 : method == .estimatedTDP ? 1 : 2]
    }

    public init(numbers n: ArraySlice<Double>, note: String) {
        let m: EnergyMethod = n[n.startIndex + 2] == 0 ? .measuredRAPL : n[n.startIndex + 2] == 1 ? .estimatedTDP : .userOverride
        self.init(energy: Joules(n[n.startIndex]), seconds: n[n.startIndex + 1], method: m, inputs: [:], note: note)
    }
}

public enum EnergyError: Error, Equatable, Sendable, CustomStringConvertible {
    case unavailable(String)
    case unreadable(path: String, reason: String)
    public var description: String {
        switch self {
        case .unavailable(let s): return "energy counters unavailable: \(s)"
        case let .unreadable(path, reason): return "cannot read \(path): \(reason)"
        }
    }
}

/// Intel/AMD RAPL through /sys/class/powercap: sums the top-level package domains (and their dram
/// sub-domains when present), handling counter wrap-around with `max_energy_range_uj`.
public struct RAPLMeter: EnergyMeter {
    public let method = EnergyMethod.measuredRAPL
    /// Reads a sysfs file's contents (injected for tests).
    public typealias Reader = @Sendable (String) throws(EnergyError) -> String

    public let root: String
    let read: Reader
    let clock: @Sendable () -> Double
    private(set) var domains: [String] = []
    private var startCounters: [UInt64] = []
    private var startTime = 0.0

    public init(root: String = "/sys/class/powercap", read: @escaping Reader = RAPLMeter.readFile,
                clock: @escaping @Sendable () -> Double = MonotonicClock.now) {
        self.root = root; self.read = read; self.clock = clock
    }

    /// The energy-counting domains under `root` (intel-rapl:N and intel-rapl:N:M), or an error saying why none.
    public static func discover(root: String, read: Reader) throws(EnergyError) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else {
            throw .unavailable("no \(root) (no powercap interface: VM, container, or non-Intel/AMD CPU)")
        }
        let domains = names.filter { $0.hasPrefix("intel-rapl:") || $0.hasPrefix("amd-rapl:") }.sorted()
        guard !domains.isEmpty else { throw .unavailable("\(root) has no RAPL domains") }
        // Sub-domains (core, uncore) are included in their package except dram; keep packages and dram.
        var kept: [String] = []
        for d in domains {
            if d.split(separator: ":").count == 2 { kept.append(d); continue }
            if try read("\(root)/\(d)/name").trimmingCharacters(in: .whitespacesAndNewlines) == "dram" { kept.append(d) }
        }
        return kept
    }

    public mutating func begin() throws(EnergyError) {
        domains = try Self.discover(root: root, read: read)
        startCounters = []
        for d in domains { startCounters.append(try counter(d)) }
        startTime = clock()
    }

    public func end() throws(EnergyError) -> EnergyMeasurement {
        var total = 0.0
        for (i, d) in domains.enumerated() {
            let now = try counter(d)
            let range = UInt64(try read("\(root)/\(d)/max_energy_range_uj").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            total += Double(Self.delta(start: startCounters[i], end: now, range: range))
        }
        return EnergyMeasurement(energy: Joules(total / 1e6), seconds: clock() - startTime, method: method,
                                 inputs: ["domains": Double(domains.count)], note: "RAPL \(domains.joined(separator: ","))")
    }

    /// Microjoules between two counter readings, allowing one wrap past `range`.
    public static func delta(start: UInt64, end: UInt64, range: UInt64) -> UInt64 {
        end >= start ? end - start : (range > start ? range - start + end : end)
    }

    func counter(_ d: String) throws(EnergyError) -> UInt64 {
        let path = "\(root)/\(d)/energy_uj"
        guard let v = UInt64(try read(path).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw .unreadable(path: path, reason: "not a number")
        }
        return v
    }

    public static let readFile: Reader = { path throws(EnergyError) in
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
            let reason = (error as NSError).code == NSFileReadNoPermissionError ? "permission denied (RAPL needs root or a readable energy_uj)" : error.localizedDescription
            throw .unreadable(path: path, reason: reason)
        }
    }
}

/// The estimate when no counters can be read: E = CPU-seconds of this process × watts per busy core
/// + resident memory (GiB) × watts per GiB × wall seconds.
public struct EstimatedMeter: EnergyMeter {
    public let method: EnergyMethod
    public let wattsPerCore: Double
    public let wattsPerGiB: Double
    public let cpuModel: String
    let cpuSeconds: @Sendable () -> Double
    let residentGiB: @Sendable () -> Double
    let clock: @Sendable () -> Double
    private var start = (cpu: 0.0, wall: 0.0)

    /// - Parameters: wattsPerCoreOverride wins over the table (method `user-override`).
    public init(cpuModel: String = CPUPowerTable.hostModel(), wattsPerCoreOverride: Double? = nil,
                wattsPerGiB: Double = CPUPowerTable.memoryWattsPerGiB,
                cpuSeconds: @escaping @Sendable () -> Double = ProcessUsage.cpuSeconds,
                residentGiB: @escaping @Sendable () -> Double = ProcessUsage.peakResidentGiB,
                clock: @escaping @Sendable () -> Double = MonotonicClock.now) {
        self.cpuModel = cpuModel
        if let w = wattsPerCoreOverride {
            wattsPerCore = w
            method = .userOverride
        } else {
            wattsPerCore = CPUPowerTable.wattsPerCore(model: cpuModel).watts
            method = .estimatedTDP
        }
        self.wattsPerGiB = wattsPerGiB
        self.cpuSeconds = cpuSeconds
        self.residentGiB = residentGiB
        self.clock = clock
    }

    public mutating func begin() throws(EnergyError) { start = (cpuSeconds(), clock()) }

    public func end() throws(EnergyError) -> EnergyMeasurement {
        let cpu = max(0, cpuSeconds() - start.cpu), wall = max(0, clock() - start.wall), mem = residentGiB()
        let joules = cpu * wattsPerCore + mem * wattsPerGiB * wall
        let source = method == .userOverride ? "user override" : CPUPowerTable.wattsPerCore(model: cpuModel).source
        return EnergyMeasurement(
            energy: Joules(joules), seconds: wall, method: method,
            inputs: ["cpu_seconds": cpu, "watts_per_core": wattsPerCore, "memory_gib": mem, "watts_per_gib": wattsPerGiB],
            note: "estimate: \(String(format: "%.2f", cpu)) CPU-s × \(wattsPerCore) W/core (\(source)) + \(String(format: "%.2f", mem)) GiB × \(wattsPerGiB) W/GiB")
    }
}

public enum MonotonicClock {
    public static let now: @Sendable () -> Double = {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

public enum ProcessUsage {
    /// User + system CPU seconds of this process (all threads).
    public static let cpuSeconds: @Sendable () -> Double = {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) * 1e-6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) * 1e-6
    }
    /// Peak resident set, GiB.
    public static let peakResidentGiB: @Sendable () -> Double = { Double(peakResidentKiB()) / 1_048_576 }

    /// Peak resident set of this process's address space, KiB: `VmHWM` from `/proc/self/status`. `ru_maxrss` is not
    /// used first because Linux carries it across `exec`: a process spawned by a large one (a test runner) reports
    /// its parent's peak at fork time until it grows past it. Falls back to `ru_maxrss` where `/proc` is absent.
    public static func peakResidentKiB() -> Int {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kib = Int(line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") {
            return kib
        }
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return u.ru_maxrss
    }
}
