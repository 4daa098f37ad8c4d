import Foundation
@testable import RecKitCarbon
import RecKitTestSupport
import Testing

/// A settable clock / counter for injected meters.
final class Dial: @unchecked Sendable {
    var value: Double
    init(_ v: Double) { value = v }
}

@Suite("Energy and carbon")
struct CarbonTests {
    @Test("unit conversions")
    func units() {
        #expect(Joules(3_600_000).kilowattHours.value == 1)
        #expect(KilowattHours(2).joules.value == 7_200_000)
        #expect(Watts(10).over(seconds: 3).value == 30)
        #expect(GramsCO2e(1500).kilograms == 1.5)
    }

    @Test("operational and embodied carbon against hand-computed values")
    func formulas() {
        let region = GridRegion(code: "t", name: "test", gramsPerKWh: 400, source: "test", year: 2024)
        let m = CarbonModel(region: region, pue: 1.1, serverEmbodiedKg: 1000, lifetimeYears: 4, utilization: 0.5,
                            serverCores: 32, coresUsed: 8)
        // 36 MJ = 10 kWh → 10 × 1.1 × 400 = 4400 g.
        assertClose(m.operational(Joules(36_000_000)).value, 4400, Tolerance(rtol: 1e-12, atol: 0, reason: "exact arithmetic"))
        // 1 hour: 1e6 g × (8/32) × 3600 / (4 × 365.25 × 86400 × 0.5) = 14.2596... g
        let expected = 1_000_000.0 * 0.25 * 3600 / (4 * 365.25 * 86400 * 0.5)
        assertClose(m.embodied(seconds: 3600).value, expected, Tolerance(rtol: 1e-12, atol: 0, reason: "exact arithmetic"))
        #expect(abs(expected - 14.2596) < 1e-3)
        #expect(m.embodied(seconds: 0).value == 0 && m.operational(Joules(0)).value == 0)
    }

    @Test("RAPL: deltas across domains, counter wrap-around, dram sub-domain kept, core sub-domain skipped")
    func rapl() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("rapl-\(getpid())").path
        try? FileManager.default.removeItem(atPath: root)
        for d in ["intel-rapl:0", "intel-rapl:0:0", "intel-rapl:0:1", "intel-rapl:1"] {
            try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
        }
        func put(_ d: String, _ file: String, _ v: String) throws { try v.write(toFile: "\(root)/\(d)/\(file)", atomically: true, encoding: .utf8) }
        try put("intel-rapl:0:0", "name", "core\n")
        try put("intel-rapl:0:1", "name", "dram\n")
        for d in ["intel-rapl:0", "intel-rapl:0:0", "intel-rapl:0:1", "intel-rapl:1"] { try put(d, "max_energy_range_uj", "1000000\n") }
        try put("intel-rapl:0", "energy_uj", "999000\n")   // will wrap
        try put("intel-rapl:0:0", "energy_uj", "5\n")
        try put("intel-rapl:0:1", "energy_uj", "100\n")
        try put("intel-rapl:1", "energy_uj", "0\n")
        let clock = Dial(10)
        var meter = RAPLMeter(root: root, clock: { clock.value })
        try meter.begin()
        try put("intel-rapl:0", "energy_uj", "4000\n")     // +1000 + 4000 = 5000 µJ after wrapping
        try put("intel-rapl:0:0", "energy_uj", "900005\n") // core: inside the package, not added
        try put("intel-rapl:0:1", "energy_uj", "2100\n")   // dram: +2000
        try put("intel-rapl:1", "energy_uj", "3000\n")     // +3000
        clock.value = 12
        let m = try meter.end()
        #expect(m.method == .measuredRAPL && m.seconds == 2)
        assertClose(m.energy.value, 0.010, Tolerance(rtol: 1e-12, atol: 0, reason: "exact"), "10,000 µJ")
        #expect(RAPLMeter.delta(start: 10, end: 5, range: 0) == 5, "unknown range: no invented energy")
    }

    @Test("RAPL unavailable or unreadable gives a typed error; the tracker falls back to the labelled estimate")
    func raplUnavailable() throws {
        var missing = RAPLMeter(root: "/nonexistent/powercap")
        #expect(throws: EnergyError.self) { try missing.begin() }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("rapl-perm-\(getpid())").path
        try FileManager.default.createDirectory(atPath: root + "/intel-rapl:0", withIntermediateDirectories: true)
        var denied = RAPLMeter(root: root, read: { p throws(EnergyError) in throw .unreadable(path: p, reason: "permission denied") })
        do throws(EnergyError) {
            try denied.begin()
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("permission denied"))
        }
        let t = try CarbonTracker(command: "test", settings: CarbonSettings(ledgerDirectory: "/nonexistent"), coresUsed: 1)
        if !FileManager.default.isReadableFile(atPath: "/sys/class/powercap/intel-rapl:0/energy_uj") {
            #expect(!t.meterNote.isEmpty, "the fallback must say why RAPL was not used")
        }
    }

    @Test("ranks combined: RAPL once per host (the largest reading), estimates summed, longest wall time; numbers round-trip")
    func combinedRanks() throws {
        func m(_ j: Double, _ s: Double, _ method: EnergyMethod) -> EnergyMeasurement {
            EnergyMeasurement(energy: Joules(j), seconds: s, method: method, inputs: [:], note: "n")
        }
        // Two hosts with two RAPL ranks each: package counters are shared per host.
        let rapl = EnergyMeasurement.combined([(m(100, 10, .measuredRAPL), 1), (m(104, 11, .measuredRAPL), 1),
                                               (m(50, 9, .measuredRAPL), 2), (m(49, 12, .measuredRAPL), 2)])
        #expect(rapl?.energy.value == 154 && rapl?.seconds == 12 && rapl?.method == .measuredRAPL)
        #expect(rapl?.inputs["ranks"] == 4 && rapl?.inputs["hosts"] == 2)
        // Estimates are per process: four ranks on one host add up.
        let est = EnergyMeasurement.combined((0..<4).map { (m(Double($0 + 1), 5, .estimatedTDP), 7) })
        #expect(est?.energy.value == 10 && est?.method == .estimatedTDP && est?.note.contains("4 ranks on 1 host") == true)
        // One rank alone is its own measurement; no ranks, nothing.
        #expect(EnergyMeasurement.combined([(m(3, 2, .userOverride), 9)])?.energy.value == 3)
        #expect(EnergyMeasurement.combined([]) == nil)
        for method in [EnergyMethod.measuredRAPL, .estimatedTDP, .userOverride] {
            let back = EnergyMeasurement(numbers: ([1, 0] + m(2.5, 4, method).numbers)[2...], note: "")
            #expect(back.energy.value == 2.5 && back.seconds == 4 && back.method == method)
        }
    }

    @Test("estimate: CPU seconds × W/core + GiB × W/GiB × wall time; override wins and is labelled")
    func estimate() throws {
        let cpu = Dial(100), wall = Dial(50)
        var m = EstimatedMeter(cpuModel: "Intel(R) Xeon(R) Platinum 8380 CPU", cpuSeconds: { cpu.value },
                               residentGiB: { 2 }, clock: { wall.value })
        try m.begin()
        cpu.value = 104; wall.value = 52
        let e = try m.end()
        #expect(e.method == .estimatedTDP)
        assertClose(e.energy.value, 4 * 270.0 / 40 + 2 * 0.375 * 2, Tolerance(rtol: 1e-12, atol: 0, reason: "exact"))
        var o = EstimatedMeter(cpuModel: "x", wattsPerCoreOverride: 10, cpuSeconds: { cpu.value }, residentGiB: { 0 }, clock: { wall.value })
        try o.begin()
        cpu.value += 1
        let eo = try o.end()
        #expect(eo.method == .userOverride && eo.energy.value == 10)
        // Zero-length run: zero energy, no NaN anywhere.
        var z = EstimatedMeter(cpuModel: "x", cpuSeconds: { cpu.value }, residentGiB: { 1 }, clock: { wall.value })
        try z.begin()
        let ez = try z.end()
        #expect(ez.energy.value == 0 && ez.seconds == 0)
    }

    @Test("settings: explicit beats environment beats defaults; bad values are refused")
    func overrides() throws {
        let env = ["RECKIT_REGION": "fr", "RECKIT_PUE": "1.5", "RECKIT_GRID_INTENSITY": "123"]
        let fromEnv = try CarbonSettings().resolved(environment: env)
        let m1 = try fromEnv.model(coresUsed: 1, serverCores: 2)
        #expect(m1.pue == 1.5 && m1.region.gramsPerKWh == 123 && m1.region.source == "user override")
        let explicit = try CarbonSettings(region: "se", gridIntensity: nil, pue: 1.2).resolved(environment: ["RECKIT_PUE": "1.5"])
        let m2 = try explicit.model(coresUsed: 1, serverCores: 2)
        #expect(m2.pue == 1.2 && m2.region.code == "se")
        let defaults = try CarbonSettings().resolved(environment: [:]).model(coresUsed: 1, serverCores: 1)
        #expect(defaults.pue == 1.1 && defaults.region.code == "world" && defaults.serverEmbodiedKg == 1000 && defaults.lifetimeYears == 4)
        #expect(throws: CarbonError.self) { try CarbonSettings().resolved(environment: ["RECKIT_PUE": "abc"]) }
        #expect(throws: CarbonError.self) { try CarbonSettings(region: "mars").model(coresUsed: 1, serverCores: 1) }
        #expect(throws: CarbonError.self) { try CarbonSettings(pue: 0.5).model(coresUsed: 1, serverCores: 1) }
    }

    @Test("tracker → ledger (JSONL + CodeCarbon CSV) → report totals and HTML")
    func ledgerAndReport() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        let cpu = Dial(0), wall = Dial(0)
        for (command, model, cpuSeconds) in [("train", "dlrm", 10.0), ("train", "dlrm", 5.0), ("eval", "dlrm", 1.0)] {
            let meter = EstimatedMeter(cpuModel: "x", wattsPerCoreOverride: 10, cpuSeconds: { cpu.value }, residentGiB: { 0 }, clock: { wall.value })
            let t = try CarbonTracker(command: command, model: model,
                                      settings: CarbonSettings(region: "world", pue: 1.1, ledgerDirectory: dir), coresUsed: 1, meter: meter)
            try t.start()
            cpu.value += cpuSeconds; wall.value += cpuSeconds
            let r = try t.finish(samples: 1000)
            #expect(r.energyJoules == cpuSeconds * 10 && r.joulesPer1kSamples == cpuSeconds * 10)
            #expect(r.summary.contains("user-override"))
        }
        let ledger = Ledger(directory: dir)
        let records = try ledger.records()
        #expect(records.count == 3)
        let csv = try String(contentsOfFile: ledger.csvPath, encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 4 && csv[0] == Substring(Ledger.csvColumns.joined(separator: ",")))
        #expect(csv[1].split(separator: ",", omittingEmptySubsequences: false).count == Ledger.csvColumns.count)
        let report = CarbonReport(records: records)
        #expect(report.groups.count == 2 && report.groups[0].runs == 2 && report.groups[0].energyJoules == 150)
        assertClose(report.totalOperationalGrams, 160.0 / 3.6e6 * 1.1 * 436, Tolerance(rtol: 1e-9, atol: 0, reason: "exact"))
        #expect(report.html.contains("<svg") && report.html.contains("train · dlrm"))
        #expect(!report.html.contains("<script") && !report.html.contains("src=") && !report.html.contains("href="), "self-contained")
        try "garbage\n".write(toFile: dir + "/ledger.jsonl", atomically: true, encoding: .utf8)
        #expect(throws: CarbonError.self) { try ledger.records() }
    }
}
