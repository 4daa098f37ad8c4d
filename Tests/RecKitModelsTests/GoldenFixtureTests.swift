import Foundation
import RecKitCore
import RecKitKernels
@testable import RecKitModels
import RecKitTestSupport
import Testing

/// Compares RecKit's models with PyTorch on tiny fixed problems. The fixtures (Fixtures/*.json, version 1) are
/// written by benchmarks/pytorch/golden_fixtures.py from an independent autograd implementation.
@Suite("Golden fixtures from PyTorch")
struct GoldenFixtureTests {
    struct Fixture: Decodable {
        struct Batch: Decodable { var dense: [Float]; var ids: [[Int32]]; var offsets: [[Int32]]; var labels: [Float] }
        struct Params: Decodable { var dense: [[Float]]; var tables: [[Float]] }
        struct Rowwise: Decodable { var tables: [Float]; var state: [Float] }
        var version: Int
        var model: String
        var config: DLRMConfig
        var lr: Float
        var eps: Float
        var batch: Batch
        var `init`: Params
        var logits: [Float]
        var loss: Double
        var grads: Params
        var after_sgd: Params
        var after_rowwise_adagrad: [Rowwise]
    }

    static let tolerance = Tolerance(rtol: 1e-4, atol: 2e-6, reason: "independent implementation: other summation orders")
    static let pool = ThreadPool(threads: 2)

    static func load(_ name: String) throws -> Fixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name).json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    static func model(_ f: Fixture) throws -> any CTRModel {
        let m = try #require(makeCTRModel(kind: f.model, config: f.config, maxBatch: 8, maxIndicesPerTable: 32, seed: 1))
        #expect(m.denseParameters.count == f.`init`.dense.count && m.tables.count == f.`init`.tables.count)
        for (p, v) in zip(m.denseParameters.map(\.0), f.`init`.dense) {
            #expect(p.count == v.count)
            v.withUnsafeBufferPointer { p.pointer.update(from: $0.baseAddress!, count: min(v.count, p.count)) }
        }
        for (t, v) in zip(m.tables, f.`init`.tables) { v.withUnsafeBufferPointer { t.pointer.update(from: $0.baseAddress!, count: v.count) } }
        return m
    }

    static func run(_ m: any CTRModel, _ f: Fixture) throws -> Double {
        let kjt = KeyedJaggedTensor(keys: f.batch.ids.indices.map { "t\($0)" }, values: f.batch.ids, offsets: f.batch.offsets,
                                    weights: f.batch.ids.map { _ in [] })
        return try m.forward(dense: f.batch.dense, sparse: kjt, labels: f.batch.labels, pool: pool)
    }

    @Test("logits, loss, gradients and one SGD / row-wise Adagrad step match PyTorch", arguments: ["dlrm", "dcnv2"])
    func matchesPyTorch(name: String) throws {
        let f = try Self.load(name)
        #expect(f.version == 1)
        let m = try Self.model(f)
        let loss = try Self.run(m, f)
        assertClose(loss, f.loss, Self.tolerance, "\(name) loss")
        assertClose(m.lastLogits, f.logits, Self.tolerance, "\(name) logits")
        m.zeroGrad()
        try m.backward(dense: f.batch.dense, update: SparseUpdate(optimizer: .sgd, learningRate: f.lr), pool: Self.pool)
        for (i, (p, g)) in m.denseParameters.enumerated() {
            assertClose(g.toArray(), f.grads.dense[i], Self.tolerance, "\(name) dense grad \(i)")
            let stepped = zip(p.toArray(), g.toArray()).map { $0 - f.lr * $1 }
            assertClose(stepped, f.after_sgd.dense[i], Self.tolerance, "\(name) dense after SGD \(i)")
        }
        for (i, t) in m.tables.enumerated() { assertClose(t.toArray(), f.after_sgd.tables[i], Self.tolerance, "\(name) table \(i) after SGD") }

        let r = try Self.model(f)
        _ = try Self.run(r, f)
        try r.backward(dense: f.batch.dense, update: SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: f.lr, eps: f.eps), pool: Self.pool)
        for (i, t) in r.tables.enumerated() {
            assertClose(t.toArray(), f.after_rowwise_adagrad[i].tables, Self.tolerance, "\(name) table \(i) after row-wise Adagrad")
            assertClose(r.states[i].toArray(), f.after_rowwise_adagrad[i].state, Self.tolerance, "\(name) accumulator \(i)")
        }
    }
}
