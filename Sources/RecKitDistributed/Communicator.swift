import Foundation

/// The collectives a distributed trainer needs, over a fixed group of `size` processes (ranks 0 ..< size). Every
/// rank calls the same collectives in the same order, each from one thread; a call returns when its part is done.
///
/// Two implementations: `MPICommunicator` (Open MPI, one process per rank, launched by `mpirun`) and
/// `InProcessCommunicator` (one thread per rank in one process: tests and `--distributed inprocess`). Both sum in
/// rank order where `deterministicSums` asks for it, so both give the same bits at the same world size.
public protocol Communicator: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// Human-readable backend and version (e.g. "Open MPI v4.1.4", "in-process threads").
    var backendDescription: String { get }
    /// In-place element-wise sum over all ranks. With `ordered`, every rank computes ((x₀ + x₁) + x₂) + … in rank
    /// order (bit-reproducible at a given world size, whatever the transport's reduction tree); otherwise the
    /// transport's own allreduce.
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>, ordered: Bool) throws(CommError)
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws(CommError)
    /// All-to-all of bytes: `send` holds, at `sendOffsets[d]`, `sendCounts[d]` bytes for rank d; rank s's bytes for
    /// this rank land in `recv` at `recvOffsets[s]` (`recvCounts[s]` bytes, which the caller must know: see
    /// `exchangeCounts`).
    func allToAll(send: UnsafeRawBufferPointer, sendCounts: [Int], sendOffsets: [Int],
                  recv: UnsafeMutableRawBufferPointer, recvCounts: [Int], recvOffsets: [Int]) throws(CommError)
    /// Every rank's bytes, concatenated in rank order (`counts[r]` bytes from rank r).
    func allGather(_ send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer, counts: [Int]) throws(CommError)
    /// Root's `buffer` to every rank.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws(CommError)
    func barrier() throws(CommError)
    /// Ends the group after a fatal error on this rank, so no other rank waits forever (MPI: MPI_Abort).
    func abort(code: Int32, reason: String)
}

/// A collective that failed: the operation, this rank and why (a peer that stopped, a transport error).
public struct CommError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var rank: Int
    public var reason: String
    public init(_ operation: String, rank: Int, _ reason: String) { self.operation = operation; self.rank = rank; self.reason = reason }
    public var description: String { "rank \(rank): \(operation) failed: \(reason)" }
}

extension Communicator {
    /// Sends `counts[d]` to rank d and returns what every rank sent to this one (the byte counts of an all-to-all).
    public func exchangeCounts(_ counts: [Int]) throws(CommError) -> [Int] {
        precondition(counts.count == size, "one count per rank")
        var out = [Int](repeating: 0, count: size)
        let step = MemoryLayout<Int>.stride
        let offsets = (0..<size).map { $0 * step }
        try counts.withUnsafeBytes { s in
            out.withUnsafeMutableBytes { r in
                typed { () throws(CommError) in
                    try allToAll(send: s, sendCounts: Array(repeating: step, count: size), sendOffsets: offsets,
                                 recv: r, recvCounts: Array(repeating: step, count: size), recvOffsets: offsets)
                }
            }
        }.get()
        return out
    }

    /// Every rank's `value`, in rank order.
    public func allGather(_ value: Int) throws(CommError) -> [Int] {
        var out = [Int](repeating: 0, count: size)
        var v = value
        try withUnsafeBytes(of: &v) { s in
            out.withUnsafeMutableBytes { r in
                typed { () throws(CommError) in try allGather(s, recv: r, counts: Array(repeating: MemoryLayout<Int>.stride, count: size)) }
            }
        }.get()
        return out
    }

    /// Every rank's floats concatenated in rank order (ranks may send different counts).
    public func allGather(_ values: [Float]) throws(CommError) -> [Float] {
        let counts = try allGather(values.count)
        var out = [Float](repeating: 0, count: counts.reduce(0, +))
        try values.withUnsafeBytes { s in
            out.withUnsafeMutableBytes { r in typed { () throws(CommError) in try allGather(s, recv: r, counts: counts.map { $0 * 4 }) } }
        }.get()
        return out
    }

    /// Every rank's doubles (the same count on each rank) concatenated in rank order.
    public func allGather(_ values: [Double]) throws(CommError) -> [Double] {
        var out = [Double](repeating: 0, count: values.count * size)
        try values.withUnsafeBytes { s in
            out.withUnsafeMutableBytes { r in
                typed { () throws(CommError) in try allGather(s, recv: r, counts: Array(repeating: values.count * 8, count: size)) }
            }
        }.get()
        return out
    }

    /// Σ over ranks of one value.
    public func sum(_ value: Double) throws(CommError) -> Double {
        var v = [value]
        try v.withUnsafeMutableBufferPointer { p in typed { () throws(CommError) in try allreduceSum(p) } }.get()
        return v[0]
    }

    /// Root's bytes to every rank, sizing the receivers first.
    public func broadcast(_ bytes: [UInt8], root: Int) throws(CommError) -> [UInt8] {
        var n = [bytes.count]
        try n.withUnsafeMutableBytes { p in typed { () throws(CommError) in try broadcast(p, root: root) } }.get()
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: n[0])
        try out.withUnsafeMutableBytes { p in typed { () throws(CommError) in try broadcast(p, root: root) } }.get()
        return out
    }
}

/// Prefix sums: the offset of each piece when pieces of `counts` lie side by side.
@inlinable func offsets(_ counts: [Int]) -> [Int] {
    var out = [Int](repeating: 0, count: counts.count), o = 0
    for (i, c) in counts.enumerated() { out[i] = o; o += c }
    return out
}

/// Runs a typed-throwing body inside a standard library closure (which rethrows untyped errors) as a `Result`.
@inline(__always) func typed<T, E: Error>(_ body: () throws(E) -> T) -> Result<T, E> {
    do { return .success(try body()) } catch { return .failure(error) }
}
