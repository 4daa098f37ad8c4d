import CRecKitShims
import RecKitCore

/// Table-batched embedding bags: one parallel region over bags for all T tables.
///
/// Forward: tasks own contiguous bag ranges and pool every table's bags in that range, rows prefetched a fixed
/// number of lookups ahead; one parallel region instead of T.
/// Backward: one region; each thread walks the tables and updates the rows it owns (see the backward's notes).
enum OptimizedTableBatch {
    static func forward(_ batch: TableBatch, mode: PoolingMode, output: MatrixView, pool: ThreadPool) throws(KernelError) {
        try batch.validateLayout(output)
        for t in 0..<batch.tables.count {
            do throws(KernelError) { try BagValidation.validateBoundaries(batch.bags[t]) } catch { throw .inTable(t, error) }
        }
        let b = batch.bagCount, tc = batch.tables.count
        if b == 0 || tc == 0 { return }
        let offsets = batch.resolvedOffsets()
        let lookahead = OptimizedEmbeddingBag.prefetchDistance
        let flag = FailureFlag()
        let parts = ThreadPool.split(b, into: pool.threadCount == 1 ? 1 : min(b, pool.threadCount * 8))
        offsets.withUnsafeBufferPointer { ob in
            let off = ob.baseAddress!
            pool.parallelFor(parts.count) { task in
                let range = parts[task]
                // Table-major inside the task: consecutive lookups stay in one table and the prefetcher runs a
                // fixed number of lookups ahead, as in the single-table kernel.
                for t in 0..<tc {
                    let o = off + t * (b + 1)
                    let table = batch.tables[t], bags = batch.bags[t]
                    let first = Int(o[range.lowerBound]), last = Int(o[range.upperBound])
                    let rowsLimit = UInt64(truncatingIfNeeded: table.rows &- 1)
                    var ahead = first
                    for bag in range {
                        let start = Int(o[bag]), end = Int(o[bag + 1])
                        let aheadEnd = min(end + lookahead, last)
                        while ahead < aheadEnd {
                            reckit_prefetch(table.weights + Int(truncatingIfNeeded: min(UInt64(bitPattern: bags.indices[ahead]), rowsLimit)) * table.dim)
                            ahead += 1
                        }
                        if !OptimizedEmbeddingBag.poolBag(table, bags, mode, start: start, end: end, out: output.row(bag) + batch.columnOffsets[t]) {
                            flag.set()
                            return
                        }
                    }
                }
            }
        }
        if flag.isSet { try batch.validateAll() }
    }
}
