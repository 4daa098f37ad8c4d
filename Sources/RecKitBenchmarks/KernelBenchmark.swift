import CBLAS
import Foundation
import RecKitCore
import RecKitKernels

/// `reckit bench kernels`: the kernels on DLRM-sized shapes against this machine's ceilings, measured in the
/// same run — raw `cblas_sgemm` (large square, and the MLP's own shapes) and a plain random-row gather.
public struct KernelBenchmark {
    public struct Config: Sendable {
        public var threads: Int
        public var batch = 2048
        public var tables = 26
        public var rowsPerTable = 1_000_000
        public var dim = 16
        public var poolings = [1, 20]
        public var zipfExponent = 1.05
        public var squareSize = 2048
        public var blocks = 5
        public var seed: UInt64 = 1

        public init(threads: Int) { self.threads = threads }

        /// Small shapes for tests and smoke runs (seconds, not minutes).
        public static func quick(threads: Int) -> Config {
            var c = Config(threads: threads)
            c.batch = 256; c.tables = 4; c.rowsPerTable = 50_000; c.squareSize = 512; c.blocks = 3
            return c
        }
    }

    public let config: Config
    let log: (String) -> Void

    public init(config: Config, log: @escaping (String) -> Void) {
        self.config = config
        self.log = log
    }

    public func run() throws -> KernelBenchmarkReport {
        let blas = try BLASRuntime.shared.get()
        let pool = ThreadPool(threads: config.threads)
        var rng = SeededRandom(seed: config.seed)
        let started = BenchTiming.now()

        // 1. Ceiling: large square sgemm with OpenBLAS's own threading.
        let s = config.squareSize
        let peak = Ceilings.sgemm(blas, size: s, threads: config.threads, blocks: config.blocks, rng: &rng)
        log(String(format: "sgemm %dx%dx%d (OpenBLAS %@, %d threads): %.1f GFLOP/s", s, s, s, blas.coreName, config.threads, peak))

        // 2. MLPs (bottom 13-512-256-64-16, top 367-512-256-1), forward + backward, vs the same raw GEMMs.
        let bottom = BenchMLP(sizes: [13, 512, 256, 64, 16], batch: config.batch, lastActivation: .relu, gradInputOfFirst: false, rng: &rng)
        let top = BenchMLP(sizes: [367, 512, 256, 1], batch: config.batch, lastActivation: .identity, gradInputOfFirst: true, rng: &rng)
        for l in [bottom.layers.last!, top.layers.last!] {
            for i in 0..<l.gradOutput.count { l.gradOutput.pointer[i] = rng.nextUniform() - 0.5 }
        }
        let mlpFlops = bottom.flops + top.flops
        blas.setThreads(config.threads)
        let rawTimes = BenchTiming.measure(blocks: config.blocks) { bottom.rawGEMMs(blas); top.rawGEMMs(blas) }
        blas.setThreads(1)
        var failure: Error?
        let mlpTimes = BenchTiming.measure(blocks: config.blocks) {
            do {
                try bottom.forward(pool: pool); try top.forward(pool: pool)
                try top.backward(pool: pool); try bottom.backward(pool: pool)
            } catch { failure = error }
        }
        if let failure { throw failure }
        let rawGF = mlpFlops / BenchTiming.median(rawTimes) / 1e9
        let mlpGF = mlpFlops / BenchTiming.median(mlpTimes) / 1e9
        log(String(format: "MLP fwd+bwd batch %d: %.1f GFLOP/s (raw sgemm same shapes %.1f)", config.batch, mlpGF, rawGF))

        // 3. Embedding bags over `tables` × `rowsPerTable` × `dim`.
        let emb = try EmbeddingBench(config: config, pool: pool, log: log).run()

        // Headline: the uniform configuration with the largest pooling — it gathers exactly the rows the ceiling
        // gathers, so the ratio compares like with like. The minimum over uniform configurations is reported too.
        let uniform = emb.configs.filter { $0.distribution == "uniform" }
        let headline = uniform.max { $0.pooling < $1.pooling }
        let forwardUniform = headline?.forwardGBps ?? .nan
        let backwardUniform = headline?.backwardGBps ?? .nan
        return KernelBenchmarkReport(
            machine: MachineInfo.current(isa: CPUFeatures.host.summary, openblasCore: blas.coreName),
            threads: config.threads, batchSize: config.batch, kernelVariant: KernelVariant.active.rawValue,
            sgemmPeakGflops: peak, mlpGflops: mlpGF, rawGemmGflops: rawGF,
            mlpMsPerIter: BenchTiming.median(mlpTimes) * 1e3, rawGemmMsPerIter: BenchTiming.median(rawTimes) * 1e3,
            mlpVsRawGemm: mlpGF / rawGF, mlpVsPeak: mlpGF / peak,
            gatherCeilingGBps: emb.gatherGBps, embedding: emb.configs,
            embeddingForwardRatio: forwardUniform / emb.gatherGBps,
            embeddingBackwardRatio: backwardUniform / emb.gatherGBps,
            embeddingForwardRatioMin: (uniform.map(\.forwardGBps).min() ?? .nan) / emb.gatherGBps,
            embeddingBackwardRatioMin: (uniform.map(\.backwardGBps).min() ?? .nan) / emb.gatherGBps,
            peakRSSMiB: BenchTiming.peakRSSMiB(), seconds: BenchTiming.now() - started)
    }
}

/// The JSON of `reckit bench kernels --json`.
public struct KernelBenchmarkReport: Codable, Sendable {
    public var machine: MachineInfo
    public var threads: Int
    public var batchSize: Int
    public var kernelVariant: String
    public var sgemmPeakGflops: Double
    public var mlpGflops: Double
    public var rawGemmGflops: Double
    public var mlpMsPerIter: Double
    public var rawGemmMsPerIter: Double
    /// MLP forward+backward GFLOP/s ÷ raw cblas_sgemm on the same shapes.
    public var mlpVsRawGemm: Double
    /// MLP forward+backward GFLOP/s ÷ large-square sgemm.
    public var mlpVsPeak: Double
    public var gatherCeilingGBps: Double
    public var embedding: [EmbeddingBenchResult]
    /// Forward GB/s ÷ the random-gather ceiling, uniform ids at the largest pooling (the ceiling's own rows).
    public var embeddingForwardRatio: Double
    /// Backward GB/s ÷ the random-gather ceiling, same configuration.
    public var embeddingBackwardRatio: Double
    /// The same ratios at the worst uniform configuration (pooling 1: one output row written per row read).
    public var embeddingForwardRatioMin: Double
    public var embeddingBackwardRatioMin: Double
    public var peakRSSMiB: Double
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case machine, threads, embedding, seconds
        case batchSize = "batch_size"
        case kernelVariant = "kernel_variant"
        case sgemmPeakGflops = "sgemm_peak_gflops"
        case mlpGflops = "mlp_gflops"
        case rawGemmGflops = "raw_gemm_gflops"
        case mlpMsPerIter = "mlp_ms_per_iter"
        case rawGemmMsPerIter = "raw_gemm_ms_per_iter"
        case mlpVsRawGemm = "mlp_vs_raw_gemm"
        case mlpVsPeak = "mlp_vs_peak"
        case gatherCeilingGBps = "gather_ceiling_gbps"
        case embeddingForwardRatio = "embedding_forward_ratio"
        case embeddingBackwardRatio = "embedding_backward_ratio"
        case embeddingForwardRatioMin = "embedding_forward_ratio_min"
        case embeddingBackwardRatioMin = "embedding_backward_ratio_min"
        case peakRSSMiB = "peak_rss_mb"
    }
}
