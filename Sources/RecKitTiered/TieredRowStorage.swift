import Dispatch
import Foundation
import RecKitCore
import RecKitEmbeddings
import RecKitKernels

/// A table whose rows live in a file, with the hot ones in a RAM cache of `capacity` slots: the storage the
/// embeddings seam was cut for. The kernels see the cache — a `capacity × D` table (and its optimizer state) — and
/// the batch's ids rewritten to slots; they never know rows come from disk.
///
/// Per batch (`rows(for:)`): (1) every id already cached is marked used by this batch; (2) each missing id gets a
/// slot — a free one, or a victim of the eviction policy among slots this batch does not use and that are not
/// pinned; (3) dirty victims are written back (one batched write), then the missing rows are copied from the
/// prefetch staging area or read (one batched read); (4) the ids become slots. After the fused update
/// (`finishBatch(updated: true)`) the batch's slots are dirty. Values and their order of updates are exactly those
/// of an in-RAM table — the cache changes where a row lives, never what it holds — so training is bit-identical.
///
/// Prefetch: while batch t computes, `prefetch(ids of t+1)` reads the rows of t+1 that are not cached into a
/// staging area on a background queue. Those rows cannot change before batch t+1 claims them: they are not in the
/// cache (only cached rows are updated) and every write-back of batch t finished before the prefetch started.
/// Every `rows(for:)` consumes or drops the staging area.
///
/// Checkpoints see two streamed tensors (`<prefix>.weight`, `<prefix>.adagrad_sum`): reading one writes back dirty
/// rows first, then streams the file; writing one (loading a checkpoint) drops the cache and rewrites the records.
public final class TieredRowStorage: RowStorage, @unchecked Sendable {
    public let rows: Int
    public let dim: Int
    public let optimizer: SparseOptimizerKind?
    /// `prefix.table`, for messages.
    public let name: String
    public let quantization: QuantizedDType?
    let layout: TierLayout
    let file: TierFile
    let io: TierIO
    let queue: DispatchQueue
    var cache: RowCache
    /// Slot rows: C × D fp32, or C × rowBytes quantized bytes; and C × stateFloats optimizer state.
    let slotRows: AlignedBuffer<UInt8>
    let slotState: AlignedBuffer<Float>

    // Per-batch scratch, reused.
    private var batchSlots: [Int32] = []
    private var missPositions: [Int] = []
    private var writeList: [(slot: Int32, id: Int64)] = []
    private var readList: [(slot: Int32, id: Int64)] = []
    private var copyList: [(slot: Int32, staged: Int)] = []
    private var ioBuffer = AlignedBuffer<UInt8>(count: 0)
    private var requests: [TierRequest] = []

    // Prefetch staging (written by the prefetch queue, read after `pending.wait()`).
    private let pending = DispatchGroup()
    /// What the prefetch learned about the next batch's ids: id → its slot (a hit), or −2 − k where the row was
    /// read into `stagingBuffer` at index k (a miss). A small map (the batch's ids), so `rows(for:)` probes it in
    /// the CPU's caches instead of the cache's large map in DRAM. Valid while `mapVersion` is what it was when the
    /// prefetch was queued (the large map does not change between the prefetch and the next `rows(for:)` in
    /// training; loading a checkpoint or another batch in between invalidates it).
    private var staged = SlotMap(slots: 0)
    private var stagedCount = 0
    private var stagedVersion: UInt64 = 0
    /// Bumped whenever the large map changes.
    private var mapVersion: UInt64 = 0
    /// Slot found for each id of the batch (−1: a miss), between the two passes of `rows(for:)`.
    private var found = AlignedBuffer<Int32>(count: 0)
    private var stagingBuffer = AlignedBuffer<UInt8>(count: 0)
    private var stagingRequests: [TierRequest] = []

    /// Counters since creation.
    public private(set) var stats = TierStats()

    /// A storage over `file` (rows laid out by `layout`) with a cache of `capacity` rows.
    init(name: String, rows: Int, dim: Int, optimizer: SparseOptimizerKind?, quantization: QuantizedDType?, layout: TierLayout,
         file: TierFile, io: TierIO, queue: DispatchQueue, capacity: Int, policy: CachePolicy) {
        self.name = name; self.rows = rows; self.dim = dim; self.optimizer = optimizer; self.quantization = quantization
        self.layout = layout; self.file = file; self.io = io; self.queue = queue
        cache = RowCache(capacity: capacity, policy: policy)
        slotRows = AlignedBuffer(count: capacity * layout.weightBytes)
        slotState = AlignedBuffer(count: capacity * layout.stateFloats)
    }

    public var capacity: Int { cache.capacity }
    public var policy: CachePolicy { cache.policy }
    /// Slots holding a row.
    public var occupied: Int { capacity - cache.free.count }
    /// Every slot holds a row: from now on each miss evicts one.
    public var isFull: Bool { cache.free.isEmpty }
    public var prefetches: Bool { true }
    public var storageDescription: String {
        String(format: "tiered: %d of %d rows cached (%@), hit rate %.3f", capacity, rows, cache.policy.rawValue, stats.hitRate)
    }

    /// Bytes of RAM one cache slot costs (row, optimizer state, bookkeeping).
    static func bytesPerSlot(_ layout: TierLayout) -> Int { layout.recordBytes + RowCache.bytesPerSlot }

    // MARK: Rows of a batch

    public func rows(for ids: UnsafeMutableBufferPointer<Int64>) throws(EmbeddingError) -> ResolvedRows {
        pending.wait()
        if let failure = backgroundFailure {
            backgroundFailure = nil
            throw .storage(table: name, "writing evicted rows back failed: \(failure)")
        }
        if repin { try pinNow() }
        defer { clearStaged() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        cache.beginBatch()
        batchSlots.removeAll(keepingCapacity: true)
        missPositions.removeAll(keepingCapacity: true)
        // Pass 1: probe the map (lines prefetched `ahead` ids early) and prefetch the found slots' flags;
        // pass 2: mark the hits used. The map and flags of a large cache live in DRAM, so overlapping the misses
        // of many ids is what makes this fast.
        let ahead = Self.prefetchDistance
        let n = ids.count
        if found.count < n { found = AlignedBuffer(count: n * 5 / 4 + 16) }
        let f = found.pointer
        let useStaged = stagedCount > 0 && stagedVersion == mapVersion
        if !useStaged { clearStaged() }
        for i in 0..<min(ahead, n) where !useStaged { cache.map.prefetch(ids[i]) }
        for i in 0..<n {
            let id = ids[i]
            guard id >= 0, id < Int64(rows) else {
                throw .kernel(table: name, .indexOutOfRange(position: i, index: Int(truncatingIfNeeded: id), rows: rows))
            }
            var s: Int32
            if useStaged {
                let v = staged.find(id)
                s = v >= 0 ? v : (v == -1 ? cache.map.find(id) : -1)
            } else {
                if i + ahead < n { cache.map.prefetch(ids[i + ahead]) }
                s = cache.map.find(id)
            }
            f[i] = s
            if s >= 0 { cache.prefetchFlags(s) }
        }
        for i in 0..<n {
            let s = f[i]
            if s >= 0 {
                if cache.touch(s) { batchSlots.append(s) }
                ids[i] = Int64(s)
            } else {
                missPositions.append(i)
            }
        }
        writeList.removeAll(keepingCapacity: true); readList.removeAll(keepingCapacity: true); copyList.removeAll(keepingCapacity: true)
        var newRows = 0
        for i in missPositions {
            let id = ids[i]
            let already = cache.map.find(id)
            if already >= 0 { ids[i] = Int64(already); continue }
            guard let s = cache.takeSlot() else {
                throw .storage(table: name, "its cache holds \(capacity) rows, fewer than one batch's distinct rows: give it more --cache-mb")
            }
            let old = cache.slotID.pointer[Int(s)]
            if old >= 0, cache.dirty.pointer[Int(s)] != 0 { writeList.append((s, old)) }
            cache.assign(s, id: id)
            batchSlots.append(s)
            ids[i] = Int64(s)
            newRows += 1
            let k = staged.find(id)
            if k <= -2 { copyList.append((s, Int(-2 - k))) } else { readList.append((s, id)) }
        }
        if newRows > 0 { mapVersion &+= 1 }
        let t1 = DispatchTime.now().uptimeNanoseconds
        do throws(TensorIOError) {
            try writeBackLater(writeList)
            let t2 = DispatchTime.now().uptimeNanoseconds
            try fetch(readList, copies: copyList)
            let t3 = DispatchTime.now().uptimeNanoseconds
            stats.writeBackNanoseconds += t2 - t1
            stats.fetchNanoseconds += t3 - t2
        } catch {
            throw .storage(table: name, error.description)
        }
        stats.lookupNanoseconds += t1 - t0
        stats.backgroundWriteNanoseconds = backgroundWriteNanoseconds
        stats.lookups += ids.count
        stats.misses += newRows
        stats.prefetchHits += copyList.count
        stats.batches += 1
        if let q = quantization {
            return .quantized(QuantizedTableView(dtype: q, rows: capacity, dim: dim, data: UnsafePointer(slotRows.pointer)))
        }
        return .float(EmbeddingTableView(weights: UnsafeMutableRawPointer(slotRows.pointer).bindMemory(to: Float.self, capacity: capacity * dim),
                                         rows: capacity, dim: dim), state: slotState.buffer)
    }

    public func finishBatch(updated: Bool) {
        guard updated, file.writable else { return }
        for s in batchSlots { cache.markDirty(s) }
    }

    // MARK: Prefetch

    public func prefetch(_ ids: [Int64]) {
        // No wait: the queue is serial, so this runs after the write-backs already queued (rows evicted by this
        // batch are on disk before anything is read), and `rows(for:)` waits for both.
        let map = cache.map, version = mapVersion
        pending.enter()
        queue.async { [self] in
            defer { pending.leave() }
            stage(ids, map: map, version: version)
        }
    }

    /// Ids ahead whose probe lines are prefetched.
    static let prefetchDistance = 16

    /// Forgets the staged rows.
    private func clearStaged() {
        if stagedCount > 0 { staged.removeAll() }
        stagedCount = 0
    }

    /// Reads the rows of `ids` that `map` does not hold into the staging area and notes the slots of those it
    /// holds (on the prefetch queue).
    private func stage(_ ids: [Int64], map: SlotMap, version: UInt64) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { stats.prefetchNanoseconds += DispatchTime.now().uptimeNanoseconds - t0 }
        clearStaged()
        if staged.mask + 1 < 2 * ids.count { staged = SlotMap(slots: ids.count) }
        var order: [Int64] = []
        order.reserveCapacity(ids.count)
        let ahead = Self.prefetchDistance
        for (i, id) in ids.enumerated() {
            if i + ahead < ids.count { map.prefetch(ids[i + ahead]) }
            guard id >= 0, id < Int64(rows), staged.find(id) == -1 else { continue }
            let s = map.find(id)
            if s >= 0 {
                staged.insert(id, s)
            } else {
                staged.insert(id, -2 - Int32(order.count))
                order.append(id)
            }
            stagedCount += 1
        }
        stagedVersion = version
        guard !order.isEmpty else { return }
        let rb = layout.recordBytes
        if stagingBuffer.count < order.count * rb { stagingBuffer = AlignedBuffer(count: order.count * rb * 5 / 4) }
        stagingRequests.removeAll(keepingCapacity: true)
        for (k, id) in order.enumerated() {
            stagingRequests.append(TierRequest(buffer: UnsafeMutableRawPointer(stagingBuffer.pointer + k * rb), length: UInt32(rb), offset: layout.offset(id)))
        }
        do throws(TensorIOError) {
            try stagingRequests.withUnsafeBufferPointer { (r) throws(TensorIOError) in try io.run(write: false, fd: file.fd, r, path: file.path) }
        } catch {
            clearStaged()  // read them again in rows(for:), which reports the error
        }
        stats.prefetched += order.count
    }

    // MARK: Moving records

    /// Gathers slot `s`'s row and state into one record at `p`.
    @inline(__always) private func gather(_ s: Int32, into p: UnsafeMutableRawPointer) {
        let wb = layout.weightBytes, sf = layout.stateFloats
        p.copyMemory(from: slotRows.pointer + Int(s) * wb, byteCount: wb)
        if sf > 0 { (p + wb).copyMemory(from: slotState.pointer + Int(s) * sf, byteCount: 4 * sf) }
    }

    /// Scatters the record at `p` into slot `s`.
    @inline(__always) private func scatter(_ p: UnsafeRawPointer, into s: Int32) {
        let wb = layout.weightBytes, sf = layout.stateFloats
        UnsafeMutableRawPointer(slotRows.pointer + Int(s) * wb).copyMemory(from: p, byteCount: wb)
        if sf > 0 { UnsafeMutableRawPointer(slotState.pointer + Int(s) * sf).copyMemory(from: p + wb, byteCount: 4 * sf) }
    }

    private func reserveIO(_ records: Int) {
        let need = records * layout.recordBytes
        if ioBuffer.count < need { ioBuffer = AlignedBuffer(count: need * 5 / 4) }
    }

    /// An error of a background write-back, reported by the next `rows(for:)`.
    private var backgroundFailure: TensorIOError?
    /// Buffers of queued write-backs (a small pool, reused).
    private var writeBuffers: [AlignedBuffer<UInt8>] = []
    private let writeBuffersLock = NSLock()

    /// Queues the write-back of `list` (slot, row id): the records are copied out of their slots now (the slots are
    /// about to hold other rows) and written on the I/O queue while the batch computes.
    private func writeBackLater(_ list: [(slot: Int32, id: Int64)]) throws(TensorIOError) {
        guard !list.isEmpty else { return }
        let rb = layout.recordBytes
        writeBuffersLock.lock()
        var buffer = writeBuffers.popLast() ?? AlignedBuffer<UInt8>(count: 0)
        writeBuffersLock.unlock()
        if buffer.count < list.count * rb { buffer = AlignedBuffer(count: list.count * rb * 5 / 4) }
        var jobs: [TierRequest] = []
        jobs.reserveCapacity(list.count)
        for (k, e) in list.enumerated() {
            let p = UnsafeMutableRawPointer(buffer.pointer + k * rb)
            gather(e.slot, into: p)
            jobs.append(TierRequest(buffer: p, length: UInt32(rb), offset: layout.offset(e.id)))
        }
        stats.writtenBack += list.count
        let job = buffer
        let requestsToWrite = jobs
        pending.enter()
        queue.async { [self] in
            defer { pending.leave() }
            let t0 = DispatchTime.now().uptimeNanoseconds
            do throws(TensorIOError) {
                try requestsToWrite.withUnsafeBufferPointer { (r) throws(TensorIOError) in try file.writeRecords(r) }
            } catch {
                if backgroundFailure == nil { backgroundFailure = error }
            }
            backgroundWriteNanoseconds += DispatchTime.now().uptimeNanoseconds - t0
            writeBuffersLock.lock(); writeBuffers.append(job); writeBuffersLock.unlock()
        }
    }

    /// Nanoseconds the I/O queue spent writing back (overlapped with compute).
    private var backgroundWriteNanoseconds: UInt64 = 0

    /// Writes the rows of `list` (slot, row id) to their records.
    private func writeBack(_ list: [(slot: Int32, id: Int64)]) throws(TensorIOError) {
        guard !list.isEmpty else { return }
        let rb = layout.recordBytes
        reserveIO(list.count)
        requests.removeAll(keepingCapacity: true)
        for (k, e) in list.enumerated() {
            let p = UnsafeMutableRawPointer(ioBuffer.pointer + k * rb)
            gather(e.slot, into: p)
            requests.append(TierRequest(buffer: p, length: UInt32(rb), offset: layout.offset(e.id)))
        }
        try requests.withUnsafeBufferPointer { (r) throws(TensorIOError) in try file.writeRecords(r) }
        stats.writtenBack += list.count
    }

    /// Fills slots: `copies` from the staging area, `list` read from the file.
    private func fetch(_ list: [(slot: Int32, id: Int64)], copies: [(slot: Int32, staged: Int)]) throws(TensorIOError) {
        let rb = layout.recordBytes
        for c in copies { scatter(UnsafeRawPointer(stagingBuffer.pointer + c.staged * rb), into: c.slot) }
        guard !list.isEmpty else { return }
        reserveIO(list.count)
        requests.removeAll(keepingCapacity: true)
        for (k, e) in list.enumerated() {
            requests.append(TierRequest(buffer: UnsafeMutableRawPointer(ioBuffer.pointer + k * rb), length: UInt32(rb), offset: layout.offset(e.id)))
        }
        try requests.withUnsafeBufferPointer { (r) throws(TensorIOError) in try io.run(write: false, fd: file.fd, r, path: file.path) }
        for (k, e) in list.enumerated() { scatter(UnsafeRawPointer(ioBuffer.pointer + k * rb), into: e.slot) }
    }

    /// Writes every dirty cached row back to the file (before the file is read as a whole).
    func flush() throws(TensorIOError) {
        pending.wait()
        guard cache.dirtyCount > 0 else { return }
        var list: [(slot: Int32, id: Int64)] = []
        for s in 0..<capacity where cache.dirty.pointer[s] != 0 {
            list.append((Int32(s), cache.slotID.pointer[s]))
            if list.count == 65_536 { try writeBack(list); list.removeAll(keepingCapacity: true) }
        }
        try writeBack(list)
        for s in 0..<capacity where cache.dirty.pointer[s] != 0 { cache.markClean(Int32(s)) }
    }

    /// Loads the rows of `ids` into the cache for good (placement: the hottest rows stay in RAM); again after a
    /// checkpoint replaces the rows.
    func pin(_ ids: [Int64]) throws(EmbeddingError) {
        pinnedIDs = Array(Set(ids.filter { $0 >= 0 && $0 < Int64(rows) })).sorted()
        guard pinnedIDs.count < capacity else {
            throw .storage(table: name, "\(pinnedIDs.count) pinned rows do not fit its cache of \(capacity)")
        }
        try pinNow()
    }

    private var pinnedIDs: [Int64] = []
    /// Set when the cache was dropped (a checkpoint was read into the file): the next batch pins again first.
    private var repin = false

    private func pinNow() throws(EmbeddingError) {
        repin = false
        guard !pinnedIDs.isEmpty else { return }
        var buffer = pinnedIDs
        _ = try buffer.withUnsafeMutableBufferPointer { (p) throws(EmbeddingError) in try rows(for: p) }
        for s in batchSlots { cache.pinned.pointer[Int(s)] = 1 }
        stats = TierStats()
    }

    /// Rows pinned in the cache.
    public var pinnedCount: Int { pinnedIDs.count }

    // MARK: Named state

    public func stateTensors(prefix: String) -> [StateTensor] {
        var out: [StateTensor] = []
        if let q = quantization {
            out.append(StateTensor(name: prefix + ".weight", dtype: .u8, shape: [rows, q.rowBytes(dim: dim)], role: .buffer,
                                   source: TierTensorSource(self, byteOffset: 0, bytesPerRow: layout.weightBytes)))
            return out
        }
        out.append(StateTensor(name: prefix + ".weight", dtype: .f32, shape: [rows, dim], role: .parameter,
                               source: TierTensorSource(self, byteOffset: 0, bytesPerRow: layout.weightBytes)))
        if let shape = optimizer?.stateShape(rows: rows, dim: dim) {
            out.append(StateTensor(name: prefix + ".adagrad_sum", dtype: .f32, shape: shape, role: .optimizerState,
                                   source: TierTensorSource(self, byteOffset: layout.weightBytes, bytesPerRow: 4 * layout.stateFloats)))
        }
        return out
    }

    /// Copies bytes `[offset, offset + count)` of the component at `byteOffset` (`bytesPerRow` per row) of every
    /// record, in row order, to or from `buffer` — the row-major tensor a checkpoint holds.
    func transfer(component byteOffset: Int, bytesPerRow cb: Int, buffer: UnsafeMutableRawPointer, offset: Int, count: Int,
                  write: Bool) throws(TensorIOError) {
        guard count > 0 else { return }
        guard offset >= 0, offset + count <= rows * cb else { throw TensorIOError("\(name): bytes \(offset)..<\(offset + count) outside the tensor") }
        if write {
            guard file.writable else { throw TensorIOError("\(name): rows read in place from \(file.path) are read-only") }
            pending.wait()
            clearStaged()
            if cache.free.count < capacity { cache.clear(); repin = !pinnedIDs.isEmpty }
            mapVersion &+= 1
        } else {
            try flush()
        }
        let rb = layout.recordBytes
        let chunkRows = max(1, (16 << 20) / rb)
        var row = offset / cb
        let end = (offset + count + cb - 1) / cb
        let scratch = AlignedBuffer<UInt8>(count: min(chunkRows, end - row) * rb)
        while row < end {
            let n = min(chunkRows, end - row)
            let fileOffset = Int(layout.offset(Int64(row)))
            try file.read(scratch.pointer, count: n * rb, at: fileOffset)
            for r in row..<(row + n) {
                // The part of row r's component inside the requested range.
                let lo = max(offset, r * cb), hi = min(offset + count, (r + 1) * cb)
                let inRecord = UnsafeMutableRawPointer(scratch.pointer + (r - row) * rb + byteOffset + (lo - r * cb))
                if write { inRecord.copyMemory(from: buffer + (lo - offset), byteCount: hi - lo) }
                else { (buffer + (lo - offset)).copyMemory(from: inRecord, byteCount: hi - lo) }
            }
            if write { try file.write(scratch.pointer, count: n * rb, at: fileOffset) }
            row += n
        }
    }

    /// Fills the file with `initializer`'s values for table `stream` (row after row, as `TableFill` fills RAM) and
    /// zero optimizer state; `.zeros` and `.none` leave the zeros of the fresh file.
    func fill(_ initializer: EmbeddingInitializer, table: Int) throws(TensorIOError) {
        guard case let .uniform(seed, firstStream, bound) = initializer else { return }
        var stream = TableFill.Stream(seed: seed, stream: firstStream + UInt64(table), bound: bound(rows))
        let rb = layout.recordBytes
        let chunkRows = max(1, (16 << 20) / rb)
        let scratch = AlignedBuffer<UInt8>(count: min(chunkRows, max(rows, 1)) * rb)
        var row = 0
        while row < rows {
            let n = min(chunkRows, rows - row)
            for r in 0..<n {
                let p = UnsafeMutableRawPointer(scratch.pointer + r * rb)
                stream.fill(p.bindMemory(to: Float.self, capacity: dim), count: dim)
                if layout.stateFloats > 0 { (p + layout.weightBytes).initializeMemory(as: UInt8.self, repeating: 0, count: 4 * layout.stateFloats) }
            }
            try file.write(scratch.pointer, count: n * rb, at: Int(layout.offset(Int64(row))))
            row += n
        }
    }
}

/// One component (rows or optimizer state) of a tiered table as a checkpoint tensor.
final class TierTensorSource: TensorDataSource, @unchecked Sendable {
    let storage: TieredRowStorage
    let byteOffset: Int
    let bytesPerRow: Int
    init(_ storage: TieredRowStorage, byteOffset: Int, bytesPerRow: Int) {
        self.storage = storage; self.byteOffset = byteOffset; self.bytesPerRow = bytesPerRow
    }
    func read(into destination: UnsafeMutableRawBufferPointer, at offset: Int) throws(TensorIOError) {
        guard let base = destination.baseAddress else { return }
        try storage.transfer(component: byteOffset, bytesPerRow: bytesPerRow, buffer: base, offset: offset, count: destination.count, write: false)
    }
    var backingFile: String? { storage.file.writable ? nil : storage.file.path }
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(TensorIOError) {
        guard let base = bytes.baseAddress else { return }
        try storage.transfer(component: byteOffset, bytesPerRow: bytesPerRow, buffer: UnsafeMutableRawPointer(mutating: base), offset: offset,
                             count: bytes.count, write: true)
    }
}

/// What a tiered table did: lookups, misses (rows brought into the cache), how many came from the prefetch, rows
/// written back, and nanoseconds per phase (lookup = slot assignment; fetch = reads and copies into slots on the
/// training thread; write-back; prefetch = reads on the background queue).
public struct TierStats: Sendable, Codable {
    public var batches = 0
    public var lookups = 0
    public var misses = 0
    public var prefetched = 0
    public var prefetchHits = 0
    public var writtenBack = 0
    public var lookupNanoseconds: UInt64 = 0
    public var fetchNanoseconds: UInt64 = 0
    public var writeBackNanoseconds: UInt64 = 0
    public var prefetchNanoseconds: UInt64 = 0
    /// Write-backs on the I/O queue (overlapped with compute).
    public var backgroundWriteNanoseconds: UInt64 = 0
    public init() {}
    /// Lookups served by rows already cached (prefetched rows count as misses).
    public var hitRate: Double { lookups == 0 ? 1 : 1 - Double(misses) / Double(lookups) }

    public static func + (a: TierStats, b: TierStats) -> TierStats {
        var s = a
        s.batches = max(a.batches, b.batches)
        s.lookups += b.lookups; s.misses += b.misses; s.prefetched += b.prefetched; s.prefetchHits += b.prefetchHits
        s.writtenBack += b.writtenBack
        s.lookupNanoseconds += b.lookupNanoseconds; s.fetchNanoseconds += b.fetchNanoseconds
        s.writeBackNanoseconds += b.writeBackNanoseconds; s.prefetchNanoseconds += b.prefetchNanoseconds
        s.backgroundWriteNanoseconds += b.backgroundWriteNanoseconds
        return s
    }

    /// What happened between snapshot `b` and the later snapshot `a` (batches: `a`'s).
    public static func - (a: TierStats, b: TierStats) -> TierStats {
        var s = a
        s.lookups -= b.lookups; s.misses -= b.misses; s.prefetched -= b.prefetched; s.prefetchHits -= b.prefetchHits
        s.writtenBack -= b.writtenBack
        s.lookupNanoseconds -= b.lookupNanoseconds; s.fetchNanoseconds -= b.fetchNanoseconds
        s.writeBackNanoseconds -= b.writeBackNanoseconds; s.prefetchNanoseconds -= b.prefetchNanoseconds
        s.backgroundWriteNanoseconds -= b.backgroundWriteNanoseconds
        return s
    }
}
