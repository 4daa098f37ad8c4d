import RecKitCore
import RecKitEmbeddings
import RecKitKernels
@testable import RecKitModels
import RecKitTestSupport
import Testing

@Suite("DLRM forward/backward")
struct DLRMGradientTests {
    static func tiny(seed: UInt64 = 1, optimizer: SparseOptimizerKind = .sgd) throws -> (DLRM, Batch) {
        let config = DLRMConfig(denseCount: 3, sparse: ModelHarness.features(["a", "b"], [5, 7]), embeddingDim: 4, bottomHidden: [6], topHidden: [8])
        let model = try DLRM(config: config, initialization: .random(seed: seed), sparseOptimizer: optimizer)
        var data = TestData(seed: seed + 10)
        let b = 6
        let dense = data.floats(b * 3, 0, 2)
        let lengths0: [Int32] = [1, 2, 1, 0, 3, 1], lengths1: [Int32] = [1, 1, 1, 1, 1, 1]
        let kjt = KeyedJaggedTensor(keys: ["a", "b"], values: [data.ids(8, rows: 5), data.ids(6, rows: 7)],
                                    offsets: [offsets(fromLengths: lengths0), offsets(fromLengths: lengths1)], weights: [[], []])
        return (model, Batch(labels: [1, 0, 0, 1, 1, 0], dense: dense, sparse: kjt))
    }

    @Test("dense gradients of every MLP parameter equal finite differences of the loss")
    func denseGradients() throws {
        let (model, batch) = try Self.tiny()
        let ws = model.makeWorkspace(maxBatch: 8)
        // SGD with lr 0 leaves the tables as they are, so finite differences below see the same model.
        try ModelHarness.step(model, batch, ws, SparseUpdate(optimizer: .sgd, learningRate: 0))
        let probe = model.makeWorkspace(maxBatch: 8)
        for p in model.denseParameters {
            let numeric = (0..<p.value.count).map { Float(finiteDifference(p.value.pointer, $0, h: 1e-3) { ModelHarness.loss(model, batch, probe) }) }
            assertClose(p.grad.toArray(), numeric, .finiteDifference, p.name)
        }
    }

    @Test("embedding gradients (seen through an SGD step with lr 1) equal finite differences")
    func embeddingGradients() throws {
        let (model, batch) = try Self.tiny(seed: 3)
        let ws = model.makeWorkspace(maxBatch: 8)
        let tables = ModelHarness.tables(model)
        let before = tables.map { $0.toArray() }
        let numeric = tables.map { t in (0..<t.count).map { Float(finiteDifference(t.pointer, $0, h: 1e-3) { ModelHarness.loss(model, batch, ws) }) } }
        try ModelHarness.step(model, batch, ws, SparseUpdate(optimizer: .sgd, learningRate: 1))
        for (i, t) in tables.enumerated() {
            assertClose(zip(before[i], t.toArray()).map { $0 - $1 }, numeric[i], .finiteDifference, "table \(i)")
        }
    }

    @Test("same seed, same batch: bit-identical losses and parameters after a step; loss falls with SGD")
    func determinismAndDescent() throws {
        func run() throws -> ([Double], [Float]) {
            let (model, batch) = try Self.tiny(seed: 5, optimizer: .rowWiseAdagrad)
            let ws = model.makeWorkspace(maxBatch: 8)
            var losses: [Double] = []
            for _ in 0..<20 {
                losses.append(try ModelHarness.step(model, batch, ws, SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 0.1)))
                for p in model.denseParameters { for i in 0..<p.value.count { p.value.pointer[i] -= 0.1 * p.grad.pointer[i] } }
            }
            return (losses, model.denseParameters.flatMap { $0.value.toArray() } + ModelHarness.tables(model).flatMap { $0.toArray() })
        }
        let a = try run(), b = try run()
        #expect(a.0 == b.0 && a.1 == b.1)
        #expect(a.0.last! < a.0.first! * 0.8, "losses \(a.0.first!) → \(a.0.last!)")
    }

    @Test("one model, two workspaces: concurrent-style scoring of two batches gives each batch's own logits")
    func workspacesAreIndependent() throws {
        let (model, batch) = try Self.tiny(seed: 8)
        let other = Batch(labels: [], dense: Array(batch.dense.reversed()), sparse: batch.sparse)
        let w1 = model.makeWorkspace(maxBatch: 8), w2 = model.makeWorkspace(maxBatch: 8), w3 = model.makeWorkspace(maxBatch: 8)
        try model.forward(batch, workspace: w1, mode: .inference, pool: ModelHarness.pool)
        try model.forward(other, workspace: w2, mode: .inference, pool: ModelHarness.pool)
        try model.forward(batch, workspace: w3, mode: .inference, pool: ModelHarness.pool)
        #expect(w1.lastLogits == w3.lastLogits && w1.lastLogits != w2.lastLogits)
        // No labels needed for inference; backward without a training forward is refused.
        #expect(throws: ModelError.self) { try model.backward(workspace: w1, pool: ModelHarness.pool) }
    }

    @Test("features are routed by key: reordered keys give the same logits; a missing key is a typed error naming it")
    func keyedInput() throws {
        let (model, batch) = try Self.tiny(seed: 9)
        let ws = model.makeWorkspace(maxBatch: 8)
        try model.forward(batch, workspace: ws, mode: .inference, pool: ModelHarness.pool)
        let a = ws.lastLogits
        let k = batch.sparse
        let swapped = KeyedJaggedTensor(keys: [k.keys[1], k.keys[0]], values: [k.values[1], k.values[0]],
                                        offsets: [k.offsets[1], k.offsets[0]], weights: [k.weights[1], k.weights[0]])
        try model.forward(Batch(labels: [], dense: batch.dense, sparse: swapped), workspace: ws, mode: .inference, pool: ModelHarness.pool)
        #expect(ws.lastLogits == a)
        let missing = KeyedJaggedTensor(keys: ["a", "zz"], values: k.values, offsets: k.offsets, weights: k.weights)
        do {
            try model.forward(Batch(labels: [], dense: batch.dense, sparse: missing), workspace: ws, mode: .inference, pool: ModelHarness.pool)
            Issue.record("a batch without feature b was accepted")
        } catch { #expect("\(error)".contains("'b'"), "\(error)") }
    }

    @Test("malformed jagged input is a typed shape error, never an out-of-bounds read",
          arguments: ["short offsets", "last offset", "decreasing", "weights", "dense"])
    func malformedInput(kind: String) throws {
        let (model, batch) = try Self.tiny(seed: 2)
        let ws = model.makeWorkspace(maxBatch: 8)
        var k = batch.sparse
        var dense = batch.dense
        switch kind {
        case "short offsets": k.offsets[0].removeLast()
        case "last offset": k.offsets[1][6] = 99
        case "decreasing": k.offsets[0][2] = 0; k.offsets[0][1] = 3
        case "weights": k.weights[0] = [1, 2]
        default: dense.removeLast()
        }
        #expect(throws: ModelError.self) {
            try model.forward(Batch(labels: [], dense: dense, sparse: k), workspace: ws, mode: .inference, pool: ModelHarness.pool)
        }
    }

    @Test("the Criteo Kaggle config has the reference shapes and parameter names")
    func kaggleShapes() throws {
        let c = DLRMConfig.criteoKaggle(tableSizes: Array(repeating: 10, count: 26))
        #expect(c.interactionWidth == 367)
        let m = try DLRM(config: c, initialization: .random(seed: 1), sparseOptimizer: .rowWiseAdagrad)
        #expect(m.bottom.layers.map(\.outFeatures) == [512, 256, 64, 16] && m.top.layers.map(\.inFeatures) == [367, 512, 256])
        let names = m.stateTensors().map(\.name)
        #expect(names.prefix(2) == ["bottom_mlp.0.weight", "bottom_mlp.0.bias"] && names.contains("top_mlp.2.bias"))
        #expect(names.contains("embeddings.C1.weight") && names.contains("embeddings.C26.adagrad_sum"))
        #expect(Set(names).count == names.count)
    }
}

@Suite("Linear: weights packed once for inference")
struct LinearPackedWeightTests {
    @Test("prepareForInference gives the same outputs; backward drops the packed copy so new weights are used")
    func packedOnceThenTrained() throws {
        let pool = ThreadPool(threads: 2)
        var rng: SeededRandom? = SeededRandom(seed: 21)
        let layer = Linear(40, 37, activation: .relu, rng: &rng)
        let scratch = BF16Scratch()
        let m = 70
        var data = TestData(seed: 22)
        let x = AlignedBuffer(data.floats(m * 40))
        let input = MatrixView(base: x.pointer, rows: m, columns: 40)
        func run() throws -> [Float] {
            let y = AlignedBuffer<Float>(count: m * 37)
            try layer.forward(input, MatrixView(base: y.pointer, rows: m, columns: 37), scratch: scratch, pool: pool)
            return y.toArray()
        }
        let perCall = try run()
        layer.prepareForInference()
        #expect(layer.packedWeight != nil)
        #expect(try run() == perCall, "packing once must not change the result")
        // A training step: backward, then the weights change.
        let y = AlignedBuffer(perCall), gy = AlignedBuffer(data.floats(m * 37))
        try layer.backward(input, MatrixView(base: y.pointer, rows: m, columns: 37),
                           gradOutput: MatrixView(base: gy.pointer, rows: m, columns: 37), gradInput: nil, scratch: scratch, pool: pool)
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
