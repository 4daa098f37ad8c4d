import RecKitCore
import RecKitKernels

/// A table's rows in RAM as fp32 (R × D, row-major, huge pages from 4 MiB) with its sparse optimizer's state:
/// Adagrad R × D, row-wise Adagrad R, SGD none. Every row is addressable, so `rows(for:)` returns the whole table
/// and never rewrites ids.
public final class DenseRowStorage: RowStorage, @unchecked Sendable {
    public let rows: Int
    public let dim: Int
    public let optimizer: SparseOptimizerKind?
    /// R × D.
    public let weights: AlignedBuffer<Float>
    /// The optimizer's accumulators (`optimizer.stateCount(rows:dim:)` floats).
    public let state: AlignedBuffer<Float>

    /// Zero-filled rows (fresh pages) and state; fill with `TableFill` or a checkpoint.
    public init(rows: Int, dim: Int, optimizer: SparseOptimizerKind?) {
        self.rows = rows; self.dim = dim; self.optimizer = optimizer
        weights = AlignedBuffer(count: rows * dim)
        state = AlignedBuffer(count: optimizer?.stateCount(rows: rows, dim: dim) ?? 0)
    }

    public func stateTensors(prefix: String) -> [StateTensor] {
        var out = [StateTensor(name: prefix + ".weight", shape: [rows, dim], role: .parameter, buffer: weights)]
        if let shape = optimizer?.stateShape(rows: rows, dim: dim) {
            out.append(StateTensor(name: prefix + ".adagrad_sum", shape: shape, role: .optimizerState, buffer: state))
        }
        return out
    }

    public func rows(for ids: UnsafeMutableBufferPointer<Int64>) throws(EmbeddingError) -> ResolvedRows {
        .float(EmbeddingTableView(weights: weights.pointer, rows: rows, dim: dim), state: state.buffer)
    }

    public func finishBatch(updated: Bool) {}
}
