import Foundation
import RecKitCore
import RecKitEmbeddings
import RecKitKernels
import RecKitModels
import RecKitTiered

/// Tables larger than RAM in training: the provider for a model configuration, and what to record and report.
public enum Tiering {
    /// A provider that tiers `config`'s large tables under `options` (rows + `optimizer`'s state per record).
    public static func provider(_ options: TierOptions, config: any ModelConfiguration,
                                optimizer: SparseOptimizerKind?) throws(TrainingError) -> TieredStorageProvider {
        do throws(EmbeddingError) {
            return try TieredStorageProvider(options: options, tables: config.embeddingTables, optimizer: optimizer)
        } catch { throw .options(error.description) }
    }

    /// The tiered tables of `model` (empty when every table is in RAM).
    public static func storages(_ model: any CTRModel) -> [TieredRowStorage] {
        model.embeddingCollections.flatMap { $0.storages.compactMap { $0 as? TieredRowStorage } }
    }

    /// What a checkpoint records about where the tables lived (`__metadata__.storage`), nil when all were in RAM.
    static func record(_ model: any CTRModel) -> Data? {
        let tiered = storages(model)
        guard !tiered.isEmpty else { return nil }
        var tables: [String: [String: Int]] = [:]
        for s in tiered { tables[s.name] = ["rows": s.rows, "cache_rows": s.capacity, "pinned_rows": s.pinnedCount] }
        let object: [String: Any] = ["tiered": tables, "policy": tiered[0].policy.rawValue,
                                     "note": "rows of tiered tables lived in files behind a RAM cache; the tensors here are complete"]
        return try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// The run's tiering report: tables, cache, hit rate, I/O.
    public struct Report: Codable, Sendable {
        public var tables: Int
        public var cacheRows: Int
        public var hitRate: Double
        public var lookups: Int
        public var misses: Int
        public var prefetchHits: Int
        public var writtenBack: Int
        public var bytesRead: Int
        public var bytesWritten: Int
        public var engine: String
        enum CodingKeys: String, CodingKey {
            case tables, lookups, misses, engine
            case cacheRows = "cache_rows", hitRate = "hit_rate", prefetchHits = "prefetch_hits", writtenBack = "written_back"
            case bytesRead = "bytes_read", bytesWritten = "bytes_written"
        }
    }

    public static func report(_ provider: TieredStorageProvider) -> Report {
        let s = provider.stats, io = provider.ioSummary
        let built = provider.storages
        return Report(tables: built.count, cacheRows: built.reduce(0) { $0 + $1.capacity }, hitRate: s.hitRate, lookups: s.lookups,
                      misses: s.misses, prefetchHits: s.prefetchHits, writtenBack: s.writtenBack, bytesRead: io.bytesRead,
                      bytesWritten: io.bytesWritten, engine: io.engine.rawValue)
    }

    /// One line for the log: which tables are tiered and how large their caches are.
    public static func describe(_ provider: TieredStorageProvider) -> String {
        let built = provider.storages
        guard !built.isEmpty else { return "tiering: every table fits under the in-RAM threshold; none tiered" }
        let rows = built.reduce(0) { $0 + $1.rows }, cached = built.reduce(0) { $0 + $1.capacity }
        var text = String(format: "tiering: %d tables (%d rows) in %@ behind a cache of %d rows (%.1f%%), %@ eviction, %@ I/O",
                          built.count, rows, provider.options.directory, cached, 100 * Double(cached) / Double(max(rows, 1)),
                          provider.options.policy.rawValue, provider.ioSummary.engine.rawValue)
        if !provider.ioSummary.note.isEmpty { text += " (\(provider.ioSummary.note))" }
        let pinned = built.reduce(0) { $0 + $1.pinnedCount }
        if pinned > 0 { text += ", \(pinned) rows pinned by the placement" }
        return text
    }
}
