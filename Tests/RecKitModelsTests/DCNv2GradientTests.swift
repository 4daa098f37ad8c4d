import RecKitCore
import RecKitKernels
@testable import RecKitModels
import RecKitTestSupport
import Testing

@Suite("DCNv2 forward/backward")
struct DCNv2GradientTests {
    static let pool = ThreadPool(threads: 2)

    @Test("stacked/parallel × full/low rank: every gradient equals finite differences",
          arguments: [(false, nil), (false, 3), (true, nil), (true, 2)] as [(Bool, Int?)])
    func gradients(parallel: Bool, rank: Int?) throws {
        let config = DLRMConfig(denseCount: 2, tableSizes: [5, 6], embeddingDim: 3, bottomHidden: [], topHidden: [6])
        let model = DCNv2(config: config, crossLayers: 2, rank: rank, parallel: parallel, maxBatch: 8, maxIndicesPerTable: 16, seed: 7)
        var data = TestData(seed: 70)
        let b = 5
        let dense = data.floats(b * 2, 0, 1)
        let kjt = KeyedJaggedTensor(keys: ["a", "b"], values: [data.ids(7, rows: 5), data.ids(5, rows: 6)],
                                    offsets: [offsets(fromLengths: [1, 2, 1, 0, 3]), offsets(fromLengths: [1, 1, 1, 1, 1])],
                                    weights: [[], []])
        let labels: [Float] = [1, 0, 1, 1, 0]
        let loss = { () -> Double in (try? model.forward(dense: dense, sparse: kjt, labels: labels, pool: Self.pool)) ?? .nan }
        let before = model.tables.map { $0.toArray() }
        let numericTables = model.tables.map { t in (0..<t.count).map { Float(finiteDifference(t.pointer, $0, h: 1e-3, loss)) } }
        let numericDense = model.denseParameters.map { p in (0..<p.0.count).map { Float(finiteDifference(p.0.pointer, $0, h: 1e-3, loss)) } }
        _ = loss()
        model.zeroGrad()
        try model.backward(dense: dense, update: SparseUpdate(optimizer: .sgd, learningRate: 1), pool: Self.pool)
        for (i, t) in model.tables.enumerated() {
            assertClose(zip(before[i], t.toArray()).map { $0 - $1 }, numericTables[i], .finiteDifference, "table \(i)")
        }
        for (k, (_, g)) in model.denseParameters.enumerated() {
            assertClose(g.toArray(), numericDense[k], .finiteDifference, "dense parameter \(k)")
        }
    }
}
