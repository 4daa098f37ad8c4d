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
/// is full (or `warmupSeconds` pass) so the measurement sees evictions and write-backs, then times `steps` steps
/// alone (its peak RSS, hit rate and phases come from these). Where the tables fit in RAM, the same model is then
/// built in RAM, warmed 20 steps, and the two are timed in alternating rounds (`rounds` × `steps`/`rounds` steps
/// each, in RAM first): `samples_per_s`, `in_ram_samples_per_s` and `ratio` come from those rounds, so a host that
/// changes speed during the run moves both sides alike (`round_ratios` lists each round's). With `placement`, access statistics are
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
        public var statsBatches = 10_000
        /// The planner's `minimumCount`: rows seen fewer times in the statistics are never pinned.
        public var pinMinimumCount: UInt32 = TierPlanner.defaultMinimumCount
        public var rounds = 4
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
        /// Tiered / in-RAM samples/s of each alternating round.
        public var roundRatios: [Double]?
        /// Tiered samples/s of the solo timing (before the in-RAM model exists).
        public var soloSamplesPerSecond: Double
        public var peakRSSMiB: Double
        public var inRAMPeakRSSMiB: Double?
        public var diskReadMiBs: Double
        public var diskWriteMiBs: Double
        /// Per step, ms: lookup (slot assignment), fetch (reads in the step), write-back (queueing evicted rows) —
        /// each summed over the tiered tables, which resolve in parallel on the pool's threads —, compute (the step
        /// less those spread over the threads: an estimate), step (the whole step's wall time), and prefetch (reads on
        /// the background queue, overlapped).
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
            case roundRatios = "round_ratios", soloSamplesPerSecond = "solo_samples_per_s"
        }

        /// Encodes every key; `in_ram_samples_per_s` and `ratio` are written as `null` (not left out) when the tables
        /// do not fit in RAM, as the report's contract says.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(tableGiB, forKey: .tableGiB)
            try c.encode(cacheMiB, forKey: .cacheMiB)
            try c.encode(tableRows, forKey: .tableRows)
            try c.encode(tieredTables, forKey: .tieredTables)
            try c.encode(policy, forKey: .policy)
            try c.encode(io, forKey: .io)
            try c.encode(placement, forKey: .placement)
            try c.encode(expectedHitRate, forKey: .expectedHitRate)
            try c.encode(hitRate, forKey: .hitRate)
            try c.encode(samplesPerSecond, forKey: .samplesPerSecond)
            try c.encode(inRAMSamplesPerSecond, forKey: .inRAMSamplesPerSecond)
            try c.encode(ratio, forKey: .ratio)
            try c.encode(roundRatios, forKey: .roundRatios)
            try c.encode(soloSamplesPerSecond, forKey: .soloSamplesPerSecond)
            try c.encode(peakRSSMiB, forKey: .peakRSSMiB)
            try c.encode(inRAMPeakRSSMiB, forKey: .inRAMPeakRSSMiB)
            try c.encode(diskReadMiBs, forKey: .diskReadMiBs)
            try c.encode(diskWriteMiBs, forKey: .diskWriteMiBs)
            try c.encode(phaseMs, forKey: .phaseMs)
            try c.encode(warmupSteps, forKey: .warmupSteps)
            try c.encode(warmupSeconds, forKey: .warmupSeconds)
            try c.encode(fillSeconds, forKey: .fillSeconds)
            try c.encode(machine, forKey: .machine)
            try c.encodeIfPresent(note, forKey: .note)
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
            // Exact counts in hash maps (the ids seen, not every row: a dense array for 32 GiB of tables would
            // itself cost 2 GiB of the RAM this benchmark measures), for the tables large enough to be tiered
            // (the planner keeps the others in RAM without looking at their counts).
            var rng = SeededRandom(seed: c.seed ^ 0x5747)
            let large = tables.indices.filter { tables[$0] * 68 >= options.minimumTableBytes }
            var counts = tables.map { _ in [Int64: UInt32]() }
            for t in large {
                let sampler = ZipfSampler(n: tables[t], exponent: c.zipf)
                counts[t].reserveCapacity(1 << 20)
                for _ in 0..<(c.statsBatches * c.batch) { counts[t][Int64(sampler.nextID(using: &rng)), default: 0] &+= 1 }
            }
            let stats = RowAccessStats(tables: tables.indices.map { (t: Int) -> RowAccessStats.Table in
                var pairs = counts[t].map { ($0.key, $0.value) }
                pairs.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
                return RowAccessStats.Table(name: "C\(t + 1)", rows: tables[t], lookups: c.statsBatches * c.batch, seen: pairs.count,
                                            ids: pairs.map(\.0), counts: pairs.map(\.1))
            })
            counts = []
            var records: [String: Int] = [:], features: [String: String] = [:]
            for t in tables.indices { records["embeddings.C\(t + 1)"] = 68; features["embeddings.C\(t + 1)"] = "C\(t + 1)" }
            var planner = TierPlanner(cacheBytes: options.cacheBytes, recordBytes: records, features: features)
            planner.minimumSlots = options.minimumSlots
            planner.minimumCount = c.pinMinimumCount
            var plan = try planner.plan(stats, statsPath: "(in memory)")
            let byName = Dictionary(stats.tables.map { ($0.name, $0) }, uniquingKeysWith: { (a: RowAccessStats.Table, _: RowAccessStats.Table) in a })
            for i in plan.tables.indices where plan.tables[i].mode == .tiered {
                plan.tables[i].pinnedIDs = Array(byName[plan.tables[i].feature]!.ids.prefix(plan.tables[i].pinnedRows))
            }
            // The run's hit rate counts the tiered tables' lookups only; so does this estimate (pinned rows).
            let tieredPlans = plan.tables.filter { $0.mode == .tiered }
            let lookups = tieredPlans.reduce(0.0) { $0 + Double(byName[$1.feature]!.lookups) }
            let hits = tieredPlans.reduce(0.0) { $0 + $1.expectedHitRate * Double(byName[$1.feature]!.lookups) }
            expected = lookups > 0 ? hits / lookups : 1
            options.placement = plan
            log(String(format: "placement: %d rows pinned; expected hit rate of the tiered tables from pinned rows alone %.4f (all tables: %.4f)",
                       plan.tables.reduce(0) { $0 + $1.pinnedRows }, expected!, plan.expectedHitRate))
        }
        log(String(format: "tiered: %.1f GiB of rows + row-wise Adagrad (%d rows) in %@, cache %d MiB (%@, %@ I/O)",
                   c.tableGiB, tables.reduce(0, +), c.directory, c.cacheMiB, c.policy.rawValue, c.io.rawValue))
        let fillStart = Date()
        let provider = try TieredStorageProvider(options: options, tables: config.embeddingTables, optimizer: .rowWiseAdagrad)
        let tiered = try DLRM(config: config, initialization: .random(seed: c.seed), sparseOptimizer: .rowWiseAdagrad, storage: provider)
        let fillSeconds = Date().timeIntervalSince(fillStart)
        log(Tiering.describe(provider) + String(format: "; files written in %.1f s", fillSeconds))
        let tieredRunner = try Runner(tiered, stream: Stream(tables: tables, zipf: c.zipf, batch: c.batch, seed: c.seed), batch: c.batch,
                                      pool: pool, provider: provider)
        let warm = try tieredRunner.warmUp(seconds: c.warmupSeconds, log: log)
        let before = provider.stats
        let readBefore = provider.ioSummary.bytesRead, writtenBefore = provider.ioSummary.bytesWritten
        let soloSeconds = try tieredRunner.time(steps: c.steps)
        let peak = BenchTiming.peakRSSMiB()
        let s = provider.stats - before
        let bytesRead = provider.ioSummary.bytesRead - readBefore, bytesWritten = provider.ioSummary.bytesWritten - writtenBefore
        let steps = Double(c.steps)
        var phases: [String: Double] = [
            "lookup": Double(s.lookupNanoseconds) / 1e6 / steps,
            "fetch": Double(s.fetchNanoseconds) / 1e6 / steps,
            "write_back": Double(s.writeBackNanoseconds) / 1e6 / steps,
            "prefetch": Double(s.prefetchNanoseconds) / 1e6 / steps,
            "background_write": Double(s.backgroundWriteNanoseconds) / 1e6 / steps,
        ]
        let spread = Double(max(1, min(c.threads, provider.storages.count)))
        let stepMs = soloSeconds * 1e3 / steps
        phases["step"] = stepMs
        phases["compute"] = max(0, stepMs - (phases["lookup"]! + phases["fetch"]! + phases["write_back"]!) / spread)
        let solo = Double(c.steps * c.batch) / soloSeconds
        log(String(format: "tiered: %.0f samples/s, hit rate %.4f, read %.1f MiB/s, written %.1f MiB/s, peak RSS %.0f MiB", solo, s.hitRate,
                   Double(bytesRead) / 1_048_576 / soloSeconds, Double(bytesWritten) / 1_048_576 / soloSeconds, peak))
        var report = Report(tableGiB: c.tableGiB, cacheMiB: c.cacheMiB, tableRows: tables.reduce(0, +), tieredTables: provider.storages.count,
                            policy: c.policy.rawValue, io: provider.ioSummary.engine.rawValue, placement: c.placement, expectedHitRate: expected,
                            hitRate: s.hitRate, samplesPerSecond: solo, inRAMSamplesPerSecond: nil, ratio: nil, roundRatios: nil,
                            soloSamplesPerSecond: solo, peakRSSMiB: peak,
                            inRAMPeakRSSMiB: nil, diskReadMiBs: Double(bytesRead) / 1_048_576 / soloSeconds,
                            diskWriteMiBs: Double(bytesWritten) / 1_048_576 / soloSeconds, phaseMs: phases, warmupSteps: warm.steps,
                            warmupSeconds: warm.seconds, fillSeconds: fillSeconds,
                            machine: MachineInfo.current(isa: CPUFeatures.host.summary, openblasCore: BLASRuntime.available?.coreName),
                            note: provider.ioSummary.note.isEmpty ? nil : provider.ioSummary.note)
        // In RAM, where the tables fit (with room to spare: half the memory the system reports available).
        let bytes = Double(tables.reduce(0, +) * 68)
        if c.skipInRAM {
            report.note = [report.note, "in-RAM run skipped (--skip-in-ram)"].compactMap { $0 }.joined(separator: "; ")
        } else if bytes < 0.5 * availableMemoryBytes() {
            let rounds = max(1, c.rounds), chunk = max(1, c.steps / max(1, c.rounds))
            log("in RAM: the same model, 20 steps of warm-up, then \(rounds) alternating rounds of \(chunk) steps in RAM and \(chunk) tiered")
            let ram = try DLRM(config: config, initialization: .random(seed: c.seed), sparseOptimizer: .rowWiseAdagrad)
            let ramRunner = try Runner(ram, stream: Stream(tables: tables, zipf: c.zipf, batch: c.batch, seed: c.seed), batch: c.batch,
                                       pool: pool, provider: nil)
            _ = try ramRunner.warmUp(seconds: 0, log: log)
            var ramSeconds = 0.0, tierSeconds = 0.0
            var ratios: [Double] = []
            for _ in 0..<rounds {
                let r = try ramRunner.time(steps: chunk), t = try tieredRunner.time(steps: chunk)
                ramSeconds += r; tierSeconds += t
                ratios.append(r / t)
            }
            let inRAM = Double(rounds * chunk * c.batch) / ramSeconds
            let tieredSPS = Double(rounds * chunk * c.batch) / tierSeconds
            report.samplesPerSecond = tieredSPS
            report.inRAMSamplesPerSecond = inRAM
            report.ratio = tieredSPS / inRAM
            report.roundRatios = ratios
            report.inRAMPeakRSSMiB = BenchTiming.peakRSSMiB()
            log(String(format: "alternating rounds: tiered %.0f, in RAM %.0f samples/s; tiered / in RAM = %.3f (rounds: %@)", tieredSPS, inRAM,
                       tieredSPS / inRAM, ratios.map { String(format: "%.3f", $0) }.joined(separator: ", ")))
        } else {
            report.note = [report.note, String(format: "in-RAM run skipped: %.1f GiB of tables do not fit in half of the %.1f GiB available",
                                               bytes / 1_073_741_824, availableMemoryBytes() / 1_073_741_824)].compactMap { $0 }.joined(separator: "; ")
        }
        return report
    }

    /// Trains one model on its stream, a step at a time (the next batch is drawn, untimed, and prefetched).
    final class Runner {
        let model: DLRM
        var stream: Stream
        let workspace: ModelWorkspace
        let dense = DenseOptimizer(kind: .adagrad)
        let update = SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 0.01)
        let pool: ThreadPool
        let provider: TieredStorageProvider?
        var next: Batch

        init(_ model: DLRM, stream: Stream, batch: Int, pool: ThreadPool, provider: TieredStorageProvider?) throws {
            self.model = model; self.stream = stream; self.pool = pool; self.provider = provider
            workspace = model.makeWorkspace(maxBatch: batch)
            try dense.prepare(model.denseParameters)
            next = self.stream.next()
        }

        /// One step; seconds (drawing the next batch excluded).
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

        func time(steps: Int) throws -> Double {
            var seconds = 0.0
            for _ in 0..<steps { seconds += try step() }
            return seconds
        }

        /// Steps until every tiered cache is full and 20 steps are done, or `seconds` pass (20 steps without a cache).
        func warmUp(seconds limit: Double, log: (String) -> Void) throws -> (steps: Int, seconds: Double) {
            let start = Date()
            var warm = 0
            var lastLog = Date()
            while true {
                let full = provider.map { $0.storages.allSatisfy(\.isFull) } ?? true
                if warm >= 20 && (full || Date().timeIntervalSince(start) > limit) { break }
                _ = try step()
                warm += 1
                if let provider, Date().timeIntervalSince(lastLog) > 10 {
                    lastLog = Date()
                    let filled = provider.storages.reduce(0) { $0 + $1.occupied }, capacity = provider.storages.reduce(0) { $0 + $1.capacity }
                    log(String(format: "warm-up: %d steps, cache %.1f%% full, hit rate %.4f", warm, 100 * Double(filled) / Double(max(capacity, 1)),
                               provider.stats.hitRate))
                }
            }
            return (warm, Date().timeIntervalSince(start))
        }
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
