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
                    let rowsLimit = UInt32(truncatingIfNeeded: table.rows &- 1)
                    var ahead = first
                    for bag in range {
                        let start = Int(o[bag]), end = Int(o[bag + 1])
                        let aheadEnd = min(end + lookahead, last)
                        while ahead < aheadEnd {
                            reckit_prefetch(table.weights + Int(min(UInt32(bitPattern: bags.indices[ahead]), rowsLimit)) * table.dim)
                            ahead += 1
                        }
                        if !poolBag(table, bags, mode, start: start, end: end, out: output.row(bag) + batch.columnOffsets[t]) {
                            flag.set()
                            return
                        }
                    }
                }
            }
        }
        if flag.isSet { try batch.validateAll() }
    }

    /// out[0..<D] = scale · Σ_p w_p · row(idx[p]) over positions start..<end; false on an out-of-range index.
    @inline(__always)
    static func poolBag(_ table: EmbeddingTableView, _ bags: JaggedBags, _ mode: PoolingMode, start: Int, end: Int,
                        out: UnsafeMutablePointer<Float>) -> Bool {
        let d = table.dim, chunks = d / 16, w = table.weights, idx = bags.indices
        let rows = UInt32(truncatingIfNeeded: table.rows)
        for p in start..<end where UInt32(bitPattern: idx[p]) >= rows { return false }
        let s = BagValidation.scale(mode, length: end - start)
        for c in 0..<chunks {
            var acc = F16x.zero
            if let wt = bags.weights {
                for p in start..<end { acc += F16x(repeating: wt[p]) * load16(w + Int(idx[p]) * d + c * 16) }
            } else {
                for p in start..<end { acc += load16(w + Int(idx[p]) * d + c * 16) }
            }
            store16(mode == .sum ? acc : acc * F16x(repeating: s), out + c * 16)
        }
        for j in (chunks * 16)..<d {
            var acc: Float = 0
            for p in start..<end { acc += (bags.weights?[p] ?? 1) * w[Int(idx[p]) * d + j] }
            out[j] = mode == .sum ? acc : acc * s
        }
        return true
    }
}
