import Foundation
import RecKitCore
import RecKitKernels
@testable import RecKitModels
import RecKitTraining
import RecKitTestSupport
import Testing

/// Compares RecKit's models and optimizers with PyTorch on tiny fixed problems. The fixtures (Fixtures/*.json,
/// version 2) are written by benchmarks/pytorch/golden_fixtures.py from an independent autograd implementation and
/// torch.optim.
@Suite("Golden fixtures from PyTorch")
struct GoldenFixtureTests {
    struct Fixture: Decodable {
        struct Batch: Decodable { var dense: [Float]; var ids: [[Int64]]; var offsets: [[Int32]]; var labels: [Float] }
        struct Config: Decodable {
            var denseCount: Int, tableSizes: [Int], embeddingDim: Int, bottomHidden: [Int], topHidden: [Int]
            var includeDiagonal: Bool?, crossLayers: Int?, crossRank: Int?, crossParallel: Bool?
        }
        struct Params: Decodable { var dense: [[Float]]; var tables: [[Float]] }
        struct Rowwise: Decodable { var tables: [Float]; var state: [Float] }
        var version: Int
        var model: String
        var config: Config
        var lr: Float
        var eps: Float
        var batch: Batch
        var `init`: Params
        var logits: [Float]
        var loss: Double
        var grads: Params
        var after_sgd: Params
        var after_rowwise_adagrad: [Rowwise]
        var dense_after_two_steps: [String: [[Float]]]
        var optimizer_weight_decay: Float
    }

    static let tolerance = Tolerance(rtol: 1e-4, atol: 2e-6, reason: "independent implementation: other summation orders")

    static func load(_ name: String) throws -> Fixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name).json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    static func model(_ f: Fixture, optimizer: SparseOptimizerKind) throws -> any CTRModel {
        let c = f.config
        let sparse = c.tableSizes.enumerated().map { SparseFeatureSpec(name: "t\($0.offset)", rows: $0.element) }
        let config: any ModelConfiguration = f.model == "dlrm"
            ? DLRMConfig(denseCount: c.denseCount, sparse: sparse, embeddingDim: c.embeddingDim, bottomHidden: c.bottomHidden,
                         topHidden: c.topHidden, includeDiagonal: c.includeDiagonal ?? false)
            : DCNv2Config(denseCount: c.denseCount, sparse: sparse, embeddingDim: c.embeddingDim, deepHidden: c.topHidden,
                          crossLayers: c.crossLayers ?? 3, crossRank: c.crossRank, parallel: c.crossParallel ?? false)
        let m = try config.makeModel(initialization: .none, sparseOptimizer: optimizer, quantization: nil)
        #expect(m.denseParameters.count == f.`init`.dense.count && ModelHarness.tables(m).count == f.`init`.tables.count)
        for (p, v) in zip(m.denseParameters.map(\.value), f.`init`.dense) {
            #expect(p.count == v.count)
            v.withUnsafeBufferPointer { p.pointer.update(from: $0.baseAddress!, count: min(v.count, p.count)) }
        }
        for (t, v) in zip(ModelHarness.tables(m), f.`init`.tables) { v.withUnsafeBufferPointer { t.pointer.update(from: $0.baseAddress!, count: v.count) } }
        return m
    }

    static func batch(_ f: Fixture) -> Batch {
        Batch(labels: f.batch.labels, dense: f.batch.dense,
              sparse: KeyedJaggedTensor(keys: f.batch.ids.indices.map { "t\($0)" }, values: f.batch.ids, offsets: f.batch.offsets,
                                        weights: f.batch.ids.map { _ in [] }))
    }

    @Test("logits, loss, gradients and one SGD / row-wise Adagrad step match PyTorch", arguments: ["dlrm", "dcnv2"])
    func matchesPyTorch(name: String) throws {
        let f = try Self.load(name)
        #expect(f.version == 2)
        let m = try Self.model(f, optimizer: .sgd)
        let ws = m.makeWorkspace(maxBatch: 8)
        let loss = try ModelHarness.step(m, Self.batch(f), ws, SparseUpdate(optimizer: .sgd, learningRate: f.lr))
        assertClose(loss, f.loss, Self.tolerance, "\(name) loss")
        assertClose(ws.lastLogits, f.logits, Self.tolerance, "\(name) logits")
        for (i, p) in m.denseParameters.enumerated() { assertClose(p.grad.toArray(), f.grads.dense[i], Self.tolerance, "\(name) dense grad \(i)") }
        // RecKit's own SGD on RecKit's gradients against torch's step.
        try DenseOptimizer(kind: .sgd).apply(m.denseParameters, lr: f.lr)
        for (i, p) in m.denseParameters.enumerated() { assertClose(p.value.toArray(), f.after_sgd.dense[i], Self.tolerance, "\(name) dense after SGD \(i)") }
        for (i, t) in ModelHarness.tables(m).enumerated() { assertClose(t.toArray(), f.after_sgd.tables[i], Self.tolerance, "\(name) table \(i) after SGD") }

        let r = try Self.model(f, optimizer: .rowWiseAdagrad)
        try ModelHarness.step(r, Self.batch(f), r.makeWorkspace(maxBatch: 8), SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: f.lr, eps: f.eps))
        for (i, t) in ModelHarness.tables(r).enumerated() {
            assertClose(t.toArray(), f.after_rowwise_adagrad[i].tables, Self.tolerance, "\(name) table \(i) after row-wise Adagrad")
            assertClose(ModelHarness.states(r)[i].toArray(), f.after_rowwise_adagrad[i].state, Self.tolerance, "\(name) accumulator \(i)")
        }
    }

    @Test("two steps of RecKit's SGD, Adagrad, Adam and AdamW (weight decay 0.01) match torch.optim's",
          arguments: [("dlrm", DenseOptimizerKind.sgd), ("dlrm", .adagrad), ("dlrm", .adam), ("dlrm", .adamw),
                      ("dcnv2", .sgd), ("dcnv2", .adagrad), ("dcnv2", .adam), ("dcnv2", .adamw)])
    func denseOptimizers(name: String, kind: DenseOptimizerKind) throws {
        let f = try Self.load(name)
        let m = try Self.model(f, optimizer: .sgd)
        try ModelHarness.step(m, Self.batch(f), m.makeWorkspace(maxBatch: 8), SparseUpdate(optimizer: .sgd, learningRate: 0))
        let opt = DenseOptimizer(kind: kind, weightDecay: f.optimizer_weight_decay)
        for _ in 0..<2 { try opt.apply(m.denseParameters, lr: f.lr) }
        let expected = try #require(f.dense_after_two_steps[kind.rawValue])
        for (i, p) in m.denseParameters.enumerated() {
            assertClose(p.value.toArray(), expected[i], Self.tolerance, "\(name) \(kind) parameter \(p.name) after two steps")
        }
    }
}
