import Foundation
import RecKitData

/// Where each table's rows go, decided from access statistics by `reckit plan tiering` (RecShard's idea: the few
/// rows that take most lookups stay in RAM): tables kept wholly in RAM, and for each tiered table its cache size
/// and how many of its hottest rows are pinned there. The pinned rows themselves are read from the statistics file
/// the plan names (its rows are sorted by access count), so the plan stays small.
public struct TierPlacement: Sendable, Codable, Equatable {
    public enum Mode: String, Sendable, Codable { case resident, tiered }

    public struct Table: Sendable, Codable, Equatable {
        /// `collection.table`, e.g. `embeddings.C3`.
        public var name: String
        /// The feature whose statistics it was planned from (its table in the statistics file).
        public var feature: String
        public var mode: Mode
        /// Cache rows of a tiered table (pinned rows included).
        public var cacheRows: Int
        /// How many of its hottest rows are pinned.
        public var pinnedRows: Int
        /// Fraction of the table's lookups the plan expects from RAM (resident: 1; tiered: its pinned rows' share).
        public var expectedHitRate: Double
        /// The pinned row ids (filled from the statistics file when the plan is loaded; not stored in the JSON).
        public var pinnedIDs: [Int64] = []

        public init(name: String, feature: String? = nil, mode: Mode, cacheRows: Int, pinnedRows: Int, expectedHitRate: Double) {
            self.name = name; self.feature = feature ?? String(name.split(separator: ".").last ?? Substring(name))
            self.mode = mode; self.cacheRows = cacheRows; self.pinnedRows = pinnedRows; self.expectedHitRate = expectedHitRate
        }

        enum CodingKeys: String, CodingKey {
            case name, feature, mode
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

extension TierPlacement {
    /// Reads a plan and the pinned rows it names from its statistics file (the hottest `pinned_rows` of each table).
    public static func load(_ path: String) throws -> TierPlacement {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var plan = try JSONDecoder().decode(TierPlacement.self, from: data)
        guard plan.format == "reckit-tier-placement", plan.version == 1 else {
            throw TierPlanError("\(path): not a RecKit tier placement (format \(plan.format) version \(plan.version))")
        }
        let pinning = plan.tables.filter { $0.mode == .tiered && $0.pinnedRows > 0 }
        guard !pinning.isEmpty else { return plan }
        var statsPath = plan.stats
        if !statsPath.hasPrefix("/") { statsPath = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(statsPath) }
        let hottest = pinning.map(\.pinnedRows).max() ?? 0
        let stats = try RowAccessStats.read(statsPath, hottest: hottest)
        let byName = Dictionary(stats.tables.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for i in plan.tables.indices where plan.tables[i].mode == .tiered && plan.tables[i].pinnedRows > 0 {
            let t = plan.tables[i]
            guard let s = byName[t.feature] else { throw TierPlanError("\(statsPath): no statistics for feature \(t.feature) (table \(t.name))") }
            guard t.pinnedRows <= s.ids.count, t.pinnedRows < t.cacheRows else {
                throw TierPlanError("\(path): table \(t.name) pins \(t.pinnedRows) rows; its statistics list \(s.ids.count) and its cache holds \(t.cacheRows)")
            }
            plan.tables[i].pinnedIDs = Array(s.ids.prefix(t.pinnedRows))
        }
        return plan
    }
}

/// A placement that cannot be made or used, with the reason.
public struct TierPlanError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
