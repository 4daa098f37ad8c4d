/// Reference twins of the table-batched kernels: the per-table references, table after table.
enum ReferenceTableBatch {
    static func forward(_ batch: TableBatch, mode: PoolingMode, output: MatrixView, pool: ThreadPool) throws(KernelError) {
        try batch.validateLayout(output)
        for t in 0..<batch.tables.count {
            do throws(KernelError) {
                try ReferenceEmbeddingBag.forward(table: batch.tables[t], bags: batch.bags[t], mode: mode,
                                                  output: output.columns(batch.columnOffsets[t], count: batch.tables[t].dim),
                                                  pool: pool)
            } catch { throw .inTable(t, error) }
        }
    }

    static func backward(_ batch: TableBatch, states: [UnsafeMutableBufferPointer<Float>], mode: PoolingMode,
                         gradOutput: MatrixView, update: SparseUpdate, workspace: EmbeddingBackwardWorkspace,
                         pool: ThreadPool) throws(KernelError) {
        try batch.validateLayout(gradOutput)
        try TableBatchChecks.check(batch, states: states, update: update)
        try batch.validateAll()
        for t in 0..<batch.tables.count {
            let table = batch.tables[t]
            do throws(KernelError) {
                try ReferenceEmbeddingBag.backward(
                    table: table, state: states[t].baseAddress, stateCount: states[t].count,
                    bags: batch.bags[t], mode: mode,
                    gradOutput: gradOutput.columns(batch.columnOffsets[t], count: table.dim),
                    update: update, workspace: workspace, pool: pool)
            } catch { throw .inTable(t, error) }
        }
    }
}

enum TableBatchChecks {
    /// One state buffer per table, of exactly `stateCount(rows:dim:)` floats (empty for SGD).
    static func check(_ batch: TableBatch, states: [UnsafeMutableBufferPointer<Float>], update: SparseUpdate) throws(KernelError) {
        guard states.count == batch.tables.count else {
            throw .shapeMismatch("\(states.count) optimizer states for \(batch.tables.count) tables")
        }
        for t in 0..<batch.tables.count {
            let table = batch.tables[t]
            let need = update.optimizer.stateCount(rows: table.rows, dim: table.dim)
            if need > 0 && (states[t].baseAddress == nil || states[t].count != need) {
                throw .inTable(t, .optimizerStateMismatch(expected: need, got: states[t].count))
            }
        }
    }
}
