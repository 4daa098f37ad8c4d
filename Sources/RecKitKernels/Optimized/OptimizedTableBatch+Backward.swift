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
        // One task per (table, owner): the thread that runs it handles, in that table, the rows the owner owns,
        // with the single-table machinery (owned positions, compact hash map, prefetched updates) and its own
        // slot's scratch. Tasks are handed out dynamically, so a thread that runs slower (a busy vCPU) takes fewer
        // of them instead of holding everyone up; the result does not depend on who runs what.
        let parts = lookups >= 512 ? pool.threadCount : 1
        let maxCount = batch.bags.map(\.count).max() ?? 0
        workspace.prepare(partitions: pool.threadCount, indices: maxCount, dim: batch.tables.map(\.dim).max() ?? 1)
        let partitions = workspace.partitions
        pool.parallelFor(tc * parts) { task, slot in
            let ws = partitions[slot]
            let tb = task / parts, owner = task % parts
            let table = batch.tables[tb]
            OptimizedEmbeddingBackward.updateOwnedRows(
                owner: owner, of: parts, table: table, state: states[tb].baseAddress, bags: batch.bags[tb], mode: mode,
                gradOutput: gradOutput.columns(batch.columnOffsets[tb], count: table.dim), update: update, ws: ws)
        }
    }
}
