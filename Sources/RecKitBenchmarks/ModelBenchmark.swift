import Foundation
import RecKitCarbon
import RecKitCore
import RecKitData
import RecKitEmbeddings
import RecKitKernels
import RecKitModels
import RecKitTraining

/// `reckit bench train` / `reckit bench infer`: the DLRM Criteo-Kaggle configuration (26 tables with the Kaggle
/// cardinalities, dim 16, bottom 13-512-256-64-16, top 367-512-256-1, dot interaction) on synthetic one-hot
/// batches with uniform or Zipf ids; samples/s (median of timed blocks after warm-up), ms per phase, peak RSS and
/// joules per 1,000 samples measured over the timed blocks.
public struct ModelBenchmark {
    public struct Config: Sendable {
        public var train: Bool
        public var threads: Int
        public var batch = 2048
        public var distribution = "uniform"
        public var zipfExponent = 1.05
        /// Caps every table (smoke runs); nil = the real Kaggle sizes (33.8M rows).
        public var tableCap: Int?
        public var optimizer = "rowwise_adagrad"
        public var precision = Precision.fp32
        public var blocks = 5
        public var seed: UInt64 = 1
        /// Read the batches from this shard dataset (its cardinalities, e.g. `data synth --session-size 8`) instead of
        /// random ids.
        public var dataDirectory: String?
        /// RecD: deduplicate each batch's features before the embedding lookups.
        public var dedup = false
        /// Which deduplicated features take their distinct bags (`--dedup on`: auto; `always`).
        public var dedupPolicy = DedupPolicy.auto
        public init(train: Bool, threads: Int) { self.train = train; self.threads = threads }
    }

    public struct Report: Codable, Sendable {
        public var mode: String
        public var samplesPerSecond: Double
        public var msPerIter: Double
        public var phases: [String: Double]
        public var peakRSSMiB: Double
        public var joulesPer1k: Double
        public var energyMethod: String
        public var batchSize: Int
        public var threads: Int
        public var precision: String
        public var distribution: String
        public var optimizer: String
        public var tableRows: Int
        /// MLP GEMM work (forward, + backward when training) per second of the MLP phases.
        public var mlpGflops: Double
        /// Per-iteration (one batch) latency percentiles over a separate run of up to 1.5 s / 3,000 iterations.
        public var latencyP50Ms: Double
        public var latencyP99Ms: Double
        /// Large-square sgemm (OpenBLAS, same threads) measured in the same run.
        public var sgemmCeilingGflops: Double?
        public var mlpVsSgemmCeiling: Double?
        public var machine: MachineInfo
        public var dedup: Bool
        /// Σ B / Σ U over the deduplicated features of the measured batches (1 without dedup).
        public var dedupFactor: Double
        /// Tables looked up through their distinct bags in the last measured batch (the policy's choice).
        public var dedupTables: Int
        /// Embedding forward + backward (with the sparse optimizer), ms per batch.
        public var embeddingMs: Double
        /// With bf16: the layers the probe put in bf16, and bf16 GEMMs that fell back to the reference loops.
        public var bf16Layers: [String]
        public var bf16FallbackGEMMs: Int

        enum CodingKeys: String, CodingKey {
            case mode, phases, threads, precision, distribution, optimizer, machine
            case samplesPerSecond = "samples_per_s"
            case msPerIter = "ms_per_iter"
            case peakRSSMiB = "peak_rss_mb"
            case joulesPer1k = "joules_per_1k"
            case energyMethod = "energy_method"
            case batchSize = "batch_size"
            case tableRows = "table_rows"
            case mlpGflops = "mlp_gflops"
            case latencyP50Ms = "latency_p50_ms"
            case latencyP99Ms = "latency_p99_ms"
            case sgemmCeilingGflops = "sgemm_ceiling_gflops"
            case mlpVsSgemmCeiling = "mlp_vs_sgemm_ceiling"
            case dedup
            case dedupFactor = "dedup_factor"
            case dedupTables = "dedup_tables"
            case embeddingMs = "embedding_ms"
            case bf16Layers = "bf16_layers"
            case bf16FallbackGEMMs = "bf16_fallback_gemms"
        }
    }

    public let config: Config
    let log: (String) -> Void
    public init(config: Config, log: @escaping (String) -> Void) { self.config = config; self.log = log }

    public func run() throws -> Report {
        let c = config
        var batches: [Batch] = []
        var tables = SynthOptions.kaggleCardinalities.map { n in c.tableCap.map { min(n, $0) } ?? n }
        if let dir = c.dataDirectory {
            // Eight batches of the dataset (its own cardinalities), deduplicated by the loader when asked.
            let ds = try ShardDataset(directory: dir)
            tables = ds.schema.sparse.map(\.cardinality)
            var lo = LoaderOptions(batchSize: c.batch)
            lo.dedup = c.dedup
            lo.dropLast = true
            let loader = try BatchLoader(dataset: ds, options: lo)
            while batches.count < 8, let b = loader.next() { batches.append(b) }
            if let e = loader.error { throw e }
            guard !batches.isEmpty, ds.schema.denseNames.count == 13 else {
                throw DataError.invalidOptions("\(dir): needs ≥ \(c.batch) rows with 13 dense features (a `reckit data synth` dataset)")
            }
        }
        let dlrm = DLRMConfig.criteoKaggle(tableSizes: tables)
        var ceilingRNG = SeededRandom(seed: c.seed ^ 0xCE)
        let ceiling = BLASRuntime.available.map {
            Ceilings.sgemm($0, size: 2048, threads: c.threads, blocks: c.blocks, rng: &ceilingRNG)
        }
        if let ceiling { log(String(format: "sgemm ceiling (2048³, OpenBLAS, %d threads): %.1f GFLOP/s", c.threads, ceiling)) }
        log("building DLRM: \(tables.reduce(0, +)) embedding rows (\(String(format: "%.2f", Double(tables.reduce(0, +) * 64) / 1e9)) GB)")
        let sgd = c.optimizer == "sgd"
        let model = try DLRM(config: dlrm, initialization: .random(seed: c.seed), sparseOptimizer: c.train ? (sgd ? .sgd : .rowWiseAdagrad) : nil)
        model.precision = c.precision
        model.embeddings.dedupPolicy = c.dedupPolicy
        // Inference serves constant weights: pack them once, as `reckit serve` does (training repacks per step).
        if !c.train { model.prepareForInference() }
        let workspace = model.makeWorkspace(maxBatch: c.batch)
        let pool = ThreadPool(threads: c.threads)
        let plan = c.precision == .bf16 ? model.planPrecision(batch: c.batch, training: c.train, pool: pool) : []
        if !plan.isEmpty { log("mixed precision (probed on this CPU): " + describePrecisionPlan(plan)) }
        let fallbacksBefore = BF16Runtime.fallbackGEMMs
        let dense = DenseOptimizer(kind: sgd ? .sgd : .adagrad)
        let update = SparseUpdate(optimizer: sgd ? .sgd : .rowWiseAdagrad, learningRate: 0.01)
        if batches.isEmpty {
            // A cycle of batches touching well over the L3's worth of rows.
            var rng = SeededRandom(seed: c.seed ^ 0xB)
            let samplers = c.distribution == "zipf" ? tables.map { ZipfSampler(n: $0, exponent: c.zipfExponent) } : []
            batches = (0..<8).map { _ in
                let d = (0..<(c.batch * 13)).map { _ in Float(rng.nextUniform() * 4) }
                let values = tables.enumerated().map { t, n in
                    (0..<c.batch).map { _ in Int64(samplers.isEmpty ? rng.nextBelow(n) : samplers[t].nextID(using: &rng)) }
                }
                let labels = (0..<c.batch).map { _ in Float(rng.nextBelow(4) == 0 ? 1 : 0) }
                let kjt = KeyedJaggedTensor(keys: tables.indices.map { "C\($0 + 1)" }, oneHot: values)
                return Batch(labels: labels, dense: d, sparse: kjt,
                             deduped: c.dedup ? (0..<tables.count).map { DedupedFeature.dedup(kjt, feature: $0) } : nil)
            }
        }
        let dedupFactor = batches.compactMap(\.dedupFactor).reduce(0, +) / Double(max(batches.compactMap(\.dedupFactor).count, 1))
        var next = 0
        var failure: Error?
        func iteration() {
            let b = batches[next % batches.count]
            next += 1
            do {
                try model.forward(b, workspace: workspace, mode: c.train ? .training : .inference, pool: pool)
                if c.train {
                    _ = try BinaryCrossEntropy.loss(workspace, labels: b.labels)
                    model.zeroGrad()
                    try model.backward(workspace: workspace, pool: pool)
                    try model.applySparseUpdate(update, workspace: workspace, pool: pool)
                    let t0 = BenchTiming.now()
                    try dense.apply(model.denseParameters, lr: 0.01, pool: pool)
                    if workspace.phaseClock != nil { workspace.phaseSeconds["optimizer", default: 0] += BenchTiming.now() - t0 }
                }
            } catch { failure = error }
        }
        for _ in 0..<3 { iteration() }
        workspace.phaseClock = { BenchTiming.now() }
        workspace.phaseSeconds = [:]
        let tracker = try CarbonTracker(command: c.train ? "bench train" : "bench infer", model: "dlrm", coresUsed: c.threads)
        try tracker.start()
        let iterationsBefore = next
        let times = BenchTiming.measure(blocks: c.blocks, warmup: 0, minBlockSeconds: 0.5) { iteration() }
        let iterations = next - iterationsBefore
        let energy = try tracker.finish(samples: iterations * c.batch, writeLedger: false)
        if let failure { throw failure }
        let perIter = BenchTiming.median(times)
        workspace.phaseClock = nil
        var latencies: [Double] = []
        let latencyStart = BenchTiming.now()
        while latencies.count < 3000 && (latencies.count < 20 || BenchTiming.now() - latencyStart < 1.5) {
            let t0 = BenchTiming.now()
            iteration()
            latencies.append(BenchTiming.now() - t0)
        }
        if let failure { throw failure }
        let phases = workspace.phaseSeconds.mapValues { $0 * 1e3 / Double(max(iterations, 1)) }
        let mlpMs = ["bottom_mlp", "top_mlp", "bottom_mlp_backward", "top_mlp_backward"].reduce(0) { $0 + (phases[$1] ?? 0) }
        let mlpGF = Self.mlpFlops(dlrm, batch: c.batch, train: c.train) / (mlpMs / 1e3) / 1e9
        let embeddingMs = (phases["embedding_forward"] ?? 0) + (phases["embedding_backward_optimizer"] ?? 0)
        log(String(format: "%@: %.0f samples/s, %.2f ms/iter", c.train ? "train" : "infer", Double(c.batch) / perIter, perIter * 1e3))
        return Report(mode: c.train ? "train" : "infer", samplesPerSecond: Double(c.batch) / perIter, msPerIter: perIter * 1e3,
                      phases: phases,
                      peakRSSMiB: BenchTiming.peakRSSMiB(), joulesPer1k: energy.joulesPer1kSamples ?? .nan,
                      energyMethod: energy.method.rawValue, batchSize: c.batch, threads: c.threads, precision: c.precision.rawValue,
                      distribution: c.dataDirectory == nil ? c.distribution : "data", optimizer: sgd ? "sgd" : "rowwise_adagrad+adagrad",
                      tableRows: tables.reduce(0, +), mlpGflops: mlpGF,
                      latencyP50Ms: BenchTiming.quantile(latencies, 0.5) * 1e3, latencyP99Ms: BenchTiming.quantile(latencies, 0.99) * 1e3, sgemmCeilingGflops: ceiling,
                      mlpVsSgemmCeiling: ceiling.map { mlpGF / $0 }, machine: MachineInfo.current(isa: CPUFeatures.host.summary, openblasCore: BLASRuntime.available?.coreName),
                      dedup: c.dedup, dedupFactor: c.dedup ? dedupFactor : 1,
                      dedupTables: workspace.embeddingWorkspaces.reduce(0) { $0 + $1.dedupedTables }, embeddingMs: embeddingMs,
                      bf16Layers: plan.filter { $0.precision == .bf16 }.map(\.layer), bf16FallbackGEMMs: BF16Runtime.fallbackGEMMs - fallbacksBefore)
    }

    /// GEMM FLOPs of both MLPs per batch: 2·B·K·N per layer forward; backward adds dW (same) and dX (same, except
    /// the bottom MLP's first layer, whose input gradient is not needed).
    static func mlpFlops(_ c: DLRMConfig, batch: Int, train: Bool) -> Double {
        func stack(_ sizes: [Int], needsInputGrad: Bool) -> Double {
            var total = 0.0
            for i in 0..<(sizes.count - 1) {
                let f = 2 * Double(batch) * Double(sizes[i]) * Double(sizes[i + 1])
                total += train ? f * ((i > 0 || needsInputGrad) ? 3 : 2) : f
            }
            return total
        }
        return stack([c.denseCount] + c.bottomHidden + [c.embeddingDim], needsInputGrad: false)
            + stack([c.interactionWidth] + c.topHidden + [1], needsInputGrad: true)
    }
}
