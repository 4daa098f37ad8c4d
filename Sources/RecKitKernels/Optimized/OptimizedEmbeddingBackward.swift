import CRecKitShims
import RecKitCore

/// Fused embedding-bag backward + sparse optimizer, FBGEMM-style, without sorting.
///
/// Rows are partitioned among the pool's threads by a hash of the row id, so every row is owned by exactly one
/// thread and no two threads write the same row or accumulator. Thread t scans all positions in order, keeps
/// those it owns, aggregates their gradients per unique row in its private hash map (position order, so the
/// sums equal the reference's bit for bit), then applies the optimizer once per unique row. The result does not
/// depend on the thread count or scheduling.
enum OptimizedEmbeddingBackward {
    static func backward(table: EmbeddingTableView, state: UnsafeMutablePointer<Float>?, stateCount: Int,
                         bags: JaggedBags, mode: PoolingMode, gradOutput: MatrixView, update: SparseUpdate,
                         workspace: EmbeddingBackwardWorkspace, pool: ThreadPool) throws(KernelError) {
        try EmbeddingBackwardChecks.check(table: table, stateCount: stateCount, state: state, update: update)
        try BagValidation.validateBoundaries(bags)
        guard gradOutput.columns == table.dim, gradOutput.rows >= bags.bagCount else {
            throw .shapeMismatch("embedding gradOutput must be \(bags.bagCount)×\(table.dim)")
        }
        // Range check before any update: a bad index must not leave the table half-updated.
        let rows = UInt32(truncatingIfNeeded: table.rows)
        for p in 0..<bags.count where UInt32(bitPattern: bags.indices[p]) >= rows {
            try BagValidation.validate(bags, rows: table.rows)
        }
        let parts = bags.count >= 512 ? pool.threadCount : 1
        workspace.prepare(partitions: parts, indices: bags.count, dim: table.dim)
        let partitions = workspace.partitions
        pool.parallelFor(parts) { t in
            let ws = partitions[t]
            let unique = aggregate(owner: t, of: parts, bags: bags, mode: mode, gradOutput: gradOutput,
                                   dim: table.dim, ws: ws, prefetchRows: table.weights, prefetchState: state,
                                   stateStride: update.optimizer == .adagrad ? table.dim : 1)
            apply(unique: unique, ws: ws, table: table, state: state, update: update)
            for u in 0..<unique { ws.keys.pointer[2 * Int(ws.hashPos.pointer[u])] = -1 }
        }
    }

    @inline(__always) static func owner(_ row: Int32, _ parts: Int) -> Int {
        // Multiply-shift range reduction (Lemire) instead of `%`: an integer division per index costs ~25 cycles.
        Int((UInt64(UInt32(bitPattern: row) &* 0x85EB_CA6B) &* UInt64(parts)) >> 32)
    }

    /// Sums each owned row's gradient over its occurrences; returns the number of unique owned rows.
    static func aggregate(owner t: Int, of parts: Int, bags: JaggedBags, mode: PoolingMode,
                          gradOutput: MatrixView, dim d: Int, ws: EmbeddingBackwardWorkspace.Partition,
                          prefetchRows: UnsafeMutablePointer<Float>? = nil, prefetchState: UnsafeMutablePointer<Float>? = nil,
                          stateStride: Int = 1) -> Int {
        let keys = ws.keys.pointer, uniq = ws.rows.pointer, hpos = ws.hashPos.pointer
        let grads = ws.grads.pointer
        // Probe only as many slots as this thread's share needs (load ≤ 1/2; unused slots are always empty), so the
        // map stays small enough for L2: count the owned positions first (a cheap sequential pass).
        var owned = bags.count
        if parts > 1 {
            owned = 0
            for p in 0..<bags.count where owner(bags.indices[p], parts) == t { owned += 1 }
        }
        var slotsNeeded = 16
        while slotsNeeded < 2 * max(owned, 1) { slotsNeeded <<= 1 }
        let mask = min(slotsNeeded, ws.capacity) - 1
        let chunks = d / 16
        var unique = 0
        var start = 0
        let gLines = (d * 4 + 63) / 64
        for b in 0..<bags.bagCount {
            let end = OptimizedEmbeddingBag.bagEnd(bags, b, start)
            let s = BagValidation.scale(mode, length: end - start)
            let g = gradOutput.row(b)
            // Gradient rows are strided (one line per table in a [B, T·D] buffer): fetch a few bags ahead.
            if b + gradPrefetchBags < bags.bagCount {
                let ahead = gradOutput.row(b + gradPrefetchBags)
                for l in 0..<gLines { reckit_prefetch(ahead + l * 16) }
            }
            for p in start..<end {
                let r = bags.indices[p]
                if owner(r, parts) != t { continue }
                var h = Int((UInt32(bitPattern: r) &* 0x9E37_79B1) >> 7) & mask
                while keys[2 * h] != r && keys[2 * h] != -1 { h = (h + 1) & mask }
                let w = bags.weights?[p] ?? 1
                let f = mode == .sum ? w : w * s
                let fv = F16x(repeating: f)
                if keys[2 * h] == -1 {
                    // First occurrence: start fetching the row and its accumulator now (into L2), so the update pass
                    // finds them close; acc = 0 + g·f (the reference's first step, without a memset + reload).
                    if let prefetchRows { reckit_prefetch_l2(prefetchRows + Int(r) * d) }
                    if let prefetchState { reckit_prefetch_l2(prefetchState + Int(r) * stateStride) }
                    keys[2 * h] = r
                    keys[2 * h + 1] = Int32(unique)
                    uniq[unique] = r
                    hpos[unique] = Int32(h)
                    let acc = grads + unique * d
                    unique += 1
                    for c in 0..<chunks { store16(F16x.zero + load16(g + c * 16) * fv, acc + c * 16) }
                    for j in (chunks * 16)..<d { acc[j] = 0 + g[j] * f }
                } else {
                    let acc = grads + Int(keys[2 * h + 1]) * d
                    for c in 0..<chunks { store16(load16(acc + c * 16) + load16(g + c * 16) * fv, acc + c * 16) }
                    for j in (chunks * 16)..<d { acc[j] += g[j] * f }
                }
            }
            start = end
        }
        return unique
    }

    /// Bags to look ahead when prefetching gradient rows.
    static let gradPrefetchBags = 8

    /// Unique rows to look ahead when prefetching (≈ the misses one core keeps in flight).
    static let prefetchDistance = 48

    /// Applies the optimizer to each unique row once, prefetching rows and accumulators ahead.
    static func apply(unique: Int, ws: EmbeddingBackwardWorkspace.Partition, table: EmbeddingTableView,
                      state: UnsafeMutablePointer<Float>?, update: SparseUpdate) {
        let d = table.dim
        let rows = ws.rows.pointer, lines = (d * 4 + 63) / 64
        for u in 0..<unique {
            // Unique rows are scattered over the table: the loop is bound by two cache misses per row (row and
            // accumulator). Prefetching `prefetchDistance` rows ahead keeps enough misses in flight.
            if u + prefetchDistance < unique {
                let ahead = Int(rows[u + prefetchDistance])
                let p = table.weights + ahead * d
                for l in 0..<lines { reckit_prefetch_write(p + l * 16) }
                if let state { reckit_prefetch_write(state + (update.optimizer == .adagrad ? ahead * d : ahead)) }
            }
            applyRow(Int(rows[u]), grad: ws.grads.pointer + u * d, table: table, state: state, update: update)
        }
    }

    /// One row's update from its aggregated gradient `g` (D floats, modified when weight decay is on).
    /// See `SparseOptimizerKind` for the rules.
    @inline(__always)
    static func applyRow(_ r: Int, grad g: UnsafeMutablePointer<Float>, table: EmbeddingTableView,
                         state: UnsafeMutablePointer<Float>?, update: SparseUpdate) {
        let d = table.dim, chunks = d / 16
        let lr = update.learningRate, eps = update.eps, wd = update.weightDecay
        let lrv = F16x(repeating: lr), epsv = F16x(repeating: eps), wdv = F16x(repeating: wd)
        let row = table.weights + r * d
        if wd != 0 {
            for c in 0..<chunks { store16(load16(g + c * 16) + wdv * load16(row + c * 16), g + c * 16) }
            for j in (chunks * 16)..<d { g[j] += wd * row[j] }
        }
        switch update.optimizer {
        case .sgd:
            for c in 0..<chunks { store16(load16(row + c * 16) - lrv * load16(g + c * 16), row + c * 16) }
            for j in (chunks * 16)..<d { row[j] -= lr * g[j] }
        case .adagrad:
            guard let state else { return }
            let h = state + r * d
            for c in 0..<chunks {
                let gv = load16(g + c * 16)
                let hv = load16(h + c * 16) + gv * gv
                store16(hv, h + c * 16)
                store16(load16(row + c * 16) - lrv * gv / (hv.squareRoot() + epsv), row + c * 16)
            }
            for j in (chunks * 16)..<d {
                h[j] += g[j] * g[j]
                row[j] -= lr * g[j] / (h[j].squareRoot() + eps)
            }
        case .rowWiseAdagrad:
            guard let state else { return }
            var sqv = F16x.zero
            for c in 0..<chunks { let gv = load16(g + c * 16); sqv += gv * gv }
            var sq = sqv.sum()
            for j in (chunks * 16)..<d { sq += g[j] * g[j] }
            state[r] += sq / Float(d)
            let m = lr / (state[r].squareRoot() + eps)
            let mv = F16x(repeating: m)
            for c in 0..<chunks { store16(load16(row + c * 16) - mv * load16(g + c * 16), row + c * 16) }
            for j in (chunks * 16)..<d { row[j] -= m * g[j] }
        }
    }
}
