import Foundation
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels
import Testing

/// The whole stack on synthetic data: synth → shards → BatchLoader → DLRM (kernels) → AUC on held-out rows.
/// The planted model bounds what is learnable; DLRM must get a good part of the way there.
@Suite("Synthetic data to a trained DLRM")
struct SynthToDLRMTests {
    @Test("DLRM learns the planted model: held-out AUC well above chance, close to the planted AUC")
    func learns() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-int-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        var o = SynthOptions(rows: 60_000, output: dir, seed: 21)
        o.tables = Array(repeating: 50, count: 10) + [2000, 500]
        o.zipf = 0.8
        o.shardRows = 10_000
        let report = try Synthesizer.run(o)
        let ds = try ShardDataset(directory: dir)
        let config = DLRMConfig(denseCount: 13, tableSizes: o.tables, embeddingDim: 8, bottomHidden: [32], topHidden: [32])
        let batch = 256
        let model = try DLRM(config: config, initialization: .random(seed: 2), sparseOptimizer: .rowWiseAdagrad)
        let ws = model.makeWorkspace(maxBatch: batch)
        let pool = ThreadPool(threads: 2)
        let update = SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 0.05)
        // Train on the first 50k rows (2 epochs), evaluate on the last 10k.
        for _ in 0..<2 {
            var opts = LoaderOptions(batchSize: batch)
            opts.dropLast = true
            opts.rows = 0..<50_000
            for b in try BatchLoader(dataset: ds, options: opts) {
                try model.forward(b, workspace: ws, mode: .training, pool: pool)
                _ = try BinaryCrossEntropy.loss(ws, labels: b.labels)
                model.zeroGrad()
                try model.backward(workspace: ws, pool: pool)
                try model.applySparseUpdate(update, workspace: ws, pool: pool)
                for p in model.denseParameters { for i in 0..<p.value.count { p.value.pointer[i] -= 0.05 * p.grad.pointer[i] } }
            }
        }
        var scores: [Float] = [], labels: [Float] = []
        var opts = LoaderOptions(batchSize: batch)
        opts.rows = 50_000..<60_000
        for b in try BatchLoader(dataset: ds, options: opts) {
            try model.forward(b, workspace: ws, mode: .inference, pool: pool)
            scores += ws.lastLogits
            labels += b.labels
        }
        let auc = try #require(exactAUC(scores: scores, labels: labels))
        print("synthetic DLRM: held-out AUC \(auc), planted-model AUC \(report.plantedAUC)")
        #expect(auc > 0.7 && auc > report.plantedAUC - 0.08, "held-out AUC \(auc), planted \(report.plantedAUC)")
    }
}
