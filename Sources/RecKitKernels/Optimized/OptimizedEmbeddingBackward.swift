import CRecKitShims
import RecKitCore

/// Fused embedding-bag backward + sparse optimizer, FBGEMM-style, without sorting.
///
/// Rows are partitioned among the pool's threads by a hash of the row's 16-row block, so every row is owned by
/// exactly one thread and no two threads write the same row, accumulator or cache line. Thread t scans all positions in order, keeps
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
        let rows = UInt64(truncatingIfNeeded: table.rows)
        for p in 0..<bags.count where UInt64(bitPattern: bags.indices[p]) >= rows {
            try BagValidation.validate(bags, rows: table.rows)
        }
        let parts = bags.count >= 512 ? pool.threadCount : 1
        workspace.prepare(partitions: parts, indices: bags.count, dim: table.dim)
        let partitions = workspace.partitions
        pool.parallelFor(parts) { t in
            updateOwnedRows(owner: t, of: parts, table: table, state: state, bags: bags, mode: mode,
                            gradOutput: gradOutput, update: update, ws: partitions[t])
        }
    }

    /// One owner's share of a table: aggregate the gradients of the rows `owner` owns, apply the optimizer once per
    /// unique row, and leave the partition's hash map empty for the next call. Used by the single-table and the
    /// table-batched backward alike.
    static func updateOwnedRows(owner: Int, of parts: Int, table: EmbeddingTableView, state: UnsafeMutablePointer<Float>?,
                                bags: JaggedBags, mode: PoolingMode, gradOutput: MatrixView, update: SparseUpdate,
                                ws: EmbeddingBackwardWorkspace.Partition) {
        // Row ids of tables under 2³² rows fit the compact map (4-byte key + 4-byte slot, as before 64-bit ids: the
        // map of a batch's table stays in L1/L2); larger tables use 8-byte keys.
        if table.rows <= Int(UInt32.max) {
            let unique = aggregate(owner: owner, of: parts, bags: bags, mode: mode, gradOutput: gradOutput, dim: table.dim, ws: ws,
                                   keys: ws.keys32(UInt32.self))
            apply(unique: unique, ws: ws, table: table, state: state, update: update)
            let keys = ws.keys32(UInt32.self)
            for u in 0..<unique { keys[2 * Int(ws.hashPos.pointer[u])] = .max }
        } else {
            let unique = aggregate(owner: owner, of: parts, bags: bags, mode: mode, gradOutput: gradOutput, dim: table.dim, ws: ws,
                                   keys: ws.keys64(UInt64.self))
            apply(unique: unique, ws: ws, table: table, state: state, update: update)
            let keys = ws.keys64(UInt64.self)
            for u in 0..<unique { keys[2 * Int(ws.hashPos.pointer[u])] = .max }
        }
    }

    /// The thread that owns `row`. Ownership goes by blocks of 16 consecutive rows: 16 rows span 64·D bytes of
    /// weights and 64 bytes of row-wise state, whole cache lines for any D, so two threads never write the same
    /// line (hashing single rows made them fight over the state lines and ran 2 threads slower than 1).
    @inline(__always) static func owner(_ row: Int64, _ parts: Int) -> Int {
        // Multiply-shift range reduction (Lemire) instead of `%`: an integer division per index costs ~25 cycles.
        let block = UInt32(truncatingIfNeeded: (UInt64(bitPattern: row) >> 4) ^ (UInt64(bitPattern: row) >> 36))
        return Int((UInt64(block &* 0x85EB_CA6B) &* UInt64(parts)) >> 32)
    }

    /// Sums each owned row's gradient over its occurrences; returns the number of unique owned rows.
    ///
    /// Two passes. The first lists the positions this thread owns (and their bags) without a branch: with two
    /// threads ownership is a coin flip per position, and a branch on it mispredicted half the time — three such
    /// branches per position cost more than the hashing and made 2 threads no faster than 1. The second walks only
    /// the owned positions, in position order, with the hash slot and gradient row of a later position prefetched.
    ///
    /// The map's entries are pairs [row, unique slot] of `K` (`K.max` = empty), side by side: one cache line per probe.
    @inline(__always)
    static func aggregate<K: FixedWidthInteger & UnsignedInteger>(
        owner t: Int, of parts: Int, bags: JaggedBags, mode: PoolingMode, gradOutput: MatrixView, dim d: Int,
        ws: EmbeddingBackwardWorkspace.Partition, keys: UnsafeMutablePointer<K>
    ) -> Int {
        let uniq = ws.rows.pointer, hpos = ws.hashPos.pointer
        let grads = ws.grads.pointer
        let owned = ownedPositions(t, of: parts, bags, into: ws.positions.pointer, bags: ws.bagOf.pointer)
        let positions = ws.positions.pointer, bagOf = ws.bagOf.pointer, indices = bags.indices
        // Load between 1/3 and 2/3 (unused slots are always empty): linear probes stay within a line or two, and
        // the map (8 B per slot) stays in L2 beside the gradient rows.
        var slotsNeeded = 16
        while slotsNeeded < owned + owned / 2 + 1 { slotsNeeded <<= 1 }
        let mask = min(slotsNeeded, ws.capacity) - 1
        let chunks = d / 16
        let gLines = (d * 4 + 63) / 64
        var unique = 0
        var meanBag = -1, meanScale: Float = 1  // mean pooling: the scale of the current bag, computed once per bag
        for k in 0..<owned {
            if k + slotPrefetchDistance < owned {
                // The map misses L2 about once per new row, the strided gradient rows once per bag: fetch both ahead.
                let ahead = Int(positions[k + slotPrefetchDistance])
                reckit_prefetch_write(keys + 2 * (slot(indices[ahead]) & mask))
                let gAhead = gradOutput.row(Int(bagOf[k + slotPrefetchDistance]))
                for l in 0..<gLines { reckit_prefetch(gAhead + l * 16) }
            }
            let p = Int(positions[k]), b = Int(bagOf[k])
            let r = indices[p]
            let key = K(truncatingIfNeeded: r)
            var h = slot(r) & mask
            while keys[2 * h] != key && keys[2 * h] != .max { h = (h + 1) & mask }
            var f = bags.weights?[p] ?? 1
            if mode == .mean {
                if b != meanBag { meanBag = b; meanScale = BagValidation.scale(mode, length: bagLength(bags, b)) }
                f *= meanScale
            }
            let fv = F16x(repeating: f)
            let g = gradOutput.row(b)
            if keys[2 * h] == .max {
                // First occurrence: acc = 0 + g·f (the reference's first step, without a memset + reload).
                keys[2 * h] = key
                keys[2 * h + 1] = K(truncatingIfNeeded: unique)
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
        return unique
    }

    /// Number of positions in bag `b`.
    @inline(__always) static func bagLength(_ bags: JaggedBags, _ b: Int) -> Int {
        switch bags.boundaries {
        case .offsets(let o): return Int(o[b + 1] &- o[b])
        case .lengths(let l): return Int(l[b])
        }
    }

    /// Home hash slot of a row (before masking).
    @inline(__always) static func slot(_ row: Int64) -> Int {
        Int(truncatingIfNeeded: (UInt64(bitPattern: row) &* 0x9E37_79B9_7F4A_7C15) >> 40)
    }

    /// Writes the positions thread `t` owns, in order, and each one's bag; returns their count. Branch-free:
    /// every position is written, and the cursor advances by 1 only when it is owned.
    static func ownedPositions(_ t: Int, of parts: Int, _ jb: JaggedBags,
                               into positions: UnsafeMutablePointer<Int32>, bags bagOf: UnsafeMutablePointer<Int32>) -> Int {
        let indices = jb.indices
        var k = 0, start = 0
        for b in 0..<jb.bagCount {
            let end = OptimizedEmbeddingBag.bagEnd(jb, b, start)
            let b32 = Int32(truncatingIfNeeded: b)
            for p in start..<end {
                let x = UInt(bitPattern: owner(indices[p], parts) ^ t)
                positions[k] = Int32(truncatingIfNeeded: p)
                bagOf[k] = b32
                k &+= Int(truncatingIfNeeded: 1 &- ((x | (0 &- x)) >> 63))   // 1 iff owner == t
            }
            start = end
        }
        return k
    }

    /// Positions to look ahead when prefetching hash slots.
    static let slotPrefetchDistance = 16

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
