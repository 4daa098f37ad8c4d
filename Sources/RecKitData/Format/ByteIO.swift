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

/// Bounds-checked little-endian reading; running past the end is a "truncated" shard error.
struct ByteReader {
    let data: Data
    let path: String
    var offset = 0

    mutating func slice(_ n: Int) throws(DataError) -> Data {
        guard n >= 0, offset + n <= data.count else {
            throw .badShard(path: path, reason: "truncated: needs \(n) bytes at offset \(offset), file has \(data.count)")
        }
        defer { offset += n }
        return data.subdata(in: (data.startIndex + offset)..<(data.startIndex + offset + n))
    }
    mutating func bytes(_ n: Int) throws(DataError) -> [UInt8] { [UInt8](try slice(n)) }
    mutating func u32() throws(DataError) -> UInt32 {
        let d = try slice(4)
        return d.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    }
    mutating func u64() throws(DataError) -> UInt64 {
        let d = try slice(8)
        return d.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
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
        let tmp = (dir.isEmpty ? "." : dir) + "/.\((path as NSString).lastPathComponent).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw .io(path: path, reason: "cannot create \(tmp): \(String(cString: strerror(errno)))") }
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
