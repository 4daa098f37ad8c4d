import Foundation
import RecKitCarbon

/// Wall-clock timing helpers shared by the benchmarks.
public enum BenchTiming {
    /// Monotonic seconds.
    @inline(__always) public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Seconds per call of `body`: after `warmup` calls, `blocks` timed blocks, each repeating `body` until it
    /// has run at least `minBlockSeconds`; returns the per-call time of every block (take the median).
    public static func measure(blocks: Int = 5, warmup: Int = 1, minBlockSeconds: Double = 0.05,
                               _ body: () -> Void) -> [Double] {
        for _ in 0..<warmup { body() }
        var result: [Double] = []
        for _ in 0..<blocks {
            var calls = 0
            let t0 = now()
            var t = t0
            repeat {
                body()
                calls += 1
                t = now()
            } while t - t0 < minBlockSeconds
            result.append((t - t0) / Double(calls))
        }
        return result
    }

    public static func median(_ xs: [Double]) -> Double {
        guard !xs.isEmpty else { return .nan }
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Peak resident set size of this process, MiB (getrusage; Linux reports KiB).
    /// The q-quantile (0…1) of `xs`, nearest rank; NaN when empty.
    public static func quantile(_ xs: [Double], _ q: Double) -> Double {
        guard !xs.isEmpty else { return .nan }
        let s = xs.sorted()
        return s[min(s.count - 1, max(0, Int((q * Double(s.count)).rounded(.up)) - 1))]
    }

    /// Peak resident set of this process, MiB (`ProcessUsage.peakResidentKiB`).
    public static func peakRSSMiB() -> Double { Double(ProcessUsage.peakResidentKiB()) / 1024 }
}

/// What machine a figure was measured on.
public struct MachineInfo: Codable, Sendable {
    public var cpu: String
    public var cores: Int
    public var memoryGiB: Double
    public var isa: String
    public var openblasCore: String?
    public var nativeBuild: Bool

    enum CodingKeys: String, CodingKey {
        case cpu, cores, isa
        case memoryGiB = "memory_gib"
        case openblasCore = "openblas_core"
        case nativeBuild = "native_build"
    }

    public static func current(isa: String, openblasCore: String?) -> MachineInfo {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "unknown"
        #if RECKIT_NATIVE_BUILD
        let native = true
        #else
        let native = false
        #endif
        return MachineInfo(cpu: model, cores: ProcessInfo.processInfo.activeProcessorCount,
                           memoryGiB: Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824,
                           isa: isa, openblasCore: openblasCore, nativeBuild: native)
    }
}
