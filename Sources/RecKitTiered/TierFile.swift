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
final class TierFile: @unchecked Sendable {
    let fd: Int32
    let path: String
    let writable: Bool

    private init(fd: Int32, path: String, writable: Bool) { self.fd = fd; self.path = path; self.writable = writable }

    deinit { close(fd) }

    /// A new scratch file of `bytes` (zeros, sparse) in `directory`, unlinked at once.
    static func scratch(directory: String, name: String, bytes: Int) throws(TensorIOError) -> TierFile {
        let safe = name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "_" }
        var template = Array((directory + "/.reckit-tier-" + String(safe) + "-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw TensorIOError("\(directory): cannot create a tier file: \(String(cString: strerror(errno)))") }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        unlink(path)
        guard ftruncate(fd, off_t(bytes)) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TensorIOError("\(directory): cannot size a tier file to \(bytes) bytes: \(reason)")
        }
        return TierFile(fd: fd, path: directory + " (tier of \(name))", writable: true)
    }

    /// `path` opened read-only (a checkpoint whose tensors are read in place).
    static func readOnly(_ path: String) throws(TensorIOError) -> TierFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TensorIOError("\(path): cannot open: \(String(cString: strerror(errno)))") }
        return TierFile(fd: fd, path: path, writable: false)
    }

    /// Reads `count` bytes at `offset` into `p` (a sequential range: fill, checkpoints).
    func read(_ p: UnsafeMutableRawPointer, count: Int, at offset: Int) throws(TensorIOError) {
        let e = TierIO.transfer(write: false, fd: fd, TierRequest(buffer: p, length: UInt32(count), offset: Int64(offset)))
        if e != 0 { throw TensorIOError("\(path): read failed: \(String(cString: strerror(-e)))") }
    }

    /// Writes `count` bytes from `p` at `offset`.
    func write(_ p: UnsafeRawPointer, count: Int, at offset: Int) throws(TensorIOError) {
        let e = TierIO.transfer(write: true, fd: fd, TierRequest(buffer: UnsafeMutableRawPointer(mutating: p), length: UInt32(count), offset: Int64(offset)))
        if e != 0 { throw TensorIOError("\(path): write failed: \(String(cString: strerror(-e)))") }
    }
}
