import RecKitCore
import RecKitKernels

extension EmbeddingCollection {

    /// dst[0..<count] = src[0..<count], 16 lanes at a time.
    @inline(__always) func copyRow(from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
        var j = 0
        while j + 16 <= count {
            UnsafeMutableRawPointer(dst + j).storeBytes(of: UnsafeRawPointer(src + j).loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
            j += 16
        }
        while j < count { dst[j] = src[j]; j += 1 }
    }

    /// dst[0..<count] += src[0..<count], 16 lanes at a time (each lane one IEEE add, as the scalar loop).
    @inline(__always) func addRow(from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
        var j = 0
        while j + 16 <= count {
            let a = UnsafeRawPointer(dst + j).loadUnaligned(as: SIMD16<Float>.self), b = UnsafeRawPointer(src + j).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(dst + j).storeBytes(of: a + b, as: SIMD16<Float>.self)
            j += 16
        }
        while j < count { dst[j] += src[j]; j += 1 }
    }

    /// Pools every table's feature of `sparse` into its columns of `output`.
    ///
    /// - Parameters:
    ///   - sparse: the batch's sparse features (B samples); validated once here.
    ///   - deduped: RecD's distinct bags per feature of `sparse` (same order as its keys), or nil.
    ///   - output: B × W; table t writes columns `columnOffsets[t] ..< columnOffsets[t] + D_t`.
    ///   - training: keep the rows resolved for `backward` (which ends the batch); inference ends it here.
    public func forward(_ sparse: KeyedJaggedTensor, deduped: [DedupedFeature]?, workspace ws: EmbeddingWorkspace,
                        output: MatrixView, columnOffsets: [Int], training: Bool, pool: ThreadPool) throws(EmbeddingError) {
        if let exchange {
            try exchange.forward(sparse, output: output, columnOffsets: columnOffsets, training: training, pool: pool)
            return
        }
        finishPending(ws, updated: false)
        do throws(ShapeError) { try sparse.validate() } catch { throw .shape(error.message) }
        let b = sparse.batchSize
        guard columnOffsets.count == specs.count, output.rows >= b else {
            throw .shape("\(prefix): output \(output.rows) rows for \(b) samples, \(columnOffsets.count) column offsets for \(specs.count) tables")
        }
        for (t, s) in specs.enumerated() where columnOffsets[t] < 0 || columnOffsets[t] + s.dim > output.columns {
            throw .shape("\(prefix).\(s.name): columns \(columnOffsets[t])..<\(columnOffsets[t] + s.dim) outside the output's \(output.columns)")
        }
        if let deduped, deduped.count != sparse.keys.count {
            throw .shape("\(prefix): \(deduped.count) deduplicated features for \(sparse.keys.count) keys")
        }
        try route(sparse.keys, ws)
        ws.batchSize = b
        var dedupTables = 0, dedupB = 0, dedupU = 0
        ws.pooledWidth = 0
        ws.pooledRows = 0
        for t in specs.indices {
            let f = ws.route[t]
            if let d = deduped?[f], dedupPolicy.usesDistinctBags(d, values: sparse.values[f].count, batchSize: b) {
                try load(t, deduped: d, batchSize: b, ws)
                ws.pooledColumn[t] = ws.pooledWidth
                ws.pooledWidth += specs[t].dim
                ws.pooledRows = max(ws.pooledRows, ws.tables[t].bags)
                dedupTables += 1; dedupB += b; dedupU += ws.tables[t].bags
            } else {
                load(t, sparse, feature: f, ws)
                ws.pooledColumn[t] = -1
            }
        }
        try resolveRows(ws, pool: pool)
        ws.pending = true
        ws.dedupFactor = dedupTables == 0 ? 1 : Double(dedupB) / Double(max(dedupU, 1))
        ws.dedupedTables = dedupTables
        do throws(EmbeddingError) {
            try lookup(ws, output: output, columnOffsets: columnOffsets, pool: pool)
        } catch {
            finishPending(ws, updated: false)
            throw error
        }
        if !training { finishPending(ws, updated: false) }
    }

    /// Asks every table's storage for its rows of the batch (`rows(for:)`, which may rewrite the ids to slots),
    /// the tables in parallel on `pool`: a tiered table probes its cache and assigns slots to misses, work that
    /// would otherwise leave the pool's other threads idle. Tables are independent (each storage is called for one
    /// table, by one thread), so the outcome does not depend on the schedule. If any table fails, the tables that
    /// succeeded end their batch and the first failure (in table order) is thrown.
    /// In-RAM storages answer at once, so without a storage that does real work per batch (one that prefetches:
    /// a cache) the tables resolve one after the other on the calling thread (a parallel region for 26 trivial
    /// calls measured ~2% slower for in-RAM DLRM).
    private func resolveRows(_ ws: EmbeddingWorkspace, pool: ThreadPool) throws(EmbeddingError) {
        let n = specs.count
        if ws.resolvedScratch.count != n { ws.resolvedScratch = [Result<ResolvedRows, EmbeddingError>?](repeating: nil, count: n) }
        let storages = self.storages
        ws.resolvedScratch.withUnsafeMutableBufferPointer { results in
            let tables = ws.tables  // read-only here, released before `tables[t].resolved` is written (no copy-on-write)
            func resolve(_ t: Int) {
                do throws(EmbeddingError) {
                    results[t] = .success(try storages[t].rows(for: UnsafeMutableBufferPointer(start: tables[t].ids.pointer, count: tables[t].count)))
                } catch { results[t] = .failure(error) }
            }
            if pool.threadCount > 1 && storages.contains(where: { $0.prefetches }) {
                pool.parallelFor(n, resolve)
            } else {
                for t in 0..<n { resolve(t); if case .failure? = results[t] { break } }  // later tables are not asked
            }
        }
        var failure: EmbeddingError?
        for t in 0..<n { if case .failure(let e)? = ws.resolvedScratch[t] { failure = e; break } }
        for t in 0..<n {
            if case .success(let rows)? = ws.resolvedScratch[t] {
                if failure == nil { ws.tables[t].resolved = rows } else { storages[t].finishBatch(updated: false) }
            }
            ws.resolvedScratch[t] = nil
        }
        if let failure { throw failure }
    }

    /// Backward of the last training `forward` on `ws`, fused with the sparse optimizer `update`: rows change in
    /// place (through their storage), the batch ends.
    /// - Parameter gradOutput: B × W, the gradient of the forward's `output` (same columns).
    public func backward(workspace ws: EmbeddingWorkspace, gradOutput: MatrixView, columnOffsets: [Int], update: SparseUpdate,
                         pool: ThreadPool) throws(EmbeddingError) {
        if let exchange {
            try exchange.backward(gradOutput: gradOutput, columnOffsets: columnOffsets, update: update, pool: pool)
            return
        }
        guard ws.pending else { throw .shape("\(prefix): backward without a training forward on this workspace") }
        defer { finishPending(ws, updated: true) }
        let b = ws.batchSize
        guard gradOutput.rows >= b, columnOffsets.count == specs.count else {
            throw .shape("\(prefix): gradient has \(gradOutput.rows) rows for \(b) samples")
        }
        var direct: [Int] = [], dedup: [Int] = []
        var views: [EmbeddingTableView] = [], states: [UnsafeMutableBufferPointer<Float>] = []
        for t in specs.indices {
            guard case let .float(view, state)? = ws.tables[t].resolved else { throw .readOnly(table: specs[t].name) }
            guard storages[t].optimizer == update.optimizer || (update.optimizer == .sgd && storages[t].optimizer == nil) else {
                throw .invalidSpec(specs[t].name, "rows keep \(storages[t].optimizer?.rawValue ?? "no") optimizer state, the update is \(update.optimizer.rawValue)")
            }
            views.append(view); states.append(state)
            if ws.pooledColumn[t] >= 0 { dedup.append(t) } else { direct.append(t) }
        }
        if !direct.isEmpty {
            let batch = TableBatch(tables: direct.map { views[$0] }, bags: direct.map { bags(ws, $0) },
                                   columnOffsets: direct.map { columnOffsets[$0] })
            try kernel(direct) { () throws(KernelError) in
                try Kernels.tableBatchBackward(batch, states: direct.map { states[$0] }, mode: specs[direct[0]].pooling,
                                               gradOutput: gradOutput, update: update, workspace: ws.backward, pool: pool)
            }
        }
        if !dedup.isEmpty {
            // Sum each distinct bag's gradient over its copies, in sample order (one task per table keeps the order).
            let rows = ws.pooledRows, width = ws.pooledWidth
            EmbeddingWorkspace.reserve(&ws.pooledGrad, rows * width)
            let g = SendablePointer(ws.pooledGrad.pointer)
            pool.parallelFor(dedup.count) { i in
                let t = dedup[i], d = specs[t].dim, col = ws.pooledColumn[t], inverse = ws.tables[t].inverse.pointer
                for u in 0..<rows { (g.base + u * width + col).update(repeating: 0, count: d) }
                for s in 0..<b {
                    addRow(from: gradOutput.row(s) + columnOffsets[t], to: g.base + Int(inverse[s]) * width + col, count: d)
                }
            }
            let pooledGrad = MatrixView(base: ws.pooledGrad.pointer, rows: rows, columns: width)
            let batch = TableBatch(tables: dedup.map { views[$0] }, bags: dedup.map { bags(ws, $0) },
                                   columnOffsets: dedup.map { ws.pooledColumn[$0] })
            try kernel(dedup) { () throws(KernelError) in
                try Kernels.tableBatchBackward(batch, states: dedup.map { states[$0] }, mode: specs[dedup[0]].pooling,
                                               gradOutput: pooledGrad, update: update, workspace: ws.backward, pool: pool)
            }
        }
    }

    // MARK: internals

    /// Ends the pending batch of `ws`, if any.
    func finishPending(_ ws: EmbeddingWorkspace, updated: Bool) {
        guard ws.pending else { return }
        ws.pending = false
        for s in storages { s.finishBatch(updated: updated) }
    }

    /// Finds each table's feature among `keys` (cached while the keys stay the same).
    func route(_ keys: [String], _ ws: EmbeddingWorkspace) throws(EmbeddingError) {
        if keys == ws.routedKeys { return }
        var index: [String: Int] = [:]
        for (i, k) in keys.enumerated() { index[k] = i }
        for (t, s) in specs.enumerated() {
            guard let f = index[s.feature] else { throw .missingFeature(table: s.name, feature: s.feature, available: keys) }
            ws.route[t] = f
        }
        ws.routedKeys = keys
    }

    /// Copies feature f's ids (and weights) of every sample into table t's buffers.
    func load(_ t: Int, _ sparse: KeyedJaggedTensor, feature f: Int, _ ws: EmbeddingWorkspace) {
        let b = sparse.batchSize
        let n = sparse.values[f].count
        EmbeddingWorkspace.reserve(&ws.tables[t].ids, n)
        EmbeddingWorkspace.reserve(&ws.tables[t].offsets, b + 1)
        sparse.values[f].withUnsafeBufferPointer { if let p = $0.baseAddress { ws.tables[t].ids.pointer.update(from: p, count: n) } }
        sparse.offsets[f].withUnsafeBufferPointer { ws.tables[t].offsets.pointer.update(from: $0.baseAddress!, count: b + 1) }
        ws.tables[t].weighted = !sparse.weights[f].isEmpty
        if ws.tables[t].weighted {
            EmbeddingWorkspace.reserve(&ws.tables[t].weights, n)
            sparse.weights[f].withUnsafeBufferPointer { ws.tables[t].weights.pointer.update(from: $0.baseAddress!, count: n) }
        }
        ws.tables[t].count = n
        ws.tables[t].bags = b
        ws.tables[t].deduped = false
    }

    /// Copies the distinct bags of a feature into table t's buffers, after checking their structure.
    func load(_ t: Int, deduped d: DedupedFeature, batchSize b: Int, _ ws: EmbeddingWorkspace) throws(EmbeddingError) {
        let u = d.uniqueCount, n = d.uniqueValues.count
        guard u >= 0, u <= b, d.inverse.count == b, d.uniqueOffsets.first == 0, Int(d.uniqueOffsets[u]) == n,
              d.uniqueWeights.isEmpty || d.uniqueWeights.count == n else {
            throw .shape("\(prefix).\(specs[t].name): deduplicated feature does not describe \(b) samples")
        }
        for i in 0..<u where d.uniqueOffsets[i + 1] < d.uniqueOffsets[i] {
            throw .shape("\(prefix).\(specs[t].name): distinct-bag offsets decrease at \(i)")
        }
        for s in 0..<b where d.inverse[s] < 0 || Int(d.inverse[s]) >= u {
            throw .shape("\(prefix).\(specs[t].name): inverse index \(d.inverse[s]) of sample \(s) outside 0..<\(u)")
        }
        EmbeddingWorkspace.reserve(&ws.tables[t].ids, n)
        EmbeddingWorkspace.reserve(&ws.tables[t].offsets, b + 1)
        EmbeddingWorkspace.reserve(&ws.tables[t].inverse, b)
        d.uniqueValues.withUnsafeBufferPointer { if let p = $0.baseAddress { ws.tables[t].ids.pointer.update(from: p, count: n) } }
        d.uniqueOffsets.withUnsafeBufferPointer { ws.tables[t].offsets.pointer.update(from: $0.baseAddress!, count: u + 1) }
        d.inverse.withUnsafeBufferPointer { if let p = $0.baseAddress { ws.tables[t].inverse.pointer.update(from: p, count: b) } }
        ws.tables[t].weighted = !d.uniqueWeights.isEmpty
        if ws.tables[t].weighted {
            EmbeddingWorkspace.reserve(&ws.tables[t].weights, n)
            d.uniqueWeights.withUnsafeBufferPointer { ws.tables[t].weights.pointer.update(from: $0.baseAddress!, count: n) }
        }
        ws.tables[t].count = n
        ws.tables[t].bags = u
        ws.tables[t].deduped = true
    }

    /// Table t's bags for the kernels. Deduplicated tables are padded with empty bags to `pooledRows`, so all of
    /// them share one table-batched call.
    func bags(_ ws: EmbeddingWorkspace, _ t: Int) -> JaggedBags {
        let tb = ws.tables[t]
        var bagCount = tb.bags
        if tb.deduped {
            let o = tb.offsets.pointer, last = o[tb.bags]
            // pooledRows ≤ B ≤ the buffer's B + 1 slots (checked in `load`).
            if ws.pooledRows > tb.bags { for i in (tb.bags + 1)...ws.pooledRows { o[i] = last } }
            bagCount = ws.pooledRows
        }
        return JaggedBags(indices: ws.tables[t].ids.pointer, count: tb.count, bagCount: bagCount,
                          boundaries: .offsets(ws.tables[t].offsets.pointer), weights: tb.weighted ? tb.weights.pointer : nil)
    }

    /// Runs a kernel call for `tables`, mapping its error to the table it names.
    func kernel(_ tables: [Int], _ body: () throws(KernelError) -> Void) throws(EmbeddingError) {
        do { try body() } catch {
            if case let .inTable(i, inner) = error, i < tables.count { throw .kernel(table: specs[tables[i]].name, inner) }
            throw .kernel(table: tables.count == 1 ? specs[tables[0]].name : prefix, error)
        }
    }

    /// The pooling itself: direct fp32 tables in one table-batched call into `output`; deduplicated tables into the
    /// pooled scratch, then expanded; quantized tables one call each.
    func lookup(_ ws: EmbeddingWorkspace, output: MatrixView, columnOffsets: [Int], pool: ThreadPool) throws(EmbeddingError) {
        let b = ws.batchSize
        if ws.pooledWidth > 0 { EmbeddingWorkspace.reserve(&ws.pooled, ws.pooledRows * ws.pooledWidth) }
        let pooledView = MatrixView(base: ws.pooled.pointer, rows: ws.pooledRows, columns: max(ws.pooledWidth, 1))
        var groups: [(tables: [Int], views: [EmbeddingTableView], out: MatrixView, columns: [Int])] = [
            ([], [], output, []), ([], [], pooledView, []),
        ]
        var mode = PoolingMode.sum
        for t in specs.indices {
            let dedup = ws.pooledColumn[t] >= 0
            switch ws.tables[t].resolved {
            case let .float(view, _)?:
                let g = dedup ? 1 : 0
                groups[g].tables.append(t); groups[g].views.append(view)
                groups[g].columns.append(dedup ? ws.pooledColumn[t] : columnOffsets[t])
                mode = specs[t].pooling
            case let .quantized(q)?:
                let out = dedup ? pooledView.columns(ws.pooledColumn[t], count: specs[t].dim)
                    : output.columns(columnOffsets[t], count: specs[t].dim)
                let jb = bags(ws, t)
                try kernel([t]) { () throws(KernelError) in
                    try Kernels.quantizedEmbeddingBagForward(table: q, bags: jb, mode: specs[t].pooling, output: out, pool: pool)
                }
            case nil:
                throw .storage(table: specs[t].name, "rows were not resolved")
            }
        }
        for g in groups where !g.tables.isEmpty {
            guard g.tables.allSatisfy({ specs[$0].pooling == mode }) else {
                throw .invalidSpec(prefix, "tables of one collection must share a pooling mode")
            }
            let batch = TableBatch(tables: g.views, bags: g.tables.map { bags(ws, $0) }, columnOffsets: g.columns)
            try kernel(g.tables) { () throws(KernelError) in try Kernels.tableBatchForward(batch, mode: mode, output: g.out, pool: pool) }
        }
        // Expand: sample s of a deduplicated table gets its distinct bag's pooled vector.
        let dedup = specs.indices.filter { ws.pooledColumn[$0] >= 0 }
        if !dedup.isEmpty {
            let width = ws.pooledWidth, src = SendablePointer(ws.pooled.pointer)
            pool.parallelChunks(b, minChunk: 64) { range in
                for s in range {
                    let out = output.row(s)
                    for t in dedup {
                        let from = src.base + Int(ws.tables[t].inverse.pointer[s]) * width + ws.pooledColumn[t]
                        copyRow(from: from, to: out + columnOffsets[t], count: specs[t].dim)
                    }
                }
            }
        }
    }
}
