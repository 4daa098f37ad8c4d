import CMPI
import Foundation

/// The Open MPI communicator over MPI_COMM_WORLD: one per process, made once (`MPICommunicator.world()`), which
/// initialises MPI; `finalize()` ends it. Errors come back as `CommError` with MPI's own text (the library is set to
/// return errors rather than abort), and `abort` ends the whole job (MPI_Abort), so a rank that cannot go on never
/// leaves its peers waiting in a collective.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let backendDescription: String
    nonisolated(unsafe) static var shared: MPICommunicator?
    static let lock = NSLock()

    init(rank: Int, size: Int, description: String) { self.rank = rank; self.size = size; backendDescription = description }

    /// Whether this process was started by an MPI launcher (mpirun).
    public static var launched: Bool { reckit_mpi_launched() != 0 }

    /// Why MPI cannot be used here, or nil when it can.
    public static var unavailableReason: String? { reckit_mpi_load() == 1 ? nil : String(cString: reckit_mpi_status()) }

    /// Initialises MPI (once per process) and returns the world communicator.
    public static func world() throws(CommError) -> MPICommunicator {
        lock.lock(); defer { lock.unlock() }
        if let c = shared { return c }
        guard reckit_mpi_load() == 1 else { throw CommError("MPI_Init", rank: 0, String(cString: reckit_mpi_status())) }
        var r: Int32 = 0, n: Int32 = 0
        let rc = reckit_mpi_init(&r, &n)
        guard rc == 0 else { throw CommError("MPI_Init", rank: 0, String(cString: reckit_mpi_error_string(rc))) }
        let c = MPICommunicator(rank: Int(r), size: Int(n), description: String(cString: reckit_mpi_status()))
        shared = c
        return c
    }

    /// MPI_Finalize (after the last collective).
    public func finalize() { _ = reckit_mpi_finalize() }

    func check(_ rc: Int32, _ op: String) throws(CommError) {
        guard rc != 0 else { return }
        throw CommError(op, rank: rank, String(cString: reckit_mpi_error_string(rc)))
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>, ordered: Bool) throws(CommError) {
        guard size > 1, let base = buffer.baseAddress, buffer.count > 0 else { return }
        if !ordered { try check(reckit_mpi_allreduce_float(base, Int64(buffer.count)), "MPI_Allreduce"); return }
        // Every rank's buffer, then the sum in rank order on every rank: the same bits as InProcessCommunicator.
        let n = buffer.count
        var all = [Float](repeating: 0, count: n * size)
        try all.withUnsafeMutableBytes { r in
            typed { () throws(CommError) in try allGather(UnsafeRawBufferPointer(buffer), recv: r, counts: Array(repeating: n * 4, count: size)) }
        }.get()
        all.withUnsafeBufferPointer { a in
            for i in 0..<n { base[i] = a[i] }
            for r in 1..<size { let p = a.baseAddress! + r * n; for i in 0..<n { base[i] += p[i] } }
        }
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws(CommError) {
        guard size > 1, let base = buffer.baseAddress, buffer.count > 0 else { return }
        try check(reckit_mpi_allreduce_double(base, Int64(buffer.count)), "MPI_Allreduce")
    }

    /// Starts an in-place float sum (bucketed gradient allreduce overlapped with the rest of backward).
    public func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>) throws(CommError) -> Int64 {
        let h = reckit_mpi_iallreduce_float(buffer.baseAddress, Int64(buffer.count))
        guard h >= 0 else { throw CommError("MPI_Iallreduce", rank: rank, "error \(h)") }
        return h
    }

    public func wait(_ request: Int64) throws(CommError) { try check(reckit_mpi_wait(request), "MPI_Wait") }

    public func allToAll(send: UnsafeRawBufferPointer, sendCounts: [Int], sendOffsets: [Int],
                         recv: UnsafeMutableRawBufferPointer, recvCounts: [Int], recvOffsets: [Int]) throws(CommError) {
        let limit = Int(Int32.max)
        guard (sendCounts + sendOffsets + recvCounts + recvOffsets).allSatisfy({ $0 <= limit }) else {
            throw CommError("MPI_Alltoallv", rank: rank, "a message or offset above 2 GiB (use smaller batches)")
        }
        let c = [sendCounts, sendOffsets, recvCounts, recvOffsets].map { $0.map(Int64.init) }
        var dummy: UInt8 = 0
        let rc = withUnsafeMutablePointer(to: &dummy) { d in
            reckit_mpi_alltoallv(send.baseAddress ?? UnsafeRawPointer(d), c[0], c[1], recv.baseAddress ?? UnsafeMutableRawPointer(d), c[2], c[3])
        }
        try check(rc, "MPI_Alltoallv")
    }

    public func allGather(_ send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer, counts: [Int]) throws(CommError) {
        var dummy: UInt8 = 0
        let o = offsets(counts).map(Int64.init)
        let rc = withUnsafeMutablePointer(to: &dummy) { d in
            reckit_mpi_allgatherv(send.baseAddress ?? UnsafeRawPointer(d), Int64(send.count), recv.baseAddress ?? UnsafeMutableRawPointer(d),
                                  counts.map(Int64.init), o)
        }
        try check(rc, "MPI_Allgatherv")
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws(CommError) {
        guard let b = buffer.baseAddress, buffer.count > 0 else { return }
        try check(reckit_mpi_bcast(b, Int64(buffer.count), Int32(root)), "MPI_Bcast")
    }

    public func barrier() throws(CommError) { try check(reckit_mpi_barrier(), "MPI_Barrier") }

    public func abort(code: Int32, reason: String) { reckit_mpi_abort(code) }

    /// Seconds on MPI's clock.
    public static func wallTime() -> Double { reckit_mpi_wtime() }
}
