import Foundation
import RecKitEmbeddings

/// How one embedding table is split across ranks.
public enum ShardingKind: String, Codable, Sendable, CaseIterable {
    /// The whole table on one rank.
    case tableWise = "table_wise"
    /// Contiguous row ranges, one per rank: each rank pools its rows' part of every bag and the parts are summed
    /// (sum pooling only). Balances a table too big for one rank, or a hot one.
    case rowWise = "row_wise"
    /// Contiguous column ranges, one per rank: each rank pools its columns of every bag. Splits the lookup work of a
    /// wide table; with row-wise Adagrad each column slice keeps its own row state (as TorchRec does), so its
    /// trajectory differs from the unsharded table's.
    case columnWise = "column_wise"
}

/// One table's place in a plan (the JSON object of `reckit plan shard`'s `tables` list).
public struct TablePlacement: Codable, Sendable, Equatable {
    /// The table's name (every collection's table of that name: FM's first-order and factor tables alike).
    public var name: String
    public var sharding: ShardingKind
    /// The ranks holding its shards, shard order (one rank for table-wise).
    public var ranks: [Int]
    /// Bytes of the table with its optimizer state, all shards together.
    public var bytes: Int
    /// Estimated milliseconds per step of this table's lookups and communication, and why it was chosen (planner).
    public var estimatedMs: Double?
    public var reason: String?

    public init(name: String, sharding: ShardingKind, ranks: [Int], bytes: Int = 0, estimatedMs: Double? = nil, reason: String? = nil) {
        self.name = name; self.sharding = sharding; self.ranks = ranks; self.bytes = bytes; self.estimatedMs = estimatedMs; self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case name, sharding, ranks, bytes
        case estimatedMs = "estimated_ms"
        case reason
    }
}

/// Where every embedding table lives on a group of ranks: what `reckit plan shard` writes and `reckit train --plan`
/// reads. Tables not named are placed table-wise by `ShardingPlan.balanced`.
public struct ShardingPlan: Codable, Sendable {
    public var worldSize: Int
    public var tables: [TablePlacement]
    /// Bytes each rank holds (tables and their optimizer state).
    public var rankMemoryBytes: [Int]
    public var estimatedStepMs: Double?
    /// The cost model's constants the estimate used (name → value with unit in the name).
    public var constants: [String: Double]

    public init(worldSize: Int, tables: [TablePlacement], rankMemoryBytes: [Int] = [], estimatedStepMs: Double? = nil, constants: [String: Double] = [:]) {
        self.worldSize = worldSize; self.tables = tables; self.rankMemoryBytes = rankMemoryBytes
        self.estimatedStepMs = estimatedStepMs; self.constants = constants
    }

    enum CodingKeys: String, CodingKey {
        case worldSize = "world_size"
        case tables
        case rankMemoryBytes = "rank_memory_bytes"
        case estimatedStepMs = "estimated_step_ms"
        case constants
    }

    public func placement(of table: String) -> TablePlacement? { tables.first { $0.name == table } }

    /// Table-wise placement of `specs` on `ranks` ranks: largest table first onto the rank holding the fewest bytes
    /// (ties: lowest rank), a deterministic default when no plan is given.
    public static func balanced(_ specs: [EmbeddingTableSpec], ranks: Int, bytesPerElement: Int = 4) -> ShardingPlan {
        var load = [Int](repeating: 0, count: max(ranks, 1))
        var out: [String: TablePlacement] = [:]
        var seen = Set<String>()
        let unique = specs.filter { seen.insert($0.name).inserted }
        for s in unique.sorted(by: { ($0.rows * $0.dim, $1.name) > ($1.rows * $1.dim, $0.name) }) {
            let r = load.indices.min { (load[$0], $0) < (load[$1], $1) }!
            let bytes = s.rows * s.dim * bytesPerElement
            load[r] += bytes
            out[s.name] = TablePlacement(name: s.name, sharding: .tableWise, ranks: [r], bytes: bytes)
        }
        return ShardingPlan(worldSize: ranks, tables: unique.map { out[$0.name]! }, rankMemoryBytes: load)
    }

    /// Checks the plan against a collection's tables and the world size; names the table and the problem.
    public func validate(_ specs: [EmbeddingTableSpec], worldSize n: Int) throws(DistributedError) {
        guard worldSize == n else { throw .plan("the plan is for \(worldSize) ranks, the job has \(n)") }
        for s in specs {
            guard let p = placement(of: s.name) else { continue }
            guard !p.ranks.isEmpty, p.ranks.allSatisfy({ (0..<n).contains($0) }) else {
                throw .plan("table \(s.name): ranks \(p.ranks) outside 0..<\(n)")
            }
            guard Set(p.ranks).count == p.ranks.count else { throw .plan("table \(s.name): a rank appears twice in \(p.ranks)") }
            switch p.sharding {
            case .tableWise:
                guard p.ranks.count == 1 else { throw .plan("table \(s.name): table-wise sharding takes one rank, the plan gives \(p.ranks.count)") }
            case .rowWise:
                guard s.pooling == .sum else { throw .plan("table \(s.name): row-wise sharding needs sum pooling (a partial mean is not a mean)") }
                guard p.ranks.count <= max(s.rows, 1) else { throw .plan("table \(s.name): \(p.ranks.count) row shards for \(s.rows) rows") }
            case .columnWise:
                guard p.ranks.count <= s.dim else { throw .plan("table \(s.name): \(p.ranks.count) column shards for \(s.dim) columns") }
            }
        }
    }
}

/// One piece of a table on one rank: rows `rows` and columns `columns` of table `table`.
public struct Shard: Sendable, Equatable {
    public var table: Int
    /// Index among the table's shards.
    public var index: Int
    public var rank: Int
    public var rows: Range<Int>
    public var columns: Range<Int>
    public var kind: ShardingKind
}

extension Shard {
    /// The weight of this shard's row-wise Adagrad accumulator in the whole row's: a column slice's accumulator is
    /// the mean square over its columns, so it counts by its width (columns / dim); row and table shards hold whole
    /// rows (1).
    func rowStateWeight(dim: Int) -> Float { kind == .columnWise ? Float(columns.count) / Float(dim) : 1 }

    /// Copies between the shard (row-major, `columns.count` wide) and its place in the whole table (row-major,
    /// `dim` wide), row by row: `toShard` from `whole` into `shard`, else back.
    func copy(whole: UnsafeMutablePointer<Float>, dim d: Int, shard: UnsafeMutablePointer<Float>, toShard: Bool) {
        let w = columns.count
        for (lr, r) in rows.enumerated() {
            let g = whole + r * d + columns.lowerBound, l = shard + lr * w
            if toShard { l.update(from: g, count: w) } else { g.update(from: l, count: w) }
        }
    }
}

extension ShardingPlan {
    /// Every shard of `specs` in table order, then shard order (tables the plan does not name: `fallback`'s place).
    public func shards(of specs: [EmbeddingTableSpec], fallback: ShardingPlan) -> [Shard] {
        var out: [Shard] = []
        for (t, s) in specs.enumerated() {
            let p = placement(of: s.name) ?? fallback.placement(of: s.name) ?? TablePlacement(name: s.name, sharding: .tableWise, ranks: [0])
            let m = p.ranks.count
            for (j, r) in p.ranks.enumerated() {
                switch p.sharding {
                case .tableWise: out.append(Shard(table: t, index: 0, rank: r, rows: 0..<s.rows, columns: 0..<s.dim, kind: .tableWise))
                case .rowWise: out.append(Shard(table: t, index: j, rank: r, rows: s.rows * j / m ..< s.rows * (j + 1) / m, columns: 0..<s.dim, kind: .rowWise))
                case .columnWise: out.append(Shard(table: t, index: j, rank: r, rows: 0..<s.rows, columns: s.dim * j / m ..< s.dim * (j + 1) / m, kind: .columnWise))
                }
            }
        }
        return out
    }
}

/// Errors of distributed training: a plan that does not fit, a collective that failed, a checkpoint that cannot be
/// gathered. Each names the table, rank or file.
public enum DistributedError: Error, Sendable, CustomStringConvertible {
    case plan(String)
    case checkpoint(String)

    public var description: String {
        switch self {
        case .plan(let s): return "sharding plan: \(s)"
        case .checkpoint(let s): return "distributed checkpoint: \(s)"
        }
    }
}
