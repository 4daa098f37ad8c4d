import RecKitCore
import RecKitKernels
@testable import RecKitModels
import RecKitTestSupport
import Testing

@Suite("DCNv2 forward/backward")
struct DCNv2GradientTests {
    @Test("stacked/parallel × full/low rank: every gradient equals finite differences",
          arguments: [(false, nil), (false, 3), (true, nil), (true, 2)] as [(Bool, Int?)])
    func gradients(parallel: Bool, rank: Int?) throws {
        let config = DCNv2Config(denseCount: 2, sparse: ModelHarness.features(["a", "b"], [5, 6]), embeddingDim: 3, deepHidden: [6],
                                 crossLayers: 2, crossRank: rank, parallel: parallel)
        let model = try DCNv2(config: config, initialization: .random(seed: 7), sparseOptimizer: .sgd)
        var data = TestData(seed: 70)
        let b = 5
        let kjt = KeyedJaggedTensor(keys: ["a", "b"], values: [data.ids(7, rows: 5), data.ids(5, rows: 6)],
                                    offsets: [offsets(fromLengths: [1, 2, 1, 0, 3]), offsets(fromLengths: [1, 1, 1, 1, 1])],
                                    weights: [[], []])
        let batch = Batch(labels: [1, 0, 1, 1, 0], dense: data.floats(b * 2, 0, 1), sparse: kjt)
        let ws = model.makeWorkspace(maxBatch: 8)
        let loss = { ModelHarness.loss(model, batch, ws) }
        let tables = ModelHarness.tables(model)
        let before = tables.map { $0.toArray() }
        let numericTables = tables.map { t in (0..<t.count).map { Float(finiteDifference(t.pointer, $0, h: 1e-3, loss)) } }
        let numericDense = model.denseParameters.map { p in (0..<p.value.count).map { Float(finiteDifference(p.value.pointer, $0, h: 1e-3, loss)) } }
        try ModelHarness.step(model, batch, ws, SparseUpdate(optimizer: .sgd, learningRate: 1))
        for (i, t) in tables.enumerated() {
            assertClose(zip(before[i], t.toArray()).map { $0 - $1 }, numericTables[i], .finiteDifference, "table \(i)")
        }
        for (k, p) in model.denseParameters.enumerated() {
            assertClose(p.grad.toArray(), numericDense[k], .finiteDifference, p.name)
        }
    }
}
