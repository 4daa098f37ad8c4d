import Foundation
import RecKitCore
import RecKitData
import RecKitEmbeddings
import RecKitKernels
import RecKitModels
import RecKitTiered
import RecKitTraining

/// `reckit bench tiered`: DLRM (Criteo-Kaggle architecture) trained on synthetic Zipf ids with its 26 tables scaled to
/// `tableGiB` of rows and row-wise Adagrad state, first through a cache of `cacheMiB` over files in `directory`, then —
/// where it fits in RAM — the same model in RAM, in one run, on the same batches.
///
/// Batches are drawn on the fly (Zipf over each table's rows, ids scattered by the sampler's coprime multiplier, as a
/// hash would scatter them); drawing them is not timed. The tiered run first trains until every tiered table's cache
/// is full (or `warmupSeconds` pass) so the measurement sees evictions and write-backs, then times `steps` steps;
/// the in-RAM run times the same number of steps after 20 of warm-up. With `placement`, access statistics are
/// counted on `statsBatches` batches from another seed and planned with `TierPlanner` before the tiered run.
public enum TieredBenchmark {
    public struct Config: Sendable {
        public var tableGiB: Double = 8
        public var cacheMiB: Int = 2048
        public var directory: String
        public var zipf = 1.05
        public var batch = 2048
        public var steps = 200
        public var warmupSeconds = 120.0
        public var threads = 2
        public var policy = CachePolicy.clock
        public var io = TierIOEngine.uring
        public var placement = false
        public var statsBatches = 200
        public var skipInRAM = false
        public var seed: UInt64 = 1
        public init(directory: String) { self.directory = directory }
    }

    public struct Report: Codable, Sendable {
        public var tableGiB: Double
        public var cacheMiB: Int
        public var tableRows: Int
        public var tieredTables: Int
        public var policy: String
        public var io: String
        public var placement: Bool
        public var expectedHitRate: Double?
        public var hitRate: Double
        public var samplesPerSecond: Double
        public var inRAMSamplesPerSecond: Double?
        public var ratio: Double?
        public var peakRSSMiB: Double
        public var inRAMPeakRSSMiB: Double?
        public var diskReadMiBs: Double
        public var diskWriteMiBs: Double
        /// Per step, ms: lookup (slot assignment), fetch (reads on the training thread), write-back, compute (the rest
        /// of the step), and prefetch (reads on the background queue, overlapped).
        public var phaseMs: [String: Double]
        public var warmupSteps: Int
        public var warmupSeconds: Double
        public var fillSeconds: Double
        public var machine: MachineInfo
        public var note: String?

        enum CodingKeys: String, CodingKey {
            case policy, io, placement, ratio, note, machine
            case tableGiB = "table_gib", cacheMiB = "cache_mib", tableRows = "table_rows", tieredTables = "tiered_tables"
            case expectedHitRate = "expected_hit_rate", hitRate = "hit_rate", samplesPerSecond = "samples_per_s"
            case inRAMSamplesPerSecond = "in_ram_samples_per_s", peakRSSMiB = "peak_rss_mib", inRAMPeakRSSMiB = "in_ram_peak_rss_mib"
            case diskReadMiBs = "disk_read_mib_s", diskWriteMiBs = "disk_write_mib_s", phaseMs = "phase_ms"
            case warmupSteps = "warmup_steps", warmupSeconds = "warmup_seconds", fillSeconds = "fill_seconds"
        }
    }

    /// The 26 Kaggle tables scaled so rows × (4·16 + 4) bytes (row + row-wise Adagrad) total `gib`.
    public static func tableSizes(gib: Double) -> [Int] {
        let kaggle = SynthOptions.kaggleCardinalities
        let record = 4 * 16 + 4
        let scale = gib * Double(1 << 30) / Double(kaggle.reduce(0, +) * record)
        return kaggle.map { max(2, Int((Double($0) * scale).rounded())) }
    }

    /// Draws batches of Zipf ids for `tables`.
    struct Stream {
        var rng: SeededRandom
        let samplers: [ZipfSampler]
        let batch: Int
        init(tables: [Int], zipf: Double, batch: Int, seed: UInt64) {
            rng = SeededRandom(seed: seed)
            samplers = tables.map { ZipfSampler(n: $0, exponent: zipf) }
            self.batch = batch
        }
        mutating func next() -> Batch {
            var dense = [Float](repeating: 0, count: batch * 13)
            for i in dense.indices { dense[i] = rng.nextUniform() }
            let values = samplers.map { s in (0..<batch).map { _ in Int64(s.nextID(using: &rng)) } }
            let labels = (0..<batch).map { _ in Float(rng.nextBelow(4) == 0 ? 1 : 0) }
            return Batch(labels: labels, dense: dense, sparse: KeyedJaggedTensor(keys: samplers.indices.map { "C\($0 + 1)" }, oneHot: values))
        }
    }

    public static func run(_ c: Config, log: (String) -> Void) throws -> Report {
        let tables = tableSizes(gib: c.tableGiB)
        let config = DLRMConfig.criteoKaggle(tableSizes: tables)
        let pool = ThreadPool(threads: c.threads)
        var options = TierOptions(directory: c.directory, cacheBytes: c.cacheMiB << 20)
        options.policy = c.policy
        options.io = c.io
        options.minimumSlots = max(options.minimumSlots, 2 * c.batch)
        var expected: Double?
        if c.placement {
            log("placement: counting accesses on \(c.statsBatches) batches of another seed")
            var history = Stream(tables: tables, zipf: c.zipf, batch: c.batch, seed: c.seed ^ 0x5747)
            var counts = tables.map { [UInt32](repeating: 0, count: $0) }
            for _ in 0..<c.statsBatches {
                let b = history.next()
                for t in tables.indices { for id in b.sparse.values[t] { counts[t][Int(id)] &+= 1 } }
            }
            let stats = RowAccessStats(tables: tables.indices.map { (t: Int) -> RowAccessStats.Table in
                var pairs: [(Int64, UInt32)] = []
                for (i, n) in counts[t].enumerated() where n > 0 { pairs.append((Int64(i), n)) }
                pairs.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
                return RowAccessStats.Table(name: "C\(t + 1)", rows: tables[t], lookups: c.statsBatches * c.batch, seen: pairs.count,
                                            ids: pairs.map(\.0), counts: pairs.map(\.1))
            })
            counts = []
            var records: [String: Int] = [:], features: [String: String] = [:]
            for t in tables.indices { records["embeddings.C\(t + 1)"] = 68; features["embeddings.C\(t + 1)"] = "C\(t + 1)" }
            var planner = TierPlanner(cacheBytes: options.cacheBytes, recordBytes: records, features: features)
            planner.minimumSlots = options.minimumSlots
            var plan = try planner.plan(stats, statsPath: "(in memory)")
            let byName = Dictionary(stats.tables.map { ($0.name, $0) }, uniquingKeysWith: { (a: RowAccessStats.Table, _: RowAccessStats.Table) in a })
            for i in plan.tables.indices where plan.tables[i].mode == .tiered {
                plan.tables[i].pinnedIDs = Array(byName[plan.tables[i].feature]!.ids.prefix(plan.tables[i].pinnedRows))
            }
            expected = plan.expectedHitRate
            options.placement = plan
            log(String(format: "placement: expected hit rate %.4f from resident tables and pinned rows", plan.expectedHitRate))
        }
        log(String(format: "tiered: %.1f GiB of rows + row-wise Adagrad (%d rows) in %@, cache %d MiB (%@, %@ I/O)",
                   c.tableGiB, tables.reduce(0, +), c.directory, c.cacheMiB, c.policy.rawValue, c.io.rawValue))
        let fillStart = Date()
        let provider = try TieredStorageProvider(options: options, tables: config.embeddingTables, optimizer: .rowWiseAdagrad)
        let tiered = try DLRM(config: config, initialization: .random(seed: c.seed), sparseOptimizer: .rowWiseAdagrad, storage: provider)
        let fillSeconds = Date().timeIntervalSince(fillStart)
        log(Tiering.describe(provider) + String(format: "; files written in %.1f s", fillSeconds))
        var stream = Stream(tables: tables, zipf: c.zipf, batch: c.batch, seed: c.seed)
        let run = try timedRun(tiered, stream: &stream, config: c, pool: pool, provider: provider, log: log)
        let peak = BenchTiming.peakRSSMiB()
        let s = run.stats
        let steps = Double(max(run.steps, 1))
        var phases: [String: Double] = [
            "lookup": Double(s.lookupNanoseconds) / 1e6 / steps,
            "fetch": Double(s.fetchNanoseconds) / 1e6 / steps,
            "write_back": Double(s.writeBackNanoseconds) / 1e6 / steps,
            "prefetch": Double(s.prefetchNanoseconds) / 1e6 / steps,
            "background_write": Double(s.backgroundWriteNanoseconds) / 1e6 / steps,
        ]
        phases["compute"] = max(0, run.seconds * 1e3 / steps - phases["lookup"]! - phases["fetch"]! - phases["write_back"]!)
        let sps = Double(run.steps * c.batch) / run.seconds
        log(String(format: "tiered: %.0f samples/s, hit rate %.4f, read %.1f MiB/s, written %.1f MiB/s", sps, s.hitRate,
                   Double(run.bytesRead) / 1_048_576 / run.seconds, Double(run.bytesWritten) / 1_048_576 / run.seconds))
        var report = Report(tableGiB: c.tableGiB, cacheMiB: c.cacheMiB, tableRows: tables.reduce(0, +), tieredTables: provider.storages.count,
                            policy: c.policy.rawValue, io: provider.ioSummary.engine.rawValue, placement: c.placement, expectedHitRate: expected,
                            hitRate: s.hitRate, samplesPerSecond: sps, inRAMSamplesPerSecond: nil, ratio: nil, peakRSSMiB: peak,
                            inRAMPeakRSSMiB: nil, diskReadMiBs: Double(run.bytesRead) / 1_048_576 / run.seconds,
                            diskWriteMiBs: Double(run.bytesWritten) / 1_048_576 / run.seconds, phaseMs: phases, warmupSteps: run.warmupSteps,
                            warmupSeconds: run.warmupSeconds, fillSeconds: fillSeconds,
                            machine: MachineInfo.current(isa: CPUFeatures.host.summary, openblasCore: BLASRuntime.available?.coreName),
                            note: provider.ioSummary.note.isEmpty ? nil : provider.ioSummary.note)
        // In RAM, where the tables fit (with room to spare: half the memory the system reports available).
        let bytes = Double(tables.reduce(0, +) * 68)
        if c.skipInRAM {
            report.note = [report.note, "in-RAM run skipped (--skip-in-ram)"].compactMap { $0 }.joined(separator: "; ")
        } else if bytes < 0.5 * availableMemoryBytes() {
            log("in RAM: the same model, \(c.steps) steps after 20 of warm-up")
            let ram = try DLRM(config: config, initialization: .random(seed: c.seed), sparseOptimizer: .rowWiseAdagrad)
            var again = Stream(tables: tables, zipf: c.zipf, batch: c.batch, seed: c.seed)
            var quick = c
            quick.warmupSeconds = 0
            let r = try timedRun(ram, stream: &again, config: quick, pool: pool, provider: nil, log: log)
            let inRAM = Double(r.steps * c.batch) / r.seconds
            report.inRAMSamplesPerSecond = inRAM
            report.ratio = sps / inRAM
            report.inRAMPeakRSSMiB = BenchTiming.peakRSSMiB()
            log(String(format: "in RAM: %.0f samples/s; tiered / in RAM = %.3f", inRAM, sps / inRAM))
        } else {
            report.note = [report.note, String(format: "in-RAM run skipped: %.1f GiB of tables do not fit in half of the %.1f GiB available",
                                               bytes / 1_073_741_824, availableMemoryBytes() / 1_073_741_824)].compactMap { $0 }.joined(separator: "; ")
        }
        return report
    }

    struct Run { var steps: Int; var seconds: Double; var stats: TierStats; var bytesRead: Int; var bytesWritten: Int; var warmupSteps: Int; var warmupSeconds: Double }

    /// Warm-up (until the caches are full, or 20 steps without a cache), then `config.steps` timed steps.
    static func timedRun(_ model: DLRM, stream: inout Stream, config c: Config, pool: ThreadPool, provider: TieredStorageProvider?,
                         log: (String) -> Void) throws -> Run {
        let workspace = model.makeWorkspace(maxBatch: c.batch)
        let dense = DenseOptimizer(kind: .adagrad)
        try dense.prepare(model.denseParameters)
        let update = SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 0.01)
        var next = stream.next()
        func step() throws -> Double {
            let b = next
            next = stream.next()
            let t0 = DispatchTime.now().uptimeNanoseconds
            try model.forward(b, workspace: workspace, mode: .training, pool: pool)
            model.prefetch(next)
            _ = try BinaryCrossEntropy.loss(workspace, labels: b.labels)
            model.zeroGrad()
            try model.backward(workspace: workspace, pool: pool)
            try model.applySparseUpdate(update, workspace: workspace, pool: pool)
            try dense.apply(model.denseParameters, lr: 0.01, pool: pool)
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
        let warmStart = Date()
        var warm = 0
        var lastLog = Date()
        while true {
            let full = provider.map { $0.storages.allSatisfy(\.isFull) } ?? true
            let elapsed = Date().timeIntervalSince(warmStart)
            if (full && warm >= 20) || (provider != nil && elapsed > c.warmupSeconds && warm >= 20) { break }
            _ = try step()
            warm += 1
            if let provider, Date().timeIntervalSince(lastLog) > 10 {
                lastLog = Date()
                let filled = provider.storages.reduce(0) { $0 + $1.occupied }, capacity = provider.storages.reduce(0) { $0 + $1.capacity }
                log(String(format: "warm-up: %d steps, cache %.1f%% full, hit rate %.4f", warm, 100 * Double(filled) / Double(max(capacity, 1)), provider.stats.hitRate))
            }
        }
        let warmSeconds = Date().timeIntervalSince(warmStart)
        let before = provider?.stats ?? TierStats()
        let readBefore = provider?.ioSummary.bytesRead ?? 0, writtenBefore = provider?.ioSummary.bytesWritten ?? 0
        var seconds = 0.0
        for _ in 0..<c.steps { seconds += try step() }
        var s = provider?.stats ?? TierStats()
        s.lookups -= before.lookups; s.misses -= before.misses; s.prefetched -= before.prefetched; s.prefetchHits -= before.prefetchHits
        s.writtenBack -= before.writtenBack; s.lookupNanoseconds -= before.lookupNanoseconds; s.fetchNanoseconds -= before.fetchNanoseconds
        s.writeBackNanoseconds -= before.writeBackNanoseconds; s.prefetchNanoseconds -= before.prefetchNanoseconds
        s.backgroundWriteNanoseconds -= before.backgroundWriteNanoseconds
        return Run(steps: c.steps, seconds: seconds, stats: s, bytesRead: (provider?.ioSummary.bytesRead ?? 0) - readBefore,
                   bytesWritten: (provider?.ioSummary.bytesWritten ?? 0) - writtenBefore, warmupSteps: warm, warmupSeconds: warmSeconds)
    }

    /// MemAvailable from /proc/meminfo, bytes (physical memory when absent).
    static func availableMemoryBytes() -> Double {
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kib = Double(line.split(whereSeparator: { $0 == " " }).dropFirst().first ?? "") {
            return kib * 1024
        }
        return Double(ProcessInfo.processInfo.physicalMemory)
    }
}
