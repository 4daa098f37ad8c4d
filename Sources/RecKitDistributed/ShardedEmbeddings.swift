import Foundation
import RecKitCore
import RecKitEmbeddings
import RecKitKernels

/// An embedding collection's tables sharded over the ranks of a `Communicator` (model parallelism), behind the
/// collection's `EmbeddingExchange` seam, so DLRM, DCNv2 and FM run sharded without a line of their own changing.
///
/// Each rank holds the shards the plan gives it (`Shard`: a table, a row range or a column range) in its own local
/// `EmbeddingCollection`, and every rank brings its own share of the step's global batch (b_r samples; B = Σ b_r,
/// rank r's samples are global samples start_r ..< start_r + b_r).
///
/// Forward (2 all-to-alls):
///   1. ids: rank r sends each shard's owner its b_r bags of that table (row shards: only the ids in the shard's row
///      range, renumbered from 0; lengths travel with them). Owners concatenate the senders' bags in rank order, so
///      an owner pools exactly the global batch's bags, in global sample order.
///   2. pooled: each owner pools its shards for all B samples (the same kernels and the same addition order as one
///      process), then sends every rank its b_r rows; column shards land side by side, row shards' partial sums are
///      added in shard order (a one-hot bag has one non-zero part, so its sum is exact).
/// Backward (1 all-to-all): each rank sends the owners the gradient columns of their shards for its b_r samples;
/// owners run the fused backward + sparse optimizer on the global batch, so the sparse update of a table-wise or
/// row-wise shard is the one a single process makes from the same gradients.
///
/// Bytes per step per rank (sent): Σ_tables (b_r · (4 + 8·ids per bag)) + 2 · Σ_shards b_r · D_shard · 4 (pooled
/// rows back and their gradients), less what stays on this rank. Ids are checked against their table's rows before
/// anything is sent, so a bad id is an error naming the table on the rank that read it.
public final class ShardedEmbeddings: EmbeddingExchange, @unchecked Sendable {
    public let prefix: String
    public let specs: [EmbeddingTableSpec]
    /// Every shard of every table, table order then shard order.
    public let shards: [Shard]
    public let comm: any Communicator
    /// This rank's shards (indices into `shards`) and their local collection (nil when this rank holds none).
    public let localShards: [Int]
    public let local: EmbeddingCollection?
    let localWS: EmbeddingWorkspace?
    /// Column of each local shard in the B × localWidth pooled matrix.
    let localColumn: [Int]
    let localWidth: Int
    /// Σ shard widths per owner rank (the pooled bytes each owner sends per sample).
    let widthOnRank: [Int]
    var pooled = AlignedBuffer<Float>(count: 0)
    var gradGlobal = AlignedBuffer<Float>(count: 0)
    var send: [UInt8] = []
    var recv: [UInt8] = []
    /// The last forward's layout: samples per rank and where each rank's start in the global batch.
    var batchSizes: [Int] = []
    var starts: [Int] = []
    var globalBatch = 0
    var pendingBackward = false
    /// Bytes this rank sent to other ranks, and seconds in all-to-alls and in local lookups, since made.
    public private(set) var bytesSent = 0
    public private(set) var commSeconds = 0.0
    public private(set) var lookupSeconds = 0.0
    public private(set) var steps = 0

    /// Shards `collection`'s tables by `plan` (tables it does not name: `ShardingPlan.balanced`). The local shards
    /// get the values the unsharded tables would have (`initializer`'s streams, drawn as `TableFill` draws them) and
    /// `optimizer`'s state. Call `attach()` to route the collection through this exchange.
    public init(prefix: String, specs: [EmbeddingTableSpec], plan: ShardingPlan?, comm: any Communicator,
                initializer: EmbeddingInitializer, optimizer: SparseOptimizerKind?) throws(DistributedError) {
        let n = comm.size
        let fallback = ShardingPlan.balanced(specs, ranks: n)
        if let plan { try plan.validate(specs, worldSize: n) }
        self.prefix = prefix; self.specs = specs; self.comm = comm
        let all = (plan ?? fallback).shards(of: specs, fallback: fallback), me = comm.rank
        shards = all
        localShards = all.indices.filter { all[$0].rank == me }
        var widths = [Int](repeating: 0, count: n)
        for s in all { widths[s.rank] += s.columns.count }
        widthOnRank = widths
        var col = 0, cols: [Int] = []
        var localSpecs: [EmbeddingTableSpec] = [], storages: [any RowStorage] = []
        for i in all.indices where all[i].rank == me {
            let s = all[i], spec = specs[s.table]
            let name = Self.shardName(spec.name, s)
            localSpecs.append(EmbeddingTableSpec(name: name, feature: name, rows: s.rows.count, dim: s.columns.count, pooling: spec.pooling))
            let storage = DenseRowStorage(rows: s.rows.count, dim: s.columns.count, optimizer: optimizer)
            Self.fill(storage, shard: s, spec: spec, initializer: initializer)
            storages.append(storage)
            cols.append(col); col += s.columns.count
        }
        localColumn = cols; localWidth = col
        if localSpecs.isEmpty {
            local = nil; localWS = nil
        } else {
            do throws(EmbeddingError) {
                let c = try EmbeddingCollection(prefix: prefix, specs: localSpecs, storages: storages)
                local = c; localWS = c.makeWorkspace()
            } catch { throw .plan(error.description) }
        }
    }

    /// The local table name of a shard: the table's own name when whole, else with its row or column range.
    public static func shardName(_ table: String, _ s: Shard) -> String {
        switch s.kind {
        case .tableWise: return table
        case .rowWise: return "\(table)@rows\(s.rows.lowerBound)-\(s.rows.upperBound)"
        case .columnWise: return "\(table)@cols\(s.columns.lowerBound)-\(s.columns.upperBound)"
        }
    }

    /// Writes the shard's part of the table `initializer` would fill (same stream, element order of the whole table).
    static func fill(_ storage: DenseRowStorage, shard s: Shard, spec: EmbeddingTableSpec, initializer: EmbeddingInitializer) {
        guard case let .uniform(seed, firstStream, bound) = initializer else { return }
        var stream = TableFill.Stream(seed: seed, stream: firstStream + UInt64(s.table), bound: bound(spec.rows))
        let d = spec.dim, w = s.columns.count
        if w == d {
            var skip = s.rows.lowerBound * d
            let scratch = AlignedBuffer<Float>(count: max(d * 1024, 1))
            while skip > 0 { let k = min(skip, scratch.count); stream.fill(scratch.pointer, count: k); skip -= k }
            stream.fill(storage.weights.pointer, count: s.rows.count * d)
        } else {
            let row = AlignedBuffer<Float>(count: d)
            for r in 0..<spec.rows {
                stream.fill(row.pointer, count: d)
                (storage.weights.pointer + r * w).update(from: row.pointer + s.columns.lowerBound, count: w)
            }
        }
    }

    /// Routes `collection` (whose tables are these specs) through this exchange.
    public func attach(to collection: EmbeddingCollection) { collection.exchange = self }

    public func stateTensors() -> [StateTensor] { local?.stateTensors() ?? [] }

    // MARK: byte layout

    @inline(__always) static func align8(_ n: Int) -> Int { (n + 7) & ~7 }

    func clock() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// All-to-all of `send` (per-destination byte counts) into `recv`; every rank tells every other its counts and
    /// batch size first. Returns the received counts.
    func exchange(sendCounts: [Int], recvCounts known: [Int]?) throws(EmbeddingError) -> (recvCounts: [Int], recvOffsets: [Int]) {
        let t0 = clock()
        defer { commSeconds += clock() - t0 }
        do throws(CommError) {
            let recvCounts: [Int]
            if let known { recvCounts = known } else { recvCounts = try comm.exchangeCounts(sendCounts) }
            let ro = offsets(recvCounts), so = offsets(sendCounts)
            let total = recvCounts.reduce(0, +)
            if recv.count < total { recv = [UInt8](repeating: 0, count: total) }
            try send.withUnsafeBytes { s in
                recv.withUnsafeMutableBytes { r in
                    typed { () throws(CommError) in
                        try comm.allToAll(send: s, sendCounts: sendCounts, sendOffsets: so, recv: r, recvCounts: recvCounts, recvOffsets: ro)
                    }
                }
            }.get()
            bytesSent += sendCounts.enumerated().reduce(0) { $0 + ($1.offset == comm.rank ? 0 : $1.element) }
            return (recvCounts, ro)
        } catch { throw .storage(table: prefix, "sharded lookup: \(error)") }
    }

    // MARK: forward

    public func forward(_ sparse: KeyedJaggedTensor, output: MatrixView, columnOffsets: [Int], training: Bool, pool: ThreadPool) throws(EmbeddingError) {
        do throws(ShapeError) { try sparse.validate() } catch { throw .shape(error.message) }
        let n = comm.size, b = sparse.batchSize
        guard columnOffsets.count == specs.count, output.rows >= b else {
            throw .shape("\(prefix): output \(output.rows) rows for \(b) samples, \(columnOffsets.count) column offsets for \(specs.count) tables")
        }
        var route = [Int](repeating: 0, count: specs.count)
        for (t, s) in specs.enumerated() {
            guard let f = sparse.index(of: s.feature) else { throw .missingFeature(table: s.name, feature: s.feature, available: sparse.keys) }
            for (position, id) in sparse.values[f].enumerated() where id < 0 || id >= s.rows {
                throw .kernel(table: s.name, .indexOutOfRange(position: position, index: Int(id), rows: s.rows))
            }
            route[t] = f
        }
        // 1. Ids to the shards' owners: per destination, per shard [n, weighted | lengths (b) | ids (n) | weights (n)].
        var sizes = [Int](repeating: 0, count: n)
        var shardIds = [Int](repeating: 0, count: shards.count)
        for (i, s) in shards.enumerated() {
            let f = route[s.table]
            let count: Int
            if s.kind == .rowWise {
                let lo = Int64(s.rows.lowerBound), hi = Int64(s.rows.upperBound)
                count = sparse.values[f].reduce(0) { $0 + ($1 >= lo && $1 < hi ? 1 : 0) }
            } else { count = sparse.values[f].count }
            shardIds[i] = count
            let weighted = !sparse.weights[f].isEmpty
            sizes[s.rank] += 16 + Self.align8(4 * b) + 8 * count + (weighted ? Self.align8(4 * count) : 0)
        }
        let so = offsets(sizes), total = sizes.reduce(0, +)
        if send.count < total { send = [UInt8](repeating: 0, count: total) }
        send.withUnsafeMutableBytes { raw in
            var cursor = so
            for (i, s) in shards.enumerated() {
                let f = route[s.table], values = sparse.values[f], offs = sparse.offsets[f], wts = sparse.weights[f]
                let weighted = !wts.isEmpty
                var p = raw.baseAddress! + cursor[s.rank]
                p.storeBytes(of: Int64(shardIds[i]), as: Int64.self); p.storeBytes(of: Int64(weighted ? 1 : 0), toByteOffset: 8, as: Int64.self)
                p += 16
                let lengths = p.assumingMemoryBound(to: Int32.self)
                let ids = (p + Self.align8(4 * b)).assumingMemoryBound(to: Int64.self)
                let weights = (p + Self.align8(4 * b) + 8 * shardIds[i]).assumingMemoryBound(to: Float.self)
                if s.kind == .rowWise {
                    let lo = Int64(s.rows.lowerBound), hi = Int64(s.rows.upperBound)
                    var k = 0
                    for bag in 0..<b {
                        var len: Int32 = 0
                        for j in Int(offs[bag])..<Int(offs[bag + 1]) where values[j] >= lo && values[j] < hi {
                            ids[k] = values[j] - lo
                            if weighted { weights[k] = wts[j] }
                            k += 1; len += 1
                        }
                        lengths[bag] = len
                    }
                } else {
                    for bag in 0..<b { lengths[bag] = offs[bag + 1] - offs[bag] }
                    values.withUnsafeBufferPointer { if let v = $0.baseAddress { ids.update(from: v, count: $0.count) } }
                    if weighted { wts.withUnsafeBufferPointer { weights.update(from: $0.baseAddress!, count: $0.count) } }
                }
                cursor[s.rank] += 16 + Self.align8(4 * b) + 8 * shardIds[i] + (weighted ? Self.align8(4 * shardIds[i]) : 0)
            }
        }
        // Every rank's batch size: owners need each sender's b to read its blocks and to place its samples.
        let bs: [Int]
        do throws(CommError) { bs = try comm.allGather(b) } catch { throw .storage(table: prefix, "sharded lookup: \(error)") }
        batchSizes = bs
        starts = offsets(bs)
        globalBatch = bs.reduce(0, +)
        let (_, ro) = try exchange(sendCounts: sizes, recvCounts: nil)
        let bigB = globalBatch
        // 2. Owners pool their shards for the whole global batch.
        if let local, let localWS, bigB > 0 {
            let t0 = clock()
            var keys: [String] = [], values: [[Int64]] = [], offs: [[Int32]] = [], wts: [[Float]] = []
            var cursor = ro
            // Blocks arrive per source in shard order; walk the local shards in order, taking each source's block.
            var perShard: [[(ids: UnsafePointer<Int64>, lengths: UnsafePointer<Int32>, weights: UnsafePointer<Float>?, count: Int)]] = []
            recv.withUnsafeBytes { raw in
                for _ in localShards {
                    var parts: [(ids: UnsafePointer<Int64>, lengths: UnsafePointer<Int32>, weights: UnsafePointer<Float>?, count: Int)] = []
                    for q in 0..<n {
                        let p = raw.baseAddress! + cursor[q]
                        let count = Int(p.load(as: Int64.self)), weighted = p.load(fromByteOffset: 8, as: Int64.self) != 0
                        let lengths = (p + 16).assumingMemoryBound(to: Int32.self)
                        let ids = (p + 16 + Self.align8(4 * bs[q])).assumingMemoryBound(to: Int64.self)
                        let w = weighted ? (p + 16 + Self.align8(4 * bs[q]) + 8 * count).assumingMemoryBound(to: Float.self) : nil
                        parts.append((ids, lengths, w, count))
                        cursor[q] += 16 + Self.align8(4 * bs[q]) + 8 * count + (weighted ? Self.align8(4 * count) : 0)
                    }
                    perShard.append(parts)
                }
                for li in localShards.indices {
                    let parts = perShard[li]
                    let anyWeighted = parts.contains { $0.weights != nil && $0.count > 0 }
                    var v: [Int64] = [], o: [Int32] = [0], w: [Float] = []
                    v.reserveCapacity(parts.reduce(0) { $0 + $1.count }); o.reserveCapacity(bigB + 1)
                    for (q, part) in parts.enumerated() {
                        v.append(contentsOf: UnsafeBufferPointer(start: part.ids, count: part.count))
                        if anyWeighted {
                            if let pw = part.weights { w.append(contentsOf: UnsafeBufferPointer(start: pw, count: part.count)) }
                            else { w.append(contentsOf: repeatElement(1, count: part.count)) }
                        }
                        var last = o.last!
                        for bag in 0..<bs[q] { last += part.lengths[bag]; o.append(last) }
                    }
                    keys.append(local.specs[li].feature); values.append(v); offs.append(o); wts.append(w)
                }
            }
            if pooled.count < bigB * localWidth { pooled = AlignedBuffer(count: bigB * localWidth * 3 / 2) }
            let kjt = KeyedJaggedTensor(keys: keys, values: values, offsets: offs, weights: wts)
            try local.forward(kjt, deduped: nil, workspace: localWS, output: MatrixView(base: pooled.pointer, rows: bigB, columns: localWidth),
                              columnOffsets: localColumn, training: training, pool: pool)
            lookupSeconds += clock() - t0
        }
        pendingBackward = training && local != nil && bigB > 0
        // 3. Pooled rows back: to rank q, per local shard, its b_q rows (b_q × width floats).
        let backCounts = (0..<n).map { bs[$0] * localWidth * 4 }
        let backTotal = backCounts.reduce(0, +)
        if send.count < backTotal { send = [UInt8](repeating: 0, count: backTotal) }
        send.withUnsafeMutableBytes { raw in
            var o = 0
            for q in 0..<n {
                for (li, i) in localShards.enumerated() {
                    let w = shards[i].columns.count
                    let dst = (raw.baseAddress! + o).assumingMemoryBound(to: Float.self)
                    for row in 0..<bs[q] { (dst + row * w).update(from: pooled.pointer + (starts[q] + row) * localWidth + localColumn[li], count: w) }
                    o += bs[q] * w * 4
                }
            }
        }
        let expect = (0..<n).map { b * widthOnRank[$0] * 4 }
        let (_, back) = try exchange(sendCounts: backCounts, recvCounts: expect)
        recv.withUnsafeBytes { raw in
            var cursor = back
            for s in shards {
                let w = s.columns.count
                let src = (raw.baseAddress! + cursor[s.rank]).assumingMemoryBound(to: Float.self)
                let col = columnOffsets[s.table] + s.columns.lowerBound
                if s.kind == .rowWise && s.index > 0 {
                    for row in 0..<b { let d = output.row(row) + col, r = src + row * w; for j in 0..<w { d[j] += r[j] } }
                } else {
                    for row in 0..<b { (output.row(row) + col).update(from: src + row * w, count: w) }
                }
                cursor[s.rank] += b * w * 4
            }
        }
        steps += training ? 1 : 0
    }

    // MARK: backward

    public func backward(gradOutput: MatrixView, columnOffsets: [Int], update: SparseUpdate, pool: ThreadPool) throws(EmbeddingError) {
        let n = comm.size, b = batchSizes.isEmpty ? 0 : batchSizes[comm.rank]
        guard gradOutput.rows >= b, columnOffsets.count == specs.count else { throw .shape("\(prefix): gradient has \(gradOutput.rows) rows for \(b) samples") }
        // Each owner gets, per its shard, this rank's b rows of the shard's gradient columns.
        let counts = (0..<n).map { b * widthOnRank[$0] * 4 }
        let so = offsets(counts), total = counts.reduce(0, +)
        if send.count < total { send = [UInt8](repeating: 0, count: total) }
        send.withUnsafeMutableBytes { raw in
            var cursor = so
            for s in shards {
                let w = s.columns.count, col = columnOffsets[s.table] + s.columns.lowerBound
                let dst = (raw.baseAddress! + cursor[s.rank]).assumingMemoryBound(to: Float.self)
                for row in 0..<b { (dst + row * w).update(from: gradOutput.row(row) + col, count: w) }
                cursor[s.rank] += b * w * 4
            }
        }
        let expect = (0..<n).map { batchSizes[$0] * localWidth * 4 }
        let (_, ro) = try exchange(sendCounts: counts, recvCounts: expect)
        guard pendingBackward, let local, let localWS else { return }
        pendingBackward = false
        let t0 = clock()
        defer { lookupSeconds += clock() - t0 }
        let bigB = globalBatch
        if gradGlobal.count < bigB * localWidth { gradGlobal = AlignedBuffer(count: bigB * localWidth * 3 / 2) }
        recv.withUnsafeBytes { raw in
            for q in 0..<n {
                var o = ro[q]
                for (li, i) in localShards.enumerated() {
                    let w = shards[i].columns.count
                    let src = (raw.baseAddress! + o).assumingMemoryBound(to: Float.self)
                    for row in 0..<batchSizes[q] { (gradGlobal.pointer + (starts[q] + row) * localWidth + localColumn[li]).update(from: src + row * w, count: w) }
                    o += batchSizes[q] * w * 4
                }
            }
        }
        try local.backward(workspace: localWS, gradOutput: MatrixView(base: gradGlobal.pointer, rows: bigB, columns: localWidth),
                           columnOffsets: localColumn, update: update, pool: pool)
    }
}
