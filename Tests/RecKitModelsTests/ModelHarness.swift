import RecKitCore
import RecKitEmbeddings
import RecKitKernels
@testable import RecKitModels
import RecKitTestSupport

/// Test helpers over the model API: a loss for finite differences, one training step, the fp32 tables.
enum ModelHarness {
    static let pool = ThreadPool(threads: 2)

    /// Mean BCE of `batch` (inference forward, so nothing is kept for a backward).
    static func loss(_ m: any CTRModel, _ batch: Batch, _ ws: ModelWorkspace) -> Double {
        do {
            try m.forward(batch, workspace: ws, mode: .inference, pool: pool)
            return try BinaryCrossEntropy.loss(ws, labels: batch.labels)
        } catch { return .nan }
    }

    /// forward (training) → loss → zeroGrad → backward → sparse update; returns the loss. Dense weights are not updated.
    @discardableResult
    static func step(_ m: any CTRModel, _ batch: Batch, _ ws: ModelWorkspace, _ update: SparseUpdate) throws -> Double {
        try m.forward(batch, workspace: ws, mode: .training, pool: pool)
        let l = try BinaryCrossEntropy.loss(ws, labels: batch.labels)
        m.zeroGrad()
        try m.backward(workspace: ws, pool: pool)
        try m.applySparseUpdate(update, workspace: ws, pool: pool)
        return l
    }

    /// The fp32 tables of every collection, in order.
    static func tables(_ m: any CTRModel) -> [AlignedBuffer<Float>] {
        m.embeddingCollections.flatMap(\.storages).compactMap { ($0 as? DenseRowStorage)?.weights }
    }

    /// Their optimizer states.
    static func states(_ m: any CTRModel) -> [AlignedBuffer<Float>] {
        m.embeddingCollections.flatMap(\.storages).compactMap { ($0 as? DenseRowStorage)?.state }
    }

    static func features(_ names: [String], _ rows: [Int]) -> [SparseFeatureSpec] {
        zip(names, rows).map { SparseFeatureSpec(name: $0, rows: $1) }
    }
}
