import ArgumentParser
import Foundation
import Logging
import RecKitCarbon
import RecKitKernels

struct RecKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reckit",
        abstract: "RecKit: train, evaluate and serve recommendation models on CPUs.",
        subcommands: [DemoCommand.self, TrainCommand.self, EvalCommand.self, PredictCommand.self, DataCommand.self, CheckpointCommand.self, Bench.self, QuantizeCommand.self, ServeCommand.self, CarbonCommand.self, KernelsCommand.self, PlanCommand.self, CFCommand.self, RunsCommand.self, ReportCommand.self, TuneCommand.self])
}

/// Options every command shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for parallel kernels (default: all online cores).")
    var threads: Int?

    @Flag(name: .long, help: "Print one JSON object at the end instead of a human summary.")
    var json = false

    var resolvedThreads: Int { max(1, threads ?? ThreadPool.hardwareConcurrency) }
}

/// Logging to stderr, so stdout stays clean for `--json`.
enum CLILog {
    static let bootstrap: Void = {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = ProcessInfo.processInfo.environment["RECKIT_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return h
        }
    }()

    static func logger(_ label: String) -> Logger {
        _ = bootstrap
        return Logger(label: label)
    }

    /// Warns once about set-up problems that make RecKit slow or broken.
    static func checkEnvironment(_ logger: Logger) throws {
        switch BLASRuntime.shared {
        case .failure(let e):
            throw ValidationError("\(e)")
        case .success(let blas):
            if blas.coreName.lowercased() == "prescott", CPUFeatures.host.avx2 {
                logger.warning("OpenBLAS runs its SSE3 (Prescott) kernels on this AVX CPU: GEMM will be ~5x slow (OPENBLAS_CORETYPE=\(blas.requestedCoreType ?? "unset"))")
            }
        }
        #if !RECKIT_NATIVE_BUILD
        if CPUFeatures.host.avx2 {
            logger.warning("this binary targets baseline x86-64: SIMD kernels run 5-50x slower; build with scripts/build.sh (make build)")
        }
        #endif
        if KernelVariant.active == .reference {
            logger.notice("\(KernelVariant.environmentKey)=reference: running the plain reference kernels")
        }
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    // A number is never printed as a string: a value that could not be measured (NaN, an infinity) is null.
    let sentinel = "\u{1}reckit-non-finite\u{1}"
    enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: sentinel, negativeInfinity: sentinel, nan: sentinel)
    let text = String(decoding: try enc.encode(value), as: UTF8.self)
    print(text.replacingOccurrences(of: "\"\\u0001reckit-non-finite\\u0001\"", with: "null"))
}

/// A JSON report with the process's peak resident memory added as `peak_rss_mib` (VmHWM, MiB) beside its own keys.
struct WithPeakRSS<Report: Encodable>: Encodable {
    let report: Report
    init(_ report: Report) { self.report = report }
    private enum Keys: String, CodingKey { case peakRSSMiB = "peak_rss_mib" }
    func encode(to encoder: Encoder) throws {
        try report.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(Double(ProcessUsage.peakResidentKiB()) / 1024, forKey: .peakRSSMiB)
    }
}
