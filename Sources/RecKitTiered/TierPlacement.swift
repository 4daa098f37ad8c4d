import Foundation

/// Where each table's rows go, decided from access statistics by `reckit plan tiering` (RecShard's idea: the few
/// rows that take most lookups stay in RAM): tables kept wholly in RAM, and for each tiered table its cache size
/// and how many of its hottest rows are pinned there. The pinned rows themselves are read from the statistics file
/// the plan names (its rows are sorted by access count), so the plan stays small.
public struct TierPlacement: Sendable, Codable, Equatable {
    public enum Mode: String, Sendable, Codable { case resident, tiered }

    public struct Table: Sendable, Codable, Equatable {
        /// `collection.table`, e.g. `embeddings.C3`.
        public var name: String
        public var mode: Mode
        /// Cache rows of a tiered table (pinned rows included).
        public var cacheRows: Int
        /// How many of its hottest rows are pinned.
        public var pinnedRows: Int
        /// Fraction of the table's lookups the plan expects from RAM (resident: 1; tiered: its pinned rows' share).
        public var expectedHitRate: Double
        /// The pinned row ids (filled from the statistics file when the plan is loaded; not stored in the JSON).
        public var pinnedIDs: [Int64] = []

        public init(name: String, mode: Mode, cacheRows: Int, pinnedRows: Int, expectedHitRate: Double) {
            self.name = name; self.mode = mode; self.cacheRows = cacheRows; self.pinnedRows = pinnedRows; self.expectedHitRate = expectedHitRate
        }

        enum CodingKeys: String, CodingKey {
            case name, mode
            case cacheRows = "cache_rows", pinnedRows = "pinned_rows", expectedHitRate = "expected_hit_rate"
        }
    }

    public var format = "reckit-tier-placement"
    public var version = 1
    /// The access statistics the plan was made from (`reckit data stats --access-counts`).
    public var stats: String
    public var cacheBytes: Int
    /// Bytes of one row's record (row + optimizer state) the plan assumed.
    public var recordBytes: [String: Int]
    public var tables: [Table]
    /// Expected fraction of all lookups served from RAM (resident tables and pinned rows; the dynamic part of each
    /// cache adds to it).
    public var expectedHitRate: Double

    enum CodingKeys: String, CodingKey {
        case format, version, stats, tables
        case cacheBytes = "cache_bytes", recordBytes = "record_bytes", expectedHitRate = "expected_hit_rate"
    }

    public init(stats: String, cacheBytes: Int, recordBytes: [String: Int], tables: [Table], expectedHitRate: Double) {
        self.stats = stats; self.cacheBytes = cacheBytes; self.recordBytes = recordBytes; self.tables = tables; self.expectedHitRate = expectedHitRate
    }
}
