import Foundation
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels

/// Scoring a source with a model (inference: no labels needed, nothing updated).
public enum Evaluation {
    /// Logits of every sample of `source`, in order, with their labels (empty when the data has none).
    public static func logits(_ model: any CTRModel, _ source: any BatchSource, workspace: ModelWorkspace? = nil,
                              pool: ThreadPool) throws(TrainingError) -> (logits: [Float], labels: [Float]) {
        let ws = workspace ?? model.makeWorkspace(maxBatch: 1024)
        let stream = try source.batches(epoch: 0, skip: 0)
        var logits: [Float] = [], labels: [Float] = []
        logits.reserveCapacity(source.rowCount)
        while let batch = try stream.next() {
            var start = 0
            // A rank's empty share of a global batch still runs its forward (the collectives inside it).
            var collective = (batch.globalSize ?? 0) > 0 && batch.size == 0
            while start < batch.size || collective {
                collective = false
                let end = min(batch.size, start + ws.maxBatch)
                let part = start == 0 && end == batch.size ? batch : batch.slice(start..<end, denseCount: batch.dense.count / max(batch.size, 1))
                do throws(ModelError) { try model.forward(part, workspace: ws, mode: .inference, pool: pool) } catch { throw .model(error) }
                logits.append(contentsOf: UnsafeBufferPointer(start: ws.logits.pointer, count: part.size))
                start = end
            }
            labels += batch.labels
        }
        return (logits, labels)
    }

    /// AUC, logloss, NE, calibration and accuracy of `model` on `source` (which must carry labels).
    public static func metrics(_ model: any CTRModel, _ source: any BatchSource, workspace: ModelWorkspace? = nil,
                               pool: ThreadPool) throws(TrainingError) -> BinaryMetrics {
        let (z, y) = try logits(model, source, workspace: workspace, pool: pool)
        return try metrics(logits: z, labels: y)
    }

    /// The metrics of scores already computed; refuses data without labels.
    public static func metrics(logits z: [Float], labels y: [Float]) throws(TrainingError) -> BinaryMetrics {
        guard y.count == z.count else { throw .options("the data has no labels to evaluate against (use `reckit predict`)") }
        return BinaryMetrics.compute(logits: z, labels: y)
    }

    /// Click probabilities σ(logit) of every sample of `source`, in order.
    public static func probabilities(_ model: any CTRModel, _ source: any BatchSource, pool: ThreadPool) throws(TrainingError) -> [Float] {
        try logits(model, source, pool: pool).logits.map { 1 / (1 + Float(exp(-Double($0)))) }
    }
}
