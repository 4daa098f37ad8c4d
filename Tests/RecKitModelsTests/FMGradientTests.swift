import RecKitCore
import RecKitKernels
@testable import RecKitModels
import RecKitTestSupport
import Testing

@Suite("LR and FM forward/backward")
struct FMGradientTests {
    static let pool = ThreadPool(threads: 2)

    @Test("dense and embedding gradients equal finite differences (weighted multi-hot bags included)", arguments: [false, true])
    func gradients(secondOrder: Bool) throws {
        let config = DLRMConfig(denseCount: 3, tableSizes: [5, 7, 4], embeddingDim: 4, bottomHidden: [], topHidden: [])
        let model = FactorizationMachine(config: config, secondOrder: secondOrder, maxBatch: 8, maxIndicesPerTable: 32, seed: 4)
        var data = TestData(seed: 44)
        for t in model.tables { for i in 0..<t.count { t.pointer[i] = data.rng.nextUniform() - 0.5 } }  // non-zero first order
        let b = 6
        let dense = data.floats(b * 3, 0, 2)
        let kjt = KeyedJaggedTensor(
            keys: ["a", "b", "c"],
            values: [data.ids(8, rows: 5), data.ids(6, rows: 7), data.ids(6, rows: 4)],
            offsets: [offsets(fromLengths: [1, 2, 1, 0, 3, 1]), offsets(fromLengths: [1, 1, 1, 1, 1, 1]), offsets(fromLengths: [1, 1, 1, 1, 1, 1])],
            weights: [data.floats(8, 0.5, 1.5), [], []])
        let labels: [Float] = [1, 0, 0, 1, 1, 0]
        let loss = { () -> Double in (try? model.forward(dense: dense, sparse: kjt, labels: labels, pool: Self.pool)) ?? .nan }
        let before = model.tables.map { $0.toArray() }
        let numericTables = model.tables.map { t in (0..<t.count).map { Float(finiteDifference(t.pointer, $0, h: 1e-2, loss)) } }
        _ = loss()
        model.zeroGrad()
        try model.backward(dense: dense, update: SparseUpdate(optimizer: .sgd, learningRate: 1), pool: Self.pool)
        for (i, t) in model.tables.enumerated() {
            assertClose(zip(before[i], t.toArray()).map { $0 - $1 }, numericTables[i], .finiteDifference, "table \(i)")
        }
        for t in 0..<model.tables.count { before[t].withUnsafeBufferPointer { model.tables[t].pointer.update(from: $0.baseAddress!, count: $0.count) } }
        for (k, (p, g)) in model.denseParameters.enumerated() {
            let numeric = (0..<p.count).map { Float(finiteDifference(p.pointer, $0, h: 1e-2, loss)) }
            assertClose(g.toArray(), numeric, .finiteDifference, "dense \(k)")
        }
        #expect(model.tables.count == (secondOrder ? 6 : 3))
    }
}
