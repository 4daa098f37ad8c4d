import CRecKitShims
import RecKitCore

extension OptimizedTableBatch {
    static func backward(_ batch: TableBatch, states: [UnsafeMutableBufferPointer<Float>], mode: PoolingMode,
                         gradOutput: MatrixView, update: SparseUpdate, workspace: EmbeddingBackwardWorkspace,
                         pool: ThreadPool) throws(KernelError) {
        try batch.validateLayout(gradOutput)
        try TableBatchChecks.check(batch, states: states, update: update)
        // Full validation before any update: a bad index must not leave some tables updated.
        try batch.validateAll()
        let b = batch.bagCount, tc = batch.tables.count
        let lookups = batch.bags.reduce(0) { $0 + $1.count }
        if b == 0 || tc == 0 || lookups == 0 { return }
        // Each thread walks the tables in order and, within each, handles the rows it owns with the single-table
        // machinery (compact per-table hash map, prefetched updates). One region, no barrier between tables: the
        // ownership of a (table, row) never depends on another thread's progress.
        let parts = lookups >= 512 ? pool.threadCount : 1
        let maxCount = batch.bags.map(\.count).max() ?? 0
        workspace.prepare(partitions: parts, indices: maxCount, dim: batch.tables.map(\.dim).max() ?? 1)
        let partitions = workspace.partitions
        pool.parallelFor(parts) { t in
            let ws = partitions[t]
            for tb in 0..<tc {
                let table = batch.tables[tb]
                let grad = gradOutput.columns(batch.columnOffsets[tb], count: table.dim)
                let unique = OptimizedEmbeddingBackward.aggregate(
                    owner: t, of: parts, bags: batch.bags[tb], mode: mode, gradOutput: grad, dim: table.dim, ws: ws,
                    prefetchRows: table.weights, prefetchState: states[tb].baseAddress,
                    stateStride: update.optimizer == .adagrad ? table.dim : 1)
                OptimizedEmbeddingBackward.apply(unique: unique, ws: ws, table: table, state: states[tb].baseAddress, update: update)
                for u in 0..<unique { ws.keys.pointer[2 * Int(ws.hashPos.pointer[u])] = -1 }
            }
        }
    }
}
