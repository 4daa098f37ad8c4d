import Foundation
import RecKitCore

/// Options of `reckit data synth`.
public struct SynthOptions: Sendable {
    public var rows: Int
    public var output: String
    public var seed: UInt64
    /// Table cardinalities (default: the 26 Criteo Kaggle tables, 33.8M rows in all).
    public var tables = SynthOptions.kaggleCardinalities
    /// Zipf exponent of id popularity (0 = uniform).
    public var zipf = 1.05
    /// K consecutive rows share the user-side features (RecD's duplication pattern); 1 = no sessions.
    public var sessionSize = 1
    /// How many of the first tables are user-side (shared within a session).
    public var userTables = 13
    /// Ids per row of the user-side tables: 1 = one-hot; P > 1 makes them multi-hot bags of P ids (a user's history,
    /// RecD's sequence features), shared within a session like the one-hot ones.
    public var userPooling = 1
    public var denseCount = 13
    public var shardRows = 1 << 18
    /// Replace a non-empty output directory (otherwise refused).
    public var overwrite = false

    public init(rows: Int, output: String, seed: UInt64) {
        self.rows = rows; self.output = output; self.seed = seed
    }

    /// DLRM's Criteo Kaggle embedding table sizes (C1…C26).
    public static let kaggleCardinalities = [1460, 583, 10_131_227, 2_202_608, 305, 24, 12517, 633, 3, 93145, 5683,
                                             8_351_593, 3194, 27, 14992, 5_461_306, 10, 5652, 2173, 4, 7_046_547, 18,
                                             15, 286_181, 105, 142_572]
}

/// The JSON of `reckit data synth --json`.
public struct SynthReport: Codable, Sendable {
    public var rows: Int
    public var shards: Int
    public var bytes: Int
    public var seconds: Double
    public var mbPerSecond: Double
    /// AUC of the hidden model's own probabilities on the generated labels: the best any model can do.
    public var plantedAUC: Double
    public var positiveRate: Double
    public var output: String

    enum CodingKeys: String, CodingKey {
        case rows, shards, bytes, seconds, output
        case mbPerSecond = "mb_per_s"
        case plantedAUC = "planted_auc"
        case positiveRate = "positive_rate"
    }
}

/// Criteo-shaped synthetic data with a learnable signal.
///
/// Ids: Zipf-distributed ranks scattered over each table (`ZipfSampler`). Dense: log-normal raw counts through
/// the same log(1+x) transform as real data. Labels: Bernoulli(σ(z)) of a hidden model
/// z = b + Σ_t w_t(id_t) + Σ_j v_j·dense_j + u·(w_0(id_0)·w_1(id_1)), where w_t(id) is a fixed pseudo-random
/// N(0, 0.6²)-like value derived by hashing (seed, t, id) — no table is stored — so any size streams in bounded
/// memory. Shards are generated in parallel from per-shard random streams: the output depends only on the seed.
public enum Synthesizer {
    public static func run(_ o: SynthOptions, progress: (@Sendable (Int, Double) -> Void)? = nil) throws(DataError) -> SynthReport {
        guard o.rows >= 1 else { throw .invalidOptions("--rows must be ≥ 1") }
        guard !o.tables.isEmpty, o.tables.allSatisfy({ $0 >= 1 }) else { throw .invalidOptions("table sizes must be ≥ 1") }
        guard o.sessionSize >= 1 else { throw .invalidOptions("--session-size must be ≥ 1") }
        guard o.userPooling >= 1, o.userPooling <= 10_000 else { throw .invalidOptions("--user-pooling must be in 1...10000") }
        let staging = try DatasetStaging(output: o.output, overwrite: o.overwrite)
        let t0 = Date()
        let schema = DatasetSchema(
            source: "synthetic", hasLabel: true, denseNames: (1...o.denseCount).map { "I\($0)" },
            sparse: o.tables.enumerated().map {
                SparseFeature(name: "C\($0.offset + 1)", cardinality: $0.element, multiHot: o.userPooling > 1 && $0.offset < o.userTables)
            },
            preprocessing: PreprocessingSpec(categorical: .identity, rawIDs: "synthetic"))
        let shardCount = (o.rows + o.shardRows - 1) / o.shardRows
        let samplers = o.tables.map { ZipfSampler(n: $0, exponent: max(o.zipf, 1e-9)) }
        let results = ShardResults(count: shardCount)
        let workers = min(shardCount, max(1, ProcessInfo.processInfo.activeProcessorCount))
        let next = NextIndex()
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while let s = next.take(below: shardCount) {
                if results.failed { return }
                let rows = min(o.shardRows, o.rows - s * o.shardRows)
                let (cols, probs) = generate(o, shard: s, rows: rows, samplers: samplers)
                let name = String(format: "shard-%05d.rks", s)
                do throws(DataError) {
                    try ShardFile.write(cols, schema: schema, to: staging.directory + "/" + name)
                    let bytes = ((try? FileManager.default.attributesOfItem(atPath: staging.directory + "/" + name))?[.size] as? Int) ?? 0
                    results.store(s, Manifest.Shard(file: name, rows: rows, bytes: bytes), probs, cols.labels, firstRow: s * o.shardRows)
                    progress?(results.rowsDone, Date().timeIntervalSince(t0))
                } catch { results.fail(error) }
            }
        }
        if let e = results.error { throw e }
        let shards = results.shards.compactMap { $0 }
        try Manifest(schema: schema, shards: shards).write(to: staging.directory)
        try staging.commit()
        let seconds = Date().timeIntervalSince(t0)
        let bytes = shards.reduce(0) { $0 + $1.bytes }
        let (scores, labels) = results.sample()
        return SynthReport(rows: o.rows, shards: shards.count, bytes: bytes, seconds: seconds,
                           mbPerSecond: Double(bytes) / 1e6 / max(seconds, 1e-9),
                           plantedAUC: exactAUC(scores: scores, labels: labels) ?? .nan,
                           positiveRate: Double(results.positives) / Double(o.rows), output: o.output)
    }

    /// One shard's rows and the hidden model's probabilities.
    static func generate(_ o: SynthOptions, shard: Int, rows: Int, samplers: [ZipfSampler]) -> (ShardColumns, [Float]) {
        var rng = SeededRandom.stream(seed: o.seed, index: UInt64(shard))
        let t = o.tables.count
        var cols = ShardColumns(denseCount: o.denseCount, sparseCount: t)
        cols.labels.reserveCapacity(rows)
        cols.dense.reserveCapacity(rows * o.denseCount)
        for f in 0..<t { cols.ids[f].reserveCapacity(rows) }
        // Column by column: one sampler per loop (no per-sample reference counting), logits accumulated per row.
        var z = [Double](repeating: -1.4, count: rows)
        let firstRow = shard * o.shardRows
        for f in 0..<t {
            let sampler = samplers[f]
            let shared = f < o.userTables && o.sessionSize > 1
            let pooling = f < o.userTables ? o.userPooling : 1
            var bag = [Int64](repeating: 0, count: pooling)
            var bagWeight = 0.0
            for r in 0..<rows {
                if !shared || r == 0 || (firstRow + r) % o.sessionSize == 0 {
                    bagWeight = 0
                    for i in 0..<pooling {
                        bag[i] = Int64(o.zipf > 0 ? sampler.nextID(using: &rng) : rng.nextBelow(o.tables[f]))
                        bagWeight += weight(o.seed, f, bag[i])
                    }
                    bagWeight /= Double(pooling)
                }
                cols.ids[f] += bag
                if pooling > 1 { cols.lengths[f].append(Int32(pooling)) }
                z[r] += bagWeight
            }
        }
        var probs = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            var zr = z[r]
            if t >= 2 { zr += 0.5 * weight(o.seed, 0, cols.ids[0][r]) * weight(o.seed, 1, cols.ids[1][r]) }
            var pair = (0.0, 0.0)
            for j in 0..<o.denseCount {
                if j % 2 == 0 { pair = rng.nextGaussianPair() }
                let raw = (1.5 + 1.2 * (j % 2 == 0 ? pair.0 : pair.1)).expValue.rounded(.down)
                let x = PreprocessingSpec.transformDense(Int64(raw))
                cols.dense.append(x)
                zr += (j % 2 == 0 ? 0.08 : -0.05) * Double(x)
            }
            let p = 1 / (1 + (-zr).expValue)
            probs[r] = Float(p)
            cols.labels.append(rng.nextDouble() < p ? 1 : 0)
            cols.commitRow()
        }
        return (cols, probs)
    }

    /// w_t(id): a fixed pseudo-random weight in about N(0, 0.6²) from a hash of (seed, table, id).
    @inline(__always) static func weight(_ seed: UInt64, _ table: Int, _ id: Int64) -> Double {
        var h = seed ^ (UInt64(table) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(UInt32(truncatingIfNeeded: id)) &* 0xC2B2_AE3D_27D4_EB4F)
        h ^= h >> 33; h &*= 0xFF51_AFD7_ED55_8CCD; h ^= h >> 33; h &*= 0xC4CE_B9FE_1A85_EC53; h ^= h >> 33
        // Irwin–Hall(4) − 2 has variance 1/3, so × 0.6 gives σ ≈ 0.35 per table.
        let u = Double(h & 0xFFFF) + Double((h >> 16) & 0xFFFF) + Double((h >> 32) & 0xFFFF) + Double(h >> 48)
        return (u / 65536 - 2) * 0.6
    }
}

/// Shard results collected from worker threads.
private final class ShardResults: @unchecked Sendable {
    private let lock = NSLock()
    var shards: [Manifest.Shard?]
    private var samples: [Int: ([Float], [Float])] = [:]
    private(set) var positives = 0
    private(set) var error: DataError?
    private(set) var rowsDone = 0
    var failed: Bool { lock.withLock { error != nil } }

    init(count: Int) { shards = Array(repeating: nil, count: count) }

    /// Records shard i. The planted-AUC sample is the leading shards' rows (up to 250k rows, standard error
    /// < 0.002), chosen by shard index so the figure does not depend on thread timing.
    func store(_ i: Int, _ shard: Manifest.Shard, _ probs: [Float], _ ls: [Float], firstRow: Int) {
        lock.withLock {
            shards[i] = shard
            rowsDone += shard.rows
            positives += Int(ls.reduce(0, +))
            if firstRow < 250_000 { samples[i] = (probs, ls) }
        }
    }

    func fail(_ e: DataError) { lock.withLock { if error == nil { error = e } } }
    func sample() -> ([Float], [Float]) {
        lock.withLock {
            let keys = samples.keys.sorted()
            return (keys.flatMap { samples[$0]!.0 }, keys.flatMap { samples[$0]!.1 })
        }
    }
}

private final class NextIndex: @unchecked Sendable {
    private let lock = NSLock()
    private var i = 0
    func take(below n: Int) -> Int? { lock.withLock { defer { i += 1 }; return i < n ? i : nil } }
}

extension Double {
    var expValue: Double { Foundation.exp(self) }
}
