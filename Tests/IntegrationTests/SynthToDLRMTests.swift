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
        let model = DLRM(config: config, maxBatch: batch, maxIndicesPerTable: batch, seed: 2)
        let pool = ThreadPool(threads: 2)
        let update = SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 0.05)
        // Train on the first 50k rows (2 epochs), evaluate on the last 10k.
        for _ in 0..<2 {
            var opts = LoaderOptions(batchSize: batch)
            opts.dropLast = true
            let loader = try BatchLoader(dataset: ds, options: opts)
            var seen = 0
            for b in loader {
                if seen >= 50_000 { break }
                seen += b.size
                _ = try model.forward(dense: b.dense, sparse: b.sparse, labels: b.labels, pool: pool)
                model.zeroGrad()
                try model.backward(dense: b.dense, update: update, pool: pool)
                for (p, g) in model.denseParameters { for i in 0..<p.count { p.pointer[i] -= 0.05 * g.pointer[i] } }
            }
        }
        var scores: [Float] = [], labels: [Float] = []
        let loader = try BatchLoader(dataset: ds, options: LoaderOptions(batchSize: batch))
        var row = 0
        for b in loader {
            defer { row += b.size }
            if row < 50_000 { continue }
            _ = try model.forward(dense: b.dense, sparse: b.sparse, labels: b.labels, pool: pool)
            scores += model.lastLogits
            labels += b.labels
        }
        let auc = try #require(exactAUC(scores: scores, labels: labels))
        print("synthetic DLRM: held-out AUC \(auc), planted-model AUC \(report.plantedAUC)")
        #expect(auc > 0.7 && auc > report.plantedAUC - 0.08, "held-out AUC \(auc), planted \(report.plantedAUC)")
    }
}
