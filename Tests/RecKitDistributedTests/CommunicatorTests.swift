import Foundation
@testable import RecKitDistributed
import Testing

/// The in-process communicator's collectives at 1–4 ranks: what each rank receives, rank-ordered sums, and a failing
/// rank that stops its peers with an error instead of a hang.
@Suite("Communicator collectives (in-process)")
struct CommunicatorTests {
    @Test("allreduce, all-to-all with variable counts, allgather, broadcast", arguments: [1, 2, 3, 4])
    func collectives(ranks: Int) throws {
        let results = try InProcessGroup.run(size: ranks) { comm -> Bool in
            let r = comm.rank, n = comm.size
            // allreduce (ordered): Σ_r (r + 1)·(i + 1) in rank order.
            var x = (0..<5).map { Float((r + 1) * ($0 + 1)) }
            try x.withUnsafeMutableBufferPointer { (p: inout UnsafeMutableBufferPointer<Float>) throws in try comm.allreduceSum(p, ordered: true) }
            let tri = Float(n * (n + 1) / 2)
            guard x == (0..<5).map({ tri * Float($0 + 1) }) else { return false }
            // all-to-all: rank r sends d + 1 copies of the byte 10·r + d to rank d (some empty when r == 0 and d == ...).
            let sendCounts = (0..<n).map { d in (r + d) % 3 }
            let send = (0..<n).flatMap { d in [UInt8](repeating: UInt8(10 * r + d), count: sendCounts[d]) }
            let recvCounts = try comm.exchangeCounts(sendCounts)
            guard recvCounts == (0..<n).map({ s in (s + r) % 3 }) else { return false }
            var recv = [UInt8](repeating: 0, count: recvCounts.reduce(0, +))
            try send.withUnsafeBytes { (s: UnsafeRawBufferPointer) throws in
                try recv.withUnsafeMutableBytes { (d: UnsafeMutableRawBufferPointer) throws in
                    try comm.allToAll(send: s, sendCounts: sendCounts, sendOffsets: offsets(sendCounts), recv: d, recvCounts: recvCounts,
                                      recvOffsets: offsets(recvCounts))
                }
            }
            guard recv == (0..<n).flatMap({ s in [UInt8](repeating: UInt8(10 * s + r), count: recvCounts[s]) }) else { return false }
            // allgather of variable-length float arrays, in rank order.
            let g = try comm.allGather((0..<r).map { Float($0) })
            guard g == (0..<n).flatMap({ s in (0..<s).map { Float($0) } }) else { return false }
            // broadcast from the last rank.
            let b = try comm.broadcast(r == n - 1 ? [1, 2, 3] : [], root: n - 1)
            guard b == [1, 2, 3] else { return false }
            guard try comm.sum(Double(r)) == Double(n * (n - 1) / 2) else { return false }
            try comm.barrier()
            return true
        }
        #expect(results == Array(repeating: true, count: ranks))
    }

    struct Boom: Error {}

    @Test("a rank that fails stops the others with an error (no hang), and its own error is the one reported")
    func failureStopsPeers() throws {
        let start = Date()
        #expect(throws: Boom.self) {
            _ = try InProcessGroup.run(size: 3) { comm -> Int in
                if comm.rank == 1 { throw Boom() }
                try comm.barrier()      // ranks 0 and 2 wait here until rank 1's failure aborts the group
                try comm.barrier()
                return 0
            }
        }
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test("MPI is reported as available or with a reason (never a crash) in a process not started by mpirun")
    func mpiAvailability() {
        if let reason = MPICommunicator.unavailableReason { #expect(!reason.isEmpty) }
        #expect(MPICommunicator.launched == (ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil
                                            || ProcessInfo.processInfo.environment["PMIX_RANK"] != nil
                                            || ProcessInfo.processInfo.environment["PMI_RANK"] != nil))
    }

    /// The clang that ships with the Swift toolchain (it compiles the C targets).
    static let clang: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        return path.split(separator: ":").map { "\($0)/clang" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    @Test("CMPI compiles without MPI's headers (fallbacks that report why), as well as with them",
          .enabled(if: clang != nil, "no clang on PATH"))
    func shimWithoutMPI() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for define in ["-DRECKIT_WITHOUT_MPI", "-DRECKIT_WITH_WHATEVER_MPI_IS_INSTALLED"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.clang!)
            p.arguments = ["-fsyntax-only", "-Wall", "-Wextra", "-Werror", define, "-I", root.appendingPathComponent("Sources/CMPI/include").path,
                           root.appendingPathComponent("Sources/CMPI/mpi_shim.c").path]
            let err = Pipe()
            p.standardError = err
            try p.run()
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(define): \(message)")
        }
    }
}
