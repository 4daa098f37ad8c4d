import RecKitCore
import RecKitKernels
@testable import RecKitModels
import RecKitTestSupport
import Testing

@Suite("DLRM forward/backward")
struct DLRMGradientTests {
    static let pool = ThreadPool(threads: 2)

    static func tiny(seed: UInt64 = 1) -> (DLRM, [Float], KeyedJaggedTensor, [Float]) {
        let config = DLRMConfig(denseCount: 3, tableSizes: [5, 7], embeddingDim: 4, bottomHidden: [6], topHidden: [8])
        let model = DLRM(config: config, maxBatch: 8, maxIndicesPerTable: 32, seed: seed)
        var data = TestData(seed: seed + 10)
        let b = 6
        let dense = data.floats(b * 3, 0, 2)
        let lengths0: [Int32] = [1, 2, 1, 0, 3, 1], lengths1: [Int32] = [1, 1, 1, 1, 1, 1]
        let kjt = KeyedJaggedTensor(keys: ["a", "b"], values: [data.ids(8, rows: 5), data.ids(6, rows: 7)],
                                    offsets: [offsets(fromLengths: lengths0), offsets(fromLengths: lengths1)], weights: [[], []])
        let labels: [Float] = [1, 0, 0, 1, 1, 0]
        return (model, dense, kjt, labels)
    }

    @Test("dense gradients of every MLP parameter equal finite differences of the loss")
    func denseGradients() throws {
        let (model, dense, kjt, labels) = Self.tiny()
        let loss = { () -> Double in (try? model.forward(dense: dense, sparse: kjt, labels: labels, pool: Self.pool)) ?? .nan }
        _ = loss()
        model.zeroGrad()
        // SGD with lr 0 leaves the tables as they are, so finite differences below see the same model.
        try model.backward(dense: dense, update: SparseUpdate(optimizer: .sgd, learningRate: 0), pool: Self.pool)
        for (k, (param, grad)) in model.denseParameters.enumerated() {
            let numeric = (0..<param.count).map { Float(finiteDifference(param.pointer, $0, h: 1e-3, loss)) }
            assertClose(grad.toArray(), numeric, .finiteDifference, "parameter \(k)")
        }
    }

    @Test("embedding gradients (seen through an SGD step with lr 1) equal finite differences")
    func embeddingGradients() throws {
        let (model, dense, kjt, labels) = Self.tiny(seed: 3)
        let loss = { () -> Double in (try? model.forward(dense: dense, sparse: kjt, labels: labels, pool: Self.pool)) ?? .nan }
        let before = model.tables.map { $0.toArray() }
        var numeric: [[Float]] = []
        for t in model.tables { numeric.append((0..<t.count).map { Float(finiteDifference(t.pointer, $0, h: 1e-3, loss)) }) }
        _ = loss()
        try model.backward(dense: dense, update: SparseUpdate(optimizer: .sgd, learningRate: 1), pool: Self.pool)
        for (i, t) in model.tables.enumerated() {
            let analytic = zip(before[i], t.toArray()).map { $0 - $1 }
            assertClose(analytic, numeric[i], .finiteDifference, "table \(i)")
        }
    }

    @Test("same seed, same batch: bit-identical losses and parameters after a step; loss falls with SGD")
    func determinismAndDescent() throws {
        func run() throws -> ([Double], [Float]) {
            let (model, dense, kjt, labels) = Self.tiny(seed: 5)
            var losses: [Double] = []
            for _ in 0..<20 {
                losses.append(try model.forward(dense: dense, sparse: kjt, labels: labels, pool: Self.pool))
                model.zeroGrad()
                try model.backward(dense: dense, update: SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 0.1), pool: Self.pool)
                for (p, g) in model.denseParameters { for i in 0..<p.count { p.pointer[i] -= 0.1 * g.pointer[i] } }
            }
            return (losses, model.denseParameters.flatMap { $0.0.toArray() } + model.tables.flatMap { $0.toArray() })
        }
        let a = try run(), b = try run()
        #expect(a.0 == b.0 && a.1 == b.1)
        #expect(a.0.last! < a.0.first! * 0.8, "losses \(a.0.first!) → \(a.0.last!)")
    }

    @Test("the Criteo Kaggle config has the reference shapes")
    func kaggleShapes() {
        let c = DLRMConfig.criteoKaggle(tableSizes: Array(repeating: 10, count: 26))
        #expect(c.interactionWidth == 367)
        let m = DLRM(config: c, maxBatch: 4, maxIndicesPerTable: 4, seed: 1)
        #expect(m.bottom.layers.map(\.outFeatures) == [512, 256, 64, 16] && m.top.layers.map(\.inFeatures) == [367, 512, 256])
    }
}

@Suite("Linear: weights packed once for inference")
struct LinearPackedWeightTests {
    @Test("prepareForInference gives the same outputs; backward drops the packed copy so new weights are used")
    func packedOnceThenTrained() throws {
        let pool = ThreadPool(threads: 2)
        var rng = SeededRandom(seed: 21)
        let layer = Linear(40, 37, activation: .relu, rng: &rng)
        let m = 70
        var data = TestData(seed: 22)
        let x = AlignedBuffer(data.floats(m * 40))
        let input = MatrixView(base: x.pointer, rows: m, columns: 40)
        func run() throws -> [Float] {
            let y = AlignedBuffer<Float>(count: m * 37)
            try layer.forward(input, MatrixView(base: y.pointer, rows: m, columns: 37), pool: pool)
            return y.toArray()
        }
        let perCall = try run()
        layer.prepareForInference()
        #expect(layer.packedWeight != nil)
        #expect(try run() == perCall, "packing once must not change the result")
        // A training step: backward, then the weights change.
        let y = AlignedBuffer(perCall), gy = AlignedBuffer(data.floats(m * 37))
        try layer.backward(input, MatrixView(base: y.pointer, rows: m, columns: 37),
                           gradOutput: MatrixView(base: gy.pointer, rows: m, columns: 37), gradInput: nil, pool: pool)
        #expect(layer.packedWeight == nil)
        for i in 0..<layer.weight.count { layer.weight.pointer[i] -= 0.1 * layer.gradWeight.pointer[i] }
        let updated = try run()
        let reference = AlignedBuffer<Float>(count: m * 37)
        KernelRegistry.linearForward.reference(LinearForwardArguments(
            input: input, weight: layer.weight.pointer, bias: layer.bias.pointer,
            output: MatrixView(base: reference.pointer, rows: m, columns: 37), activation: .relu), pool)
        assertClose(updated, reference.toArray(), .blas(k: 40), "forward after the update")
        #expect(updated != perCall)
    }
}
