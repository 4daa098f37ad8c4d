import Foundation
import RecKitCore
import RecKitKernels

/// Where a tiered table's rows are on disk: record r (one row) is `recordBytes` bytes at `base + r · recordBytes`,
/// its first `weightBytes` the row (D fp32, or a quantized row), then `stateFloats` fp32 of the sparse optimizer's
/// state for that row (row-wise Adagrad 1, Adagrad D, SGD and inference 0). One record per row means one read per
/// miss, whatever the optimizer.
struct TierLayout: Sendable {
    var rows: Int
    var weightBytes: Int
    var stateFloats: Int
    var base: Int
    var recordBytes: Int { weightBytes + 4 * stateFloats }
    @inline(__always) func offset(_ row: Int64) -> Int64 { Int64(base) + row * Int64(recordBytes) }
}

/// A table's file: either a scratch file RecKit owns (created exclusively in the tier directory and unlinked at once,
/// so a killed run leaves nothing behind; training rows live here), or a checkpoint read in place (serving: rows are
/// read straight from the checkpoint's tensor, never written).
///
/// Scratch files are allocated in full at creation (`posix_fallocate`: a full disk is an error then, never a failed
/// write-back later). Evicted rows are small records scattered over the file, written with one `pwrite` each on the
/// write-back queue; fetches are batched reads (io_uring or the pread pool).
///
/// The page cache must hold these files in 4 KiB pages. Linux 6.x (ext4 since 6.16, XFS earlier) caches a file in
/// large folios when it is written or read ahead in large pieces, and a folio is dirtied, written back and mapped
/// as a whole: measured on this VM (kernel 6.18, ext4), a 68-byte `pwrite` into a file written in 16 MiB chunks cost
/// 38.8 µs and copying records into a shared mapping of it mapped the whole 2 GiB file into the process after
/// 20,000 records (its RSS grew by the file's size); after writing the same file in 4 KiB pieces, a 68-byte `pwrite`
/// cost 1.3 µs and `pread` 1.1 µs (C loop over 200,000 random records of a cached 2 GiB file). So bulk
/// writes (fill, loading a checkpoint) go in page-sized pieces and the file is opened for random access
/// (`POSIX_FADV_RANDOM`: no read-ahead, so misses read single pages).
final class TierFile: @unchecked Sendable {
    let fd: Int32
    let path: String
    let writable: Bool
    /// Bulk writes are split at multiples of this (the page cache's base page).
    static let pieceBytes = 4096

    private init(fd: Int32, path: String, writable: Bool) {
        self.fd = fd; self.path = path; self.writable = writable
    }

    deinit { close(fd) }

    /// A new scratch file of `bytes` (zeros) in `directory`, allocated in full, unlinked at once.
    static func scratch(directory: String, name: String, bytes: Int) throws(TensorIOError) -> TierFile {
        let safe = name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "_" }
        var template = Array((directory + "/.reckit-tier-" + String(safe) + "-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw TensorIOError("\(directory): cannot create a tier file: \(String(cString: strerror(errno)))") }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        unlink(path)
        if bytes > 0 {
            let r = posix_fallocate(fd, 0, off_t(bytes))
            guard r == 0 else {
                close(fd)
                throw TensorIOError("\(directory): cannot allocate \(bytes) bytes for the tier of \(name): \(String(cString: strerror(r)))")
            }
        }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM)
        return TierFile(fd: fd, path: directory + " (tier of \(name))", writable: true)
    }

    /// Writes scattered records (write-backs), one `pwrite` each.
    func writeRecords(_ requests: UnsafeBufferPointer<TierRequest>) throws(TensorIOError) {
        for r in requests {
            let e = TierIO.transfer(write: true, fd: fd, r)
            if e != 0 { throw TensorIOError("\(path): write failed: \(String(cString: strerror(-e)))") }
        }
    }

    /// `path` opened read-only (a checkpoint whose tensors are read in place).
    static func readOnly(_ path: String) throws(TensorIOError) -> TierFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TensorIOError("\(path): cannot open: \(String(cString: strerror(errno)))") }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM)
        return TierFile(fd: fd, path: path, writable: false)
    }

    /// Reads `count` bytes at `offset` into `p` (a sequential range: fill, checkpoints).
    func read(_ p: UnsafeMutableRawPointer, count: Int, at offset: Int) throws(TensorIOError) {
        let e = TierIO.transfer(write: false, fd: fd, TierRequest(buffer: p, length: UInt32(count), offset: Int64(offset)))
        if e != 0 { throw TensorIOError("\(path): read failed: \(String(cString: strerror(-e)))") }
    }

    /// Writes `count` bytes from `p` at `offset` (a sequential range), in pieces that end on page boundaries so the
    /// page cache keeps base pages (see the type's note).
    func write(_ p: UnsafeRawPointer, count: Int, at offset: Int) throws(TensorIOError) {
        var done = 0
        while done < count {
            let position = offset + done
            let n = min(count - done, Self.pieceBytes - position % Self.pieceBytes)
            let e = TierIO.transfer(write: true, fd: fd, TierRequest(buffer: UnsafeMutableRawPointer(mutating: p + done), length: UInt32(n),
                                                                     offset: Int64(position)))
            if e != 0 { throw TensorIOError("\(path): write failed: \(String(cString: strerror(-e)))") }
            done += n
        }
    }
}
