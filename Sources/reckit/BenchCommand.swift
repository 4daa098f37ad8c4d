import ArgumentParser
import Foundation
import RecKitBenchmarks
import RecKitCarbon
import RecKitData
import RecKitEmbeddings
import RecKitKernels

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that report domain units against ceilings measured in the same run.",
        subcommands: [BenchKernels.self, BenchData.self, BenchLoader.self, BenchTrain.self, BenchInfer.self, BenchServe.self, BenchTiered.self, BenchComm.self])
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

    @OptionGroup var carbon: CarbonOptions

    func run() throws {
        let log = CLILog.logger("reckit.bench")
        try CLILog.checkEnvironment(log)
        let run = try CarbonRun(command: "bench kernels", options: carbon, threads: common.resolvedThreads)
        defer { run.finish() }
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
        print("bf16: \(BF16Runtime.isAvailable ? "available" : "unavailable"), \(BF16Runtime.status)")
        for k in KernelRegistry.catalogue { print("  \(k.name.padding(toLength: 26, withPad: " ", startingAt: 0)) \(k.summary)") }
    }
}

struct BenchLoader: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loader", abstract: "Every batch of a shard dataset through the batch loader: rows/s and peak memory against its bound.")
    @Option(name: .long, help: "A shard dataset directory.")
    var data: String
    @Option(name: .customLong("batch-size"), help: "Batch size (default 2048).")
    var batchSize = 2048
    @Option(name: .customLong("shuffle-buffer"), help: "Rows held for shuffling (default 0).")
    var shuffleBuffer = 0
    @Flag(name: .long, help: "Also deduplicate each batch (RecD).")
    var dedup = false
    @OptionGroup var common: CommonOptions

    func run() throws {
        let r = try CLIError.onDataError(code: 65) { () throws(DataError) in
            do { return try LoaderBenchmark.run(directory: data, batchSize: max(1, batchSize), shuffleBuffer: max(0, shuffleBuffer), dedup: dedup) }
            catch let e as DataError { throw e } catch { throw DataError.invalidOptions("\(error)") }
        }
        if common.json { try printJSON(r); return }
        print(String(format: "%d rows in %d batches from %d shards: %.0f rows/s; peak RSS %.0f MiB (bound %.0f MiB: 4 shards of ≤ %.0f MiB file + columns, %d buffered rows, %.0f MiB baseline)",
                     r.rows, r.batches, r.shards, r.rowsPerSecond, r.peakRSSMiB, r.boundMiB, r.largestShardMiB, r.shuffleBuffer,
                     LoaderBenchmark.Report.baselineMiB))
    }
}

struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Criteo text → shards throughput vs a straightforward pandas script on the same file.")

    @Option(name: .customLong("size-mb"), help: "Size of the generated Criteo text (default 1024).")
    var sizeMB = 1024

    @Option(name: .long, help: "Use this Criteo TSV instead of generated text.")
    var input: String?

    @Option(name: .customLong("work-dir"), help: "Where the text and outputs go (default: a temp directory).")
    var workDir: String?

    @Option(name: .long, help: "Python interpreter (default benchmarks/python/.venv/bin/python, else python3).")
    var python: String?

    @Flag(name: .customLong("skip-python"), help: "Measure RecKit only.")
    var skipPython = false

    @OptionGroup var carbon: CarbonOptions

    @Flag(name: .long, help: "Print one JSON object at the end.")
    var json = false

    func run() throws {
        let log = CLILog.logger("reckit.bench")
        let run = try CarbonRun(command: "bench data", options: carbon, threads: ProcessInfo.processInfo.activeProcessorCount)
        defer { run.finish() }
        let scratch = try workDir ?? CLIError.onDataError(code: 73) { () throws(DataError) in
            try DatasetStaging.makeTemporaryDirectory(in: "/tmp", prefix: "reckit-bench-data")
        }
        defer { if workDir == nil { try? FileManager.default.removeItem(atPath: scratch) } }
        var c = DataBenchmark.Config(workDirectory: scratch)
        c.sizeMB = max(1, sizeMB)
        c.input = input
        c.python = python
        c.skipPython = skipPython
        let r = try DataBenchmark(config: c) { log.info("\($0)") }.run()
        if json { try printJSON(r); return }
        print(String(format: "input %.0f MB, %d rows: reckit %.1f MB/s, python %@ MB/s, ratio %@; peak RSS %.0f MiB",
                     r.inputMB, r.rows, r.convertMBPerS, r.pythonMBPerS.map { String(format: "%.1f", $0) } ?? "n/a",
                     r.ratio.map { String(format: "%.1f×", $0) } ?? "n/a", r.peakRSSMiB))
        if let e = r.pythonError { print("python: \(e)") }
    }
}

/// Options shared by `bench train` and `bench infer`.
struct ModelBenchOptions: ParsableArguments {
    @Option(name: .customLong("batch-size"), help: "Batch size (default 2048).")
    var batchSize = 2048

    @Option(name: .long, help: "MLP GEMM precision: fp32 or bf16 (mixed precision on oneDNN: AMX / AVX512-BF16).")
    var precision = Precision.fp32

    @Option(name: .long, help: "Id distribution: uniform or zipf.")
    var ids = "uniform"

    @Option(name: .customLong("table-cap"), help: "Cap every table's rows (smoke runs; default: the Kaggle sizes, 33.8M rows).")
    var tableCap: Int?

    @Option(name: .long, help: "Read the batches from this shard dataset (e.g. `data synth --session-size 8`) instead of random ids.")
    var data: String?

    @Option(name: .long, help: "RecD deduplication of each batch's features: on (features whose distinct bags save lookups), always (every feature), or off (default).")
    var dedup = "off"

    func config(train: Bool, threads: Int) throws -> ModelBenchmark.Config {
        try checkPrecision(precision)
        guard ids == "uniform" || ids == "zipf" else { throw ValidationError("--ids must be uniform or zipf") }
        var c = ModelBenchmark.Config(train: train, threads: threads)
        c.batch = max(1, batchSize)
        c.distribution = ids
        c.tableCap = tableCap
        c.precision = precision
        guard ["on", "off", "always"].contains(dedup) else { throw ValidationError("--dedup must be on, off or always") }
        c.dedup = dedup != "off"
        c.dedupPolicy = dedup == "always" ? .always : .auto
        c.dataDirectory = data
        return c
    }
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "DLRM Criteo-Kaggle training throughput with a per-phase breakdown.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var model: ModelBenchOptions
    @Option(name: .long, help: "rowwise_adagrad (embeddings) + adagrad (dense), the default; or sgd for both.")
    var optimizer = "rowwise_adagrad"
    @OptionGroup var distribution: DistributedFlags
    @Option(name: .long, help: "With --distributed: timed steps (default 50).")
    var steps = 50
    @Option(name: .long, help: "With --distributed: cost-model constants for the prediction (from `reckit bench comm --output`).")
    var constants: String?

    func run() throws {
        let log = CLILog.logger("reckit.bench")
        try CLILog.checkEnvironment(log)
        if distribution.distributed != nil {
            guard let data = model.data else { throw ValidationError("bench train --distributed needs --data (a shard dataset)") }
            try DistributedTrainBench.run(data: data, batchSize: model.batchSize, steps: steps, constants: constants, distribution: distribution,
                                          threads: common.threads, json: common.json, log: log)
            return
        }
        var c = try model.config(train: true, threads: common.resolvedThreads)
        guard optimizer == "sgd" || optimizer == "rowwise_adagrad" else { throw ValidationError("--optimizer must be rowwise_adagrad or sgd") }
        c.optimizer = optimizer
        let r = try ModelBenchmark(config: c) { log.info("\($0)") }.run()
        try ModelBenchSummary.emit(r, json: common.json)
    }
}

struct BenchInfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer", abstract: "DLRM Criteo-Kaggle inference throughput with a per-phase breakdown.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var model: ModelBenchOptions

    func run() throws {
        let log = CLILog.logger("reckit.bench")
        try CLILog.checkEnvironment(log)
        let r = try ModelBenchmark(config: try model.config(train: false, threads: common.resolvedThreads)) { log.info("\($0)") }.run()
        try ModelBenchSummary.emit(r, json: common.json)
    }
}

enum ModelBenchSummary {
    static func emit(_ r: ModelBenchmark.Report, json: Bool) throws {
        if json { try printJSON(r); return }
        print(String(format: "DLRM %@ (%@, %@ ids, batch %d, %d threads, %@): %.0f samples/s, %.2f ms/iter, %.2f J/1k samples (%@), peak RSS %.0f MiB",
                     r.mode, r.precision, r.distribution, r.batchSize, r.threads, r.optimizer, r.samplesPerSecond, r.msPerIter, r.joulesPer1k, r.energyMethod, r.peakRSSMiB))
        print(String(format: "  latency per batch: p50 %.3f ms, p99 %.3f ms", r.latencyP50Ms, r.latencyP99Ms))
        print(String(format: "  embeddings %.2f ms/iter (forward + backward), dedup %@ (factor %.2f, %d tables through their distinct bags)",
                     r.embeddingMs, r.dedup ? "on" : "off", r.dedupFactor, r.dedupTables))
        print(String(format: "  MLP GEMMs %.1f GFLOP/s%@", r.mlpGflops,
                     r.sgemmCeilingGflops.map { String(format: " = %.2f × the sgemm ceiling (%.1f GFLOP/s, same run)", r.mlpGflops / $0, $0) } ?? ""))
        for (k, v) in r.phases.sorted(by: { $0.value > $1.value }) {
            print("  " + k.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: "%7.2f ms/iter", v))
        }
    }
}

struct BenchServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "HTTP serving: QPS and p50/p99/p999 for single-row and 64-row requests, vs a FastAPI + PyTorch server.")
    @Option(name: .long, help: "Checkpoint to serve (default: a random-weight Criteo-layout DLRM, hash mode).")
    var model: String?
    @Option(name: .long, help: "Concurrent keep-alive connections (default 64).")
    var connections = 64
    @Option(name: .long, help: "Seconds per scenario after a 2 s warm-up (default 10).")
    var duration = 10.0
    @Option(name: .customLong("max-batch"), help: "Server max batch rows (default 256).")
    var maxBatch = 256
    @Option(name: .customLong("max-wait-us"), help: "Server max batching wait in µs (default 1000).")
    var maxWaitMicros = 1_000
    @Option(name: .long, help: "Python with fastapi, uvicorn and torch (default benchmarks/pytorch/.venv/bin/python).")
    var python: String?
    @Flag(name: .customLong("skip-python"), help: "Measure RecKit only.")
    var skipPython = false
    @Flag(name: .long, help: "Also measure single-row p99 while malformed requests and slow clients hit the server.")
    var hostile = false
    @Option(name: .customLong("hostile-connections"), help: "Well-formed connections in the hostile scenario (default 8).")
    var hostileConnections = 8
    @Option(name: .customLong("work-dir"), help: "Where the generated model goes (default: a temp directory).")
    var workDir: String?
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let log = CLILog.logger("reckit.bench")
        try CLILog.checkEnvironment(log)
        let dir = try workDir ?? CLIError.onDataError(code: 73) { () throws(DataError) in
            try DatasetStaging.makeTemporaryDirectory(in: "/tmp", prefix: "reckit-bench-serve")
        }
        var c = ServeBenchmark.Config(workDir: dir, peerScript: "benchmarks/pytorch/serve_peer.py")
        c.modelPath = model
        c.connections = max(1, connections)
        c.seconds = max(0.5, duration)
        c.maxBatch = max(1, maxBatch)
        c.maxWaitMicros = max(0, maxWaitMicros)
        c.threads = common.resolvedThreads
        c.hostile = hostile
        c.hostileConnections = max(1, hostileConnections)
        if !skipPython {
            let candidate = python ?? "benchmarks/pytorch/.venv/bin/python"
            if FileManager.default.isExecutableFile(atPath: candidate) && FileManager.default.fileExists(atPath: c.peerScript) {
                c.python = candidate
            }
        }
        let r = try await ServeBenchmark(config: c, logger: log).run()
        if workDir == nil { try? FileManager.default.removeItem(atPath: dir) }
        if common.json { try printJSON(r); return }
        for s in r.scenarios {
            let py = s.python.map { String(format: "python %.0f req/s, p99 %.2f ms", $0.qps, $0.p99Ms) } ?? "python n/a"
            print(String(format: "%@ (%d connections): reckit %.0f req/s (%.0f rows/s), p50 %.2f / p99 %.2f / p999 %.2f ms, %d errors; %@; ratio %@",
                         s.name, r.connections, s.reckit.qps, s.reckit.rowsPerSecond, s.reckit.p50Ms, s.reckit.p99Ms, s.reckit.p999Ms,
                         s.reckit.errors, py, s.qpsRatio.map { String(format: "%.1f×", $0) } ?? "n/a"))
        }
        if let e = r.pythonError { print("python: \(e)") }
        if let h = r.hostile {
            print(String(format: "hostile: %d malformed requests (%@) and %d slow clients; single-row p99 %.2f ms alone, %.2f ms under them (%.2f×), %d errors; server up: %@",
                         h.hostileSent, h.hostileStatuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "),
                         h.slowClients, h.p99UnloadedMs, h.p99LoadedMs, h.p99Ratio, h.errors, h.serverUp ? "yes" : "no"))
        }
    }
}
