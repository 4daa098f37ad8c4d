import Foundation
@testable import RecKitDistributed
import RecKitCore
import RecKitKernels
import Testing

/// The planner's choices on hand-made statistics: memory limits respected, refusals that name the table, bytes and
/// limit, balance across ranks, and a plan for 1,000 tables on 64 ranks (its speed is reported by `reckit plan shard`).
@Suite("Sharding planner")
struct ShardPlannerTests {
    static let dense = DenseCost(flopsPerSample: 200_000, parameters: 20_000)

    @Test("every rank stays under the memory limit and every table is placed once; the estimate's bytes match the plan")
    func respectsMemory() throws {
        let tables = (0..<12).map { TableStats(name: "t\($0)", rows: 1000 * ($0 + 1), dim: 16, pooling: 1 + Double($0 % 3)) }
        let limit = 1_700_000      // the tables take 5.3 MB: 78% of 4 × 1.7 MB
        let planner = ShardPlanner(tables: tables, ranks: 4, memoryBytes: limit, batchSize: 1024, dense: Self.dense)
        let (plan, est) = try planner.plan()
        #expect(plan.tables.map(\.name) == tables.map(\.name))
        #expect(plan.rankMemoryBytes.allSatisfy { $0 <= limit }, "\(plan.rankMemoryBytes)")
        #expect(plan.rankMemoryBytes.reduce(0, +) == plan.tables.reduce(0) { $0 + $1.bytes })
        #expect(est.stepMs == plan.estimatedStepMs)
        #expect(plan.tables.allSatisfy { $0.reason?.contains("runner-up") == true || $0.reason?.contains("no other placement") == true })
        try plan.validate(tables.map { .init(name: $0.name, rows: $0.rows, dim: $0.dim) }, worldSize: 4)
    }

    @Test("a table bigger than a rank is split row-wise; one too big even split is refused with its name, bytes and the limit")
    func bigTables() throws {
        // 100k rows × 16 × 4 B + 4 B row state = 6.8 MB: fits split over 4 ranks of 2 MB, not whole.
        let big = TableStats(name: "huge", rows: 100_000, dim: 16, pooling: 1)
        let (plan, _) = try ShardPlanner(tables: [big], ranks: 4, memoryBytes: 2_000_000, batchSize: 512, dense: Self.dense).plan()
        #expect(plan.tables[0].sharding == .rowWise && plan.tables[0].ranks.count == 4)
        do {
            _ = try ShardPlanner(tables: [big], ranks: 4, memoryBytes: 1_000_000, batchSize: 512, dense: Self.dense).plan()
            Issue.record("a plan over the limit was accepted")
        } catch {
            let m = error.description
            #expect(m.contains("huge") && m.contains("1000000") && m.contains("1700000"), "\(m)")
        }
    }

    @Test("equal tables spread evenly over the ranks (table-wise when the network is slow)")
    func balance() throws {
        var c = CostConstants()
        c.networkGBps = 0.5
        let tables = (0..<8).map { TableStats(name: "t\($0)", rows: 50_000, dim: 32, pooling: 4) }
        let (plan, _) = try ShardPlanner(tables: tables, ranks: 4, memoryBytes: 1 << 30, batchSize: 2048, dense: Self.dense, constants: c).plan()
        #expect(plan.tables.allSatisfy { $0.sharding == .tableWise }, "\(plan.tables.map(\.sharding))")
        let perRank = Dictionary(grouping: plan.tables, by: { $0.ranks[0] }).mapValues(\.count)
        #expect(perRank.values.allSatisfy { $0 == 2 }, "\(perRank)")
    }

    @Test("one process: no communication in the estimate; column-wise only where the optimizer allows it")
    func oneRankAndColumns() throws {
        let tables = [TableStats(name: "a", rows: 1000, dim: 64, pooling: 20, hotShare: 0)]
        let (p1, e1) = try ShardPlanner(tables: tables, ranks: 1, memoryBytes: 1 << 30, batchSize: 1024, dense: Self.dense).plan()
        #expect(p1.tables[0].ranks == [0] && e1.allreduceMs == 0 && e1.allToAllMs == [0])
        let row = ShardPlanner(tables: tables, ranks: 4, memoryBytes: 1 << 30, batchSize: 1024, dense: Self.dense, optimizer: .rowWiseAdagrad)
        #expect(!row.candidates(tables[0], .init(4)).contains { $0.kind == .columnWise })
        let sgd = ShardPlanner(tables: tables, ranks: 4, memoryBytes: 1 << 30, batchSize: 1024, dense: Self.dense, optimizer: .sgd)
        #expect(sgd.candidates(tables[0], .init(4)).contains { $0.kind == .columnWise })
    }

    @Test("1,000 tables on 64 ranks: a complete plan within the limit")
    func large() throws {
        var rng = SeededRandom(seed: 4)
        let tables = (0..<1000).map { TableStats(name: "t\($0)", rows: 1000 + rng.nextBelow(2_000_000), dim: 64, pooling: 1 + Double(rng.nextBelow(30))) }
        let (plan, est) = try ShardPlanner(tables: tables, ranks: 64, memoryBytes: 4 << 30, batchSize: 65_536, dense: Self.dense).plan()
        #expect(plan.tables.count == 1000 && plan.rankMemoryBytes.count == 64)
        #expect(plan.rankMemoryBytes.allSatisfy { $0 <= 4 << 30 })
        #expect(est.stepMs > 0 && est.stepMs.isFinite)
    }
}
