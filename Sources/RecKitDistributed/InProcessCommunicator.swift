import Foundation

/// A group of `size` ranks that are threads of this process: `InProcessGroup.run(size:)` starts one thread per
/// rank and hands each its `InProcessCommunicator`. Collectives meet at a barrier where each rank publishes its
/// buffers, copy from the peers' buffers, and meet again before anyone reuses them. A rank that aborts (or throws
/// out of `run`) wakes every waiting peer with an error, so a failure never hangs the group.
public final class InProcessGroup: @unchecked Sendable {
    public let size: Int
    let condition = NSCondition()
    var arrived = 0
    var generation = 0
    var aborted: String?
    /// What each rank published for the current collective.
    var slots: [Slot]

    struct Slot {
        var send: UnsafeRawPointer?
        var sendOffsets: [Int] = []
        var sendCounts: [Int] = []
        var count = 0
    }

    public init(size: Int) {
        precondition(size >= 1)
        self.size = size
        slots = Array(repeating: Slot(), count: size)
    }

    /// Runs `body` on `size` threads, one per rank, and returns each rank's result in rank order; rethrows the first
    /// rank's error (the others then see an aborted group).
    public static func run<T: Sendable>(size: Int, stackBytes: Int = 16 << 20,
                                        _ body: @escaping @Sendable (InProcessCommunicator) throws -> T) throws -> [T] {
        let group = InProcessGroup(size: size)
        let results = ResultBox<T>(size)
        var threads: [Thread] = []
        let done = DispatchGroup()
        for r in 0..<size {
            done.enter()
            let t = Thread {
                defer { done.leave() }
                let comm = InProcessCommunicator(group: group, rank: r)
                do { results.set(r, .success(try body(comm))) } catch {
                    group.abort("rank \(r) failed: \(error)")
                    results.set(r, .failure(error))
                }
            }
            t.stackSize = stackBytes
            threads.append(t)
        }
        threads.forEach { $0.start() }
        done.wait()
        return try results.values()
    }

    /// Waits for every rank (or the abort); `publish` runs under the lock on arrival.
    func meet(_ rank: Int, publish: (inout Slot) -> Void = { _ in }) throws(CommError) {
        condition.lock()
        defer { condition.unlock() }
        if let a = aborted { throw CommError("collective", rank: rank, a) }
        publish(&slots[rank])
        let g = generation
        arrived += 1
        if arrived == size {
            arrived = 0
            generation += 1
            condition.broadcast()
            return
        }
        while generation == g && aborted == nil { condition.wait() }
        if generation == g, let a = aborted { throw CommError("collective", rank: rank, a) }
    }

    func abort(_ reason: String) {
        condition.lock()
        if aborted == nil { aborted = reason }
        condition.broadcast()
        condition.unlock()
    }

    final class ResultBox<T>: @unchecked Sendable {
        let lock = NSLock()
        var items: [Result<T, any Error>?]
        init(_ n: Int) { items = Array(repeating: nil, count: n) }
        func set(_ i: Int, _ r: Result<T, any Error>) { lock.lock(); items[i] = r; lock.unlock() }
        func values() throws -> [T] {
            // The root cause first: a rank's own error, not a peer's "group aborted".
            if let first = items.first(where: { if case .failure(let e)? = $0 { return !(e is CommError) } else { return false } }),
               case .failure(let e)? = first { throw e }
            return try items.map { try $0!.get() }
        }
    }
}

/// One rank's handle on an `InProcessGroup`.
public final class InProcessCommunicator: Communicator, @unchecked Sendable {
    public let group: InProcessGroup
    public let rank: Int
    public var size: Int { group.size }
    public var backendDescription: String { "in-process threads (\(size) ranks)" }

    init(group: InProcessGroup, rank: Int) { self.group = group; self.rank = rank }

    /// Publishes `send`, waits for all, runs `read` (which may read every peer's published bytes), waits again.
    func collective(_ send: UnsafeRawPointer?, offsets: [Int] = [], counts: [Int] = [], count: Int = 0,
                    read: ([InProcessGroup.Slot]) -> Void) throws(CommError) {
        try group.meet(rank) { $0 = .init(send: send, sendOffsets: offsets, sendCounts: counts, count: count) }
        read(group.slots)
        try group.meet(rank)
    }

    /// Every rank's buffer summed in rank order (always ordered: threads share memory, so there is no cheaper tree).
    func orderedSum<T: BinaryFloatingPoint>(_ buffer: UnsafeMutableBufferPointer<T>) throws(CommError) {
        guard size > 1, let base = buffer.baseAddress else { return }
        let n = buffer.count
        var sum = [T](repeating: 0, count: n)
        try collective(UnsafeRawPointer(base), count: n) { slots in
            for r in 0..<size {
                let p = slots[r].send!.assumingMemoryBound(to: T.self)
                if r == 0 { for i in 0..<n { sum[i] = p[i] } } else { for i in 0..<n { sum[i] += p[i] } }
            }
        }
        for i in 0..<n { base[i] = sum[i] }
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>, ordered: Bool) throws(CommError) { try orderedSum(buffer) }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws(CommError) { try orderedSum(buffer) }

    public func allToAll(send: UnsafeRawBufferPointer, sendCounts: [Int], sendOffsets: [Int],
                         recv: UnsafeMutableRawBufferPointer, recvCounts: [Int], recvOffsets: [Int]) throws(CommError) {
        var mismatch: String?
        try collective(send.baseAddress ?? UnsafeRawPointer(bitPattern: 1), offsets: sendOffsets, counts: sendCounts) { slots in
            for s in 0..<size {
                let n = slots[s].sendCounts[rank]
                guard n == recvCounts[s] else { mismatch = "rank \(s) sends \(n) bytes, \(recvCounts[s]) expected"; continue }
                guard n > 0 else { continue }
                (recv.baseAddress! + recvOffsets[s]).copyMemory(from: slots[s].send! + slots[s].sendOffsets[rank], byteCount: n)
            }
        }
        if let mismatch { throw CommError("all-to-all", rank: rank, mismatch) }
    }

    public func allGather(_ send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer, counts: [Int]) throws(CommError) {
        let o = offsets(counts)
        try collective(send.baseAddress ?? UnsafeRawPointer(bitPattern: 1), count: send.count) { slots in
            for s in 0..<size where counts[s] > 0 {
                (recv.baseAddress! + o[s]).copyMemory(from: slots[s].send!, byteCount: min(counts[s], slots[s].count))
            }
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws(CommError) {
        try collective(UnsafeRawPointer(buffer.baseAddress), count: buffer.count) { slots in
            if rank != root, buffer.count > 0 { buffer.baseAddress!.copyMemory(from: slots[root].send!, byteCount: buffer.count) }
        }
    }

    public func barrier() throws(CommError) { try group.meet(rank) }

    public func abort(code: Int32, reason: String) { group.abort("rank \(rank) aborted (\(code)): \(reason)") }
}
