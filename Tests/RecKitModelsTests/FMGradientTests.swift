import RecKitCore
import RecKitKernels
@testable import RecKitModels
import RecKitTestSupport
import Testing

@Suite("LR and FM forward/backward")
struct FMGradientTests {
    @Test("dense and embedding gradients equal finite differences (weighted multi-hot bags included)", arguments: [false, true])
    func gradients(secondOrder: Bool) throws {
        let features = ModelHarness.features(["a", "b", "c"], [5, 7, 4])
        let config: any ModelConfiguration = secondOrder ? FMConfig(denseCount: 3, sparse: features, embeddingDim: 4)
            : LRConfig(denseCount: 3, sparse: features)
        let model = try config.makeModel(initialization: .random(seed: 4), sparseOptimizer: .sgd, quantization: nil)
        var data = TestData(seed: 44)
        let tables = ModelHarness.tables(model)
        for t in tables { for i in 0..<t.count { t.pointer[i] = data.rng.nextUniform() - 0.5 } }  // non-zero first order
        let b = 6
        let kjt = KeyedJaggedTensor(
            keys: ["a", "b", "c"],
            values: [data.ids(8, rows: 5), data.ids(6, rows: 7), data.ids(6, rows: 4)],
            offsets: [offsets(fromLengths: [1, 2, 1, 0, 3, 1]), offsets(fromLengths: [1, 1, 1, 1, 1, 1]), offsets(fromLengths: [1, 1, 1, 1, 1, 1])],
            weights: [data.floats(8, 0.5, 1.5), [], []])
        let batch = Batch(labels: [1, 0, 0, 1, 1, 0], dense: data.floats(b * 3, 0, 2), sparse: kjt)
        let ws = model.makeWorkspace(maxBatch: 8)
        let loss = { ModelHarness.loss(model, batch, ws) }
        let before = tables.map { $0.toArray() }
        let numericTables = tables.map { t in (0..<t.count).map { Float(finiteDifference(t.pointer, $0, h: 1e-2, loss)) } }
        try ModelHarness.step(model, batch, ws, SparseUpdate(optimizer: .sgd, learningRate: 1))
        for (i, t) in tables.enumerated() {
            assertClose(zip(before[i], t.toArray()).map { $0 - $1 }, numericTables[i], .finiteDifference, "table \(i)")
        }
        for t in 0..<tables.count { before[t].withUnsafeBufferPointer { tables[t].pointer.update(from: $0.baseAddress!, count: $0.count) } }
        for p in model.denseParameters {
            let numeric = (0..<p.value.count).map { Float(finiteDifference(p.value.pointer, $0, h: 1e-2, loss)) }
            assertClose(p.grad.toArray(), numeric, .finiteDifference, p.name)
        }
        #expect(tables.count == (secondOrder ? 6 : 3))
        #expect(model.kind == (secondOrder ? .fm : .lr))
    }
}
