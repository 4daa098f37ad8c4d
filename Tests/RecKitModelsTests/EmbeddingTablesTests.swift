import RecKitCore
@testable import RecKitModels
import Testing

@Suite("Embedding table initialisation")
struct EmbeddingTablesTests {
    /// The one-table-at-a-time loop the parallel fill replaced: table t from stream firstStream + t, in order.
    static func sequential(rows: [Int], dim: Int, seed: UInt64, firstStream: UInt64, bound: (Int) -> Float) -> [[Float]] {
        rows.enumerated().map { t, r in
            var rng = SeededRandom.stream(seed: seed, index: firstStream + UInt64(t))
            let b = bound(r)
            return (0..<(r * dim)).map { _ in (rng.nextUniform() * 2 - 1) * b }
        }
    }

    @Test("the parallel fill equals the sequential per-table streams, for any table order and empty tables")
    func parallelEqualsSequential() {
        // Unsorted sizes (the fill goes largest first), an empty table, a one-row table, one above 4 MiB (huge pages).
        let rows = [3, 0, 70_000, 1, 17, 1_100]
        let bound: (Int) -> Float = { (1 / Float(max($0, 1))).squareRoot() }
        for (seed, first) in [(UInt64(1), UInt64(1)), (42, 100)] {
            let expected = Self.sequential(rows: rows, dim: 16, seed: seed, firstStream: first, bound: bound)
            for _ in 0..<3 {
                let tables = EmbeddingTables.uniform(rows: rows, dim: 16, seed: seed, firstStream: first, bound: bound)
                #expect(tables.map { $0.toArray() } == expected)
            }
        }
    }

    @Test("DLRM, DCNv2 and FM tables come from the shared streams (DLRM/DCNv2: stream t + 1, FM: t + 100)")
    func modelsUseTheStreams() {
        let config = DLRMConfig(denseCount: 3, tableSizes: [5, 9, 2], embeddingDim: 4, bottomHidden: [6], topHidden: [8])
        let glorot: (Int) -> Float = { (1 / Float($0)).squareRoot() }
        let expected = Self.sequential(rows: config.tableSizes, dim: 4, seed: 7, firstStream: 1, bound: glorot)
        let dlrm = DLRM(config: config, maxBatch: 4, maxIndicesPerTable: 8, seed: 7)
        #expect(dlrm.tables.map { $0.toArray() } == expected)
        let dcn = DCNv2(config: config, maxBatch: 4, maxIndicesPerTable: 8, seed: 7)
        #expect(dcn.tables.map { $0.toArray() } == expected)
        let fm = FactorizationMachine(config: config, secondOrder: true, maxBatch: 4, maxIndicesPerTable: 8, seed: 7)
        let second = Self.sequential(rows: config.tableSizes, dim: 4, seed: 7, firstStream: 100) { _ in 0.01 }
        #expect(fm.tables.suffix(3).map { $0.toArray() } == second)
    }
}
