import ArgumentParser
import Foundation
import RecKitBenchmarks
import RecKitKernels

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that report domain units against ceilings measured in the same run.",
        subcommands: [BenchKernels.self])
}

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "GEMM/MLP, embedding-bag forward and fused backward on DLRM-sized shapes vs this machine's ceilings.")

    @OptionGroup var common: CommonOptions

    @Flag(name: .long, help: "Small shapes (seconds): a smoke run, not a measurement.")
    var quick = false

    @Option(name: .long, help: "Embedding rows per table (default 1,000,000).")
    var rows: Int?

    @Option(name: .long, parsing: .upToNextOption, help: "Pooling factors to measure (default 1 20).")
    var pooling: [Int] = []

    func run() throws {
        let log = CLILog.logger("reckit.bench")
        try CLILog.checkEnvironment(log)
        var config = quick ? KernelBenchmark.Config.quick(threads: common.resolvedThreads)
            : KernelBenchmark.Config(threads: common.resolvedThreads)
        if let rows { config.rowsPerTable = rows }
        if !pooling.isEmpty { config.poolings = pooling }
        let report = try KernelBenchmark(config: config) { log.info("\($0)") }.run()
        if common.json {
            try printJSON(report)
        } else {
            print(KernelBenchmarkSummary.text(report))
        }
    }
}

struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels", abstract: "List the kernel registry and the variant in use.")

    func run() throws {
        print("variant: \(KernelVariant.active.rawValue) (set \(KernelVariant.environmentKey)=reference to force the reference twins)")
        if let blas = BLASRuntime.available {
            print("openblas: \(blas.coreName) (\(blas.coreTypeFromUser ? "OPENBLAS_CORETYPE from the user" : "chosen by RecKit")), \(blas.libraryPath)")
        }
        print("cpu: \(CPUFeatures.host.summary)")
        for k in KernelRegistry.catalogue { print("  \(k.name.padding(toLength: 26, withPad: " ", startingAt: 0)) \(k.summary)") }
    }
}
