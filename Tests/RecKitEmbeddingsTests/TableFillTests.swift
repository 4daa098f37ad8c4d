import RecKitCore
import RecKitEmbeddings
import RecKitModels
import Testing

@Suite("Embedding table initialisation")
struct TableFillTests {
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
                let tables = rows.map { AlignedBuffer<Float>(count: $0 * 16) }
                TableFill.uniform(tables, rows: rows, seed: seed, firstStream: first, bound: bound)
                #expect(tables.map { $0.toArray() } == expected)
            }
        }
    }

    @Test("DLRM, DCNv2 and FM tables come from the shared streams (DLRM/DCNv2: stream t + 1, FM: t + 100)")
    func modelsUseTheStreams() throws {
        let sparse = [SparseFeatureSpec(name: "a", rows: 5), SparseFeatureSpec(name: "b", rows: 9), SparseFeatureSpec(name: "c", rows: 2)]
        let glorot: (Int) -> Float = { (1 / Float($0)).squareRoot() }
        let expected = Self.sequential(rows: sparse.map(\.rows), dim: 4, seed: 7, firstStream: 1, bound: glorot)
        func tables(_ m: any CTRModel) -> [[Float]] {
            m.embeddingCollections.flatMap(\.storages).compactMap { ($0 as? DenseRowStorage)?.weights.toArray() }
        }
        let dlrm = try DLRMConfig(denseCount: 3, sparse: sparse, embeddingDim: 4, bottomHidden: [6], topHidden: [8])
            .makeModel(initialization: .random(seed: 7), sparseOptimizer: nil, quantization: nil)
        #expect(tables(dlrm) == expected)
        let dcn = try DCNv2Config(denseCount: 3, sparse: sparse, embeddingDim: 4, deepHidden: [8])
            .makeModel(initialization: .random(seed: 7), sparseOptimizer: nil, quantization: nil)
        #expect(tables(dcn) == expected)
        let fm = try FMConfig(denseCount: 3, sparse: sparse, embeddingDim: 4).makeModel(initialization: .random(seed: 7), sparseOptimizer: nil, quantization: nil)
        let second = Self.sequential(rows: sparse.map(\.rows), dim: 4, seed: 7, firstStream: 100) { _ in 0.01 }
        #expect(Array(tables(fm).suffix(3)) == second)
        // No initialization: nothing drawn, zero memory (a checkpoint fills it).
        let empty = try DLRMConfig(denseCount: 3, sparse: sparse, embeddingDim: 4, bottomHidden: [6], topHidden: [8])
            .makeModel(initialization: .none, sparseOptimizer: nil, quantization: nil)
        #expect(tables(empty).allSatisfy { $0.allSatisfy { $0 == 0 } })
        #expect(empty.denseParameters.allSatisfy { $0.value.toArray().allSatisfy { $0 == 0 } })
    }
}
