import Foundation

/// Little-endian byte building for the shard writer.
struct ByteWriter {
    var buffer = Data()
    mutating func bytes(_ b: [UInt8]) { buffer.append(contentsOf: b) }
    mutating func data(_ d: Data) { buffer.append(d) }
    mutating func raw(_ r: UnsafeRawBufferPointer) { buffer.append(contentsOf: r) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }
}

/// Bounds-checked little-endian reading; running past the end is a "truncated" error naming the field.
struct ByteReader {
    let data: Data
    let path: String
    var offset = 0

    var remaining: Int { data.count - offset }

    mutating func slice(_ n: Int, field: String = "data") throws(DataError) -> Data {
        guard n >= 0, n <= remaining else {
            throw .badShard(path: path, reason: "\(field): truncated (needs \(n) bytes at offset \(offset), \(remaining) left)")
        }
        defer { offset += n }
        return data.subdata(in: (data.startIndex + offset)..<(data.startIndex + offset + n))
    }
    mutating func bytes(_ n: Int, field: String = "data") throws(DataError) -> [UInt8] { [UInt8](try slice(n, field: field)) }
    mutating func u32(field: String = "u32") throws(DataError) -> UInt32 {
        let d = try slice(4, field: field)
        return d.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    }
    mutating func u64(field: String = "u64") throws(DataError) -> UInt64 {
        let d = try slice(8, field: field)
        return d.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }
    /// A count or length read from the file, as an Int no larger than `limit` (e.g. the bytes left).
    func length(_ raw: UInt64, field: String, limit: Int) throws(DataError) -> Int {
        guard let n = Int(exactly: raw), n <= limit else {
            throw .badShard(path: path, reason: "\(field): \(raw) is more than the \(limit) possible here (truncated or corrupted file)")
        }
        return n
    }
}

/// Writes a file atomically: temp file in the same directory, fsync, rename, fsync of the directory.
/// A crash leaves either the old file or the new one, never a torn one.
public enum AtomicFile {
    /// An open temp file being filled.
    public struct Sink {
        let fd: Int32
        let path: String
        public func write(_ raw: UnsafeRawBufferPointer) throws(DataError) {
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { throw .io(path: path, reason: "write failed: \(String(cString: strerror(errno)))") }
                done += n
            }
        }
        public func write(_ data: Data) throws(DataError) {
            let failure: DataError? = data.withUnsafeBytes { raw in
                do throws(DataError) { try write(raw); return nil } catch { return error }
            }
            if let failure { throw failure }
        }
    }

    public static func write(_ data: Data, to path: String) throws(DataError) {
        try write(to: path) { (sink) throws(DataError) in try sink.write(data) }
    }

    public static func write(to path: String, _ fill: (Sink) throws(DataError) -> Void) throws(DataError) {
        let dir = (path as NSString).deletingLastPathComponent
        // mkstemp: a fresh name, created exclusively (never a predictable path someone else may have placed).
        var template = Array(((dir.isEmpty ? "." : dir) + "/.\((path as NSString).lastPathComponent).tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw .io(path: path, reason: "cannot create a temporary file beside it: \(String(cString: strerror(errno)))") }
        let tmp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        fchmod(fd, 0o644)
        do throws(DataError) {
            try fill(Sink(fd: fd, path: path))
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        let syncOK = fsync(fd) == 0
        close(fd)
        guard syncOK else {
            unlink(tmp)
            throw .io(path: path, reason: "fsync failed: \(String(cString: strerror(errno)))")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw .io(path: path, reason: "rename failed: \(String(cString: strerror(errno)))")
        }
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
