import Foundation
import RecKitCore
import RecKitData

/// `reckit bench loader`: every batch of a shard dataset through `BatchLoader` (shuffle buffer, dedup as asked),
/// with rows/s and the process's peak resident memory — the loader's memory bound made visible: whatever the number
/// of shards, at most `prefetchShards + 2` shards are in memory (queued, being decoded, being read), each as its mapped
/// file and its decoded columns, plus the shuffle buffer's rows, plus the process's own baseline.
public enum LoaderBenchmark {
    public struct Report: Codable, Sendable {
        public var rows: Int
        public var batches: Int
        public var seconds: Double
        public var rowsPerSecond: Double
        public var shards: Int
        public var largestShardMiB: Double
        public var shuffleBuffer: Int
        public var dedup: Bool
        public var peakRSSMiB: Double
        /// The documented bound, MiB: `baselineMiB` + (prefetchShards + 2) × (largest shard file + its decoded columns)
        /// + the buffer's rows.
        public var boundMiB: Double
        /// What the process holds before any data (runtime, libraries), MiB.
        public static let baselineMiB = 40.0
        enum CodingKeys: String, CodingKey {
            case rows, batches, seconds, shards, dedup
            case rowsPerSecond = "rows_per_s", largestShardMiB = "largest_shard_mib", shuffleBuffer = "shuffle_buffer"
            case peakRSSMiB = "peak_rss_mib", boundMiB = "bound_mib"
        }
    }

    public static func run(directory: String, batchSize: Int, shuffleBuffer: Int, dedup: Bool) throws -> Report {
        let ds = try ShardDataset(directory: directory)
        var o = LoaderOptions(batchSize: batchSize)
        o.shuffleBuffer = shuffleBuffer
        o.dedup = dedup
        o.seed = 1
        let loader = try BatchLoader(dataset: ds, options: o)
        let t0 = Date()
        var rows = 0, batches = 0
        while let b = loader.next() { rows += b.size; batches += 1 }
        if let e = loader.error { throw e }
        let seconds = Date().timeIntervalSince(t0)
        let schema = ds.schema
        // Decoded bytes per row: label, dense floats, 8-byte ids (one per one-hot feature; multi-hot from the files).
        let rowBytes = Double(4 + 4 * schema.denseNames.count + 8 * schema.sparse.count + 4 * schema.sparse.filter(\.multiHot).count)
        let largestRows = ds.manifest.shards.map(\.rows).max() ?? 0
        let largest = (Double(largestRows) * rowBytes + Double(ds.manifest.shards.map(\.bytes).max() ?? 0)) / 1_048_576
        let bound = Report.baselineMiB + Double(o.prefetchShards + 2) * largest + Double(shuffleBuffer) * rowBytes / 1_048_576
        return Report(rows: rows, batches: batches, seconds: seconds, rowsPerSecond: Double(rows) / max(seconds, 1e-9),
                      shards: ds.manifest.shards.count, largestShardMiB: largest, shuffleBuffer: shuffleBuffer, dedup: dedup,
                      peakRSSMiB: BenchTiming.peakRSSMiB(), boundMiB: bound)
    }
}
