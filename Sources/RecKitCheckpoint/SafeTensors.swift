import CRecKitShims
import Foundation
import RecKitCore

/// The safetensors layout (huggingface/safetensors): an 8-byte little-endian header length N, a UTF-8 JSON header of
/// N bytes (padded with spaces to a multiple of 8), then the data buffer. The header maps each tensor name to
/// `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets into the data buffer) and may hold `__metadata__`, an
/// object of string values. The tensors cover the buffer exactly, without holes or overlaps.
///
/// Writing: tensors are laid out widest dtype first (so every tensor starts aligned to its element size), written
/// from their live memory straight into a temp file that is fsynced and renamed into place.
/// Reading: the header is parsed and every length, offset and shape product is validated with overflow-checked
/// arithmetic against the file's size before anything is allocated; tensors are then read with `pread` straight
/// into their destination (no mapping, no intermediate copy).
public enum SafeTensors {
    /// Largest header accepted (the format's own readers cap it at 100 MB).
    public static let maxHeaderBytes = 100_000_000

    /// One tensor as the header describes it.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var dtype: TensorDType
        public var shape: [Int]
        /// Byte range in the data buffer.
        public var begin: Int
        public var end: Int
        public var byteCount: Int { end - begin }
    }

    /// Writes `tensors` and `metadata` to `path` atomically.
    public static func write(_ tensors: [StateTensor], metadata: [String: String], to path: String) throws(CheckpointError) {
        try write(tensors, to: path) { _ in metadata }
    }

    /// Chunk size for streamed tensors (read from their source, checksummed, written).
    static let streamChunkBytes = 8 << 20

    /// Writes `tensors` to `path` atomically, with the header's metadata made by `metadata` from every tensor's
    /// CRC-32C. In-memory tensors are checksummed first; streamed ones (`StateTensor.source`) are checksummed while
    /// they are copied, so the header is written last: a header with the widest placeholder checksums reserves its
    /// space, and the final one (never longer) is written over it, padded with spaces.
    ///
    /// Tensors whose source is `ExternalTensorBytes` are written by others (the ranks of a distributed run, each
    /// its shards): their byte ranges are left as a hole, and once everything else is in the temporary file
    /// `external(temporaryPath, fileOffsets)` is called with each such tensor's absolute offset in the file; when it
    /// returns, the writers have put their bytes there and synced them. Their checksums are then read back from the
    /// file, the header is completed, and the file is synced and renamed into place as usual.
    public static func write(_ tensors: [StateTensor], to path: String,
                             external: ((_ temporaryPath: String, _ fileOffsets: [String: Int]) throws(CheckpointError) -> Void)? = nil,
                             metadata: ([String: UInt32]) -> [String: String]) throws(CheckpointError) {
        var names = Set<String>()
        for t in tensors {
            guard names.insert(t.name).inserted else { throw .tensor(path: path, name: t.name, reason: "listed twice") }
            guard t.name != "__metadata__", !t.name.isEmpty else { throw .tensor(path: path, name: t.name, reason: "reserved name") }
            guard t.elementCount * t.dtype.byteWidth == t.byteCount else {
                throw .tensor(path: path, name: t.name, reason: "\(t.byteCount) bytes for shape \(t.shape) of \(t.dtype.rawValue)")
            }
        }
        // Widest dtype first, then the state's own order: every tensor starts aligned to its element size.
        let ordered = tensors.enumerated().sorted {
            $0.element.dtype.byteWidth != $1.element.dtype.byteWidth ? $0.element.dtype.byteWidth > $1.element.dtype.byteWidth : $0.offset < $1.offset
        }.map(\.element)
        var crcs: [String: UInt32] = [:]
        for t in ordered { crcs[t.name] = t.source == nil ? reckit_crc32c(0, t.data.baseAddress, t.data.count) : UInt32.max }
        let streamed = ordered.contains { $0.source != nil }
        let externalNames = ordered.filter { $0.source is ExternalTensorBytes }.map(\.name)
        guard externalNames.isEmpty || external != nil else {
            throw .tensor(path: path, name: externalNames[0], reason: "written by other processes, but no one was asked to write it")
        }
        let first = try header(ordered, metadata: metadata(crcs), path: path, reserve: streamed ? 64 : 0)
        try AtomicWrite.write(to: path) { (w) throws(CheckpointError) in
            try w.write(first)
            var chunk: AlignedBuffer<UInt8>?
            var fileOffsets: [String: Int] = [:]
            var cursor = first.count
            for t in ordered where t.byteCount > 0 {
                defer { cursor += t.byteCount }
                guard let source = t.source else { try w.write(UnsafeRawBufferPointer(t.data)); continue }
                if source is ExternalTensorBytes { fileOffsets[t.name] = cursor; try w.skip(t.byteCount); continue }
                let buffer = chunk ?? AlignedBuffer<UInt8>(count: streamChunkBytes)
                chunk = buffer
                crcs[t.name] = try checksumInChunks(t.byteCount, buffer: buffer) { (part, offset) throws(CheckpointError) in
                    do throws(TensorIOError) { try source.read(into: part, at: offset) } catch {
                        throw .tensor(path: path, name: t.name, reason: "reading its rows: \(error)")
                    }
                    try w.write(UnsafeRawBufferPointer(part))
                }
            }
            if let external, !externalNames.isEmpty {
                try w.extend(to: cursor)  // the holes exist before anyone writes into them
                try external(w.temporaryPath, fileOffsets)
                let buffer = chunk ?? AlignedBuffer<UInt8>(count: streamChunkBytes)
                for t in ordered where t.source is ExternalTensorBytes {
                    let base = fileOffsets[t.name]!
                    crcs[t.name] = try checksumInChunks(t.byteCount, buffer: buffer) { (part, offset) throws(CheckpointError) in
                        try w.read(into: part, at: base + offset)
                    }
                }
            }
            if streamed {
                // Same length field, same size: the final JSON padded with spaces to the reserved length.
                var last = try header(ordered, metadata: metadata(crcs), path: path, reserve: 0)
                guard last.count <= first.count else { throw .io(path: path, reason: "the final header outgrew its reserved space") }
                last.append(Data(repeating: 0x20, count: first.count - last.count))
                last.replaceSubrange(0..<8, with: first.prefix(8))
                try w.write(last, at: 0)
            }
        }
    }

    /// CRC-32C of `count` bytes that `fill(chunk, offset)` puts into `buffer` chunk by chunk (streamed tensors, read
    /// from their source; external ones, read back from the file).
    static func checksumInChunks(_ count: Int, buffer: AlignedBuffer<UInt8>,
                                 _ fill: (UnsafeMutableRawBufferPointer, Int) throws(CheckpointError) -> Void) throws(CheckpointError) -> UInt32 {
        var crc: UInt32 = 0, offset = 0
        while offset < count {
            let n = min(streamChunkBytes, count - offset)
            let part = UnsafeMutableRawBufferPointer(start: buffer.pointer, count: n)
            try fill(part, offset)
            crc = reckit_crc32c(crc, part.baseAddress, n)
            offset += n
        }
        return crc
    }

    /// The 8-byte length and the JSON header (padded with spaces to a multiple of 8, plus `reserve` more bytes).
    static func header(_ ordered: [StateTensor], metadata: [String: String], path: String, reserve: Int) throws(CheckpointError) -> Data {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for t in ordered {
            header[t.name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.byteCount]] as [String: Any]
            offset += t.byteCount
        }
        var json: Data
        do { json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]) } catch {
            throw .io(path: path, reason: "cannot encode the header: \(error)")
        }
        json.append(Data(repeating: 0x20, count: reserve))
        while json.count % 8 != 0 { json.append(0x20) }
        var prefix = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { prefix.append(contentsOf: $0) }
        prefix.append(json)
        return prefix
    }

    /// Reads and validates the header of an open file of `size` bytes.
    static func readHeader(fd: Int32, size: Int, path: String) throws(CheckpointError) -> (entries: [Entry], metadata: [String: String], dataStart: Int) {
        guard size >= 8 else { throw .invalid(path: path, reason: "header length: the file has \(size) bytes, fewer than 8") }
        var lenBytes = [UInt8](repeating: 0, count: 8)
        try preadFully(fd, into: &lenBytes, at: 0, path: path, what: "header length")
        let raw = lenBytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard let n = Int(exactly: raw), n <= maxHeaderBytes, n <= size - 8 else {
            throw .invalid(path: path, reason: "header length: \(raw) bytes does not fit a \(size)-byte file (not a safetensors file?)")
        }
        var headerBytes = [UInt8](repeating: 0, count: n)
        try preadFully(fd, into: &headerBytes, at: 8, path: path, what: "header")
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw .invalid(path: path, reason: "header: does not start with '{' (not a safetensors file)")
        }
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any] else {
                throw CheckpointError.invalid(path: path, reason: "header: not a JSON object")
            }
            object = o
        } catch let e as CheckpointError { throw e } catch {
            throw .invalid(path: path, reason: "header: not valid JSON (\(error.localizedDescription))")
        }
        let bufferSize = size - 8 - n
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in object {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw .invalid(path: path, reason: "__metadata__: not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw .invalid(path: path, reason: "__metadata__.\(k): not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let d = value as? [String: Any] else { throw .tensor(path: path, name: name, reason: "header entry is not an object") }
            guard let dt = d["dtype"] as? String, let dtype = TensorDType(rawValue: dt) else {
                throw .tensor(path: path, name: name, reason: "dtype \(String(describing: d["dtype"] ?? "missing")) is not one RecKit reads")
            }
            guard let shapeAny = d["shape"] as? [Any], let offsetsAny = d["data_offsets"] as? [Any], offsetsAny.count == 2 else {
                throw .tensor(path: path, name: name, reason: "shape or data_offsets missing or malformed")
            }
            var shape: [Int] = []
            var elements = 1
            for s in shapeAny {
                guard let x = exactInt(s), x >= 0 else { throw .tensor(path: path, name: name, reason: "shape \(shapeAny) has a non-integer or negative size") }
                let (p, o) = elements.multipliedReportingOverflow(by: x)
                guard !o else { throw .tensor(path: path, name: name, reason: "shape \(shapeAny) overflows") }
                elements = p
                shape.append(x)
            }
            guard let begin = exactInt(offsetsAny[0]), let end = exactInt(offsetsAny[1]), begin >= 0, begin <= end, end <= bufferSize else {
                throw .tensor(path: path, name: name, reason: "data_offsets \(offsetsAny) outside the \(bufferSize)-byte data buffer")
            }
            let (bytes, o) = elements.multipliedReportingOverflow(by: dtype.byteWidth)
            guard !o, bytes == end - begin else {
                throw .tensor(path: path, name: name, reason: "data_offsets span \(end - begin) bytes, shape \(shape) of \(dtype.rawValue) needs \(o ? "more" : String(bytes))")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        entries.sort { $0.begin != $1.begin ? $0.begin < $1.begin : $0.end < $1.end }
        var cursor = 0
        for e in entries {
            guard e.begin == cursor else {
                throw .tensor(path: path, name: e.name, reason: e.begin < cursor ? "overlaps the tensor before it" : "leaves a hole of \(e.begin - cursor) bytes before it")
            }
            cursor = e.end
        }
        guard cursor == bufferSize else { throw .invalid(path: path, reason: "the tensors cover \(cursor) of the data buffer's \(bufferSize) bytes") }
        return (entries, metadata, 8 + n)
    }

    /// An integer JSON number (NSNumber from JSONSerialization), exactly representable.
    static func exactInt(_ v: Any) -> Int? {
        guard let n = v as? NSNumber else { return nil }
        let i = n.int64Value
        return n.stringValue == String(i) ? Int(exactly: i) : nil
    }

    static func preadFully(_ fd: Int32, into buffer: inout [UInt8], at offset: Int, path: String, what: String) throws(CheckpointError) {
        let count = buffer.count
        let failure: CheckpointError? = buffer.withUnsafeMutableBytes { raw in
            do throws(CheckpointError) { try preadFully(fd, raw, at: offset, path: path, what: what); return nil } catch { return error }
        }
        if let failure { throw failure }
        _ = count
    }

    static func preadFully(_ fd: Int32, _ raw: UnsafeMutableRawBufferPointer, at offset: Int, path: String, what: String) throws(CheckpointError) {
        var done = 0
        while done < raw.count {
            let n = pread(fd, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .io(path: path, reason: "\(what): read failed: \(String(cString: strerror(errno)))") }
            if n == 0 { throw .invalid(path: path, reason: "\(what): truncated file") }
            done += n
        }
    }
}

/// Atomic file writing for checkpoints: a temp file created exclusively beside the target (mkstemp), filled,
/// fsynced, renamed over the target, and the directory fsynced. A crash leaves the old file or the new one.
enum AtomicWrite {
    struct Sink {
        let fd: Int32
        let path: String
        /// The file being written (renamed to `path` at the end).
        let temporaryPath: String
        /// Moves the file position `count` bytes forward without writing (a hole others fill).
        func skip(_ count: Int) throws(CheckpointError) {
            guard lseek(fd, off_t(count), SEEK_CUR) >= 0 else { throw .io(path: path, reason: "seek failed: \(String(cString: strerror(errno)))") }
        }
        /// Sets the file's size to `size` bytes.
        func extend(to size: Int) throws(CheckpointError) {
            guard ftruncate(fd, off_t(size)) == 0 else { throw .io(path: path, reason: "cannot size the file: \(String(cString: strerror(errno)))") }
        }
        /// Reads back bytes of the file being written.
        func read(into raw: UnsafeMutableRawBufferPointer, at offset: Int) throws(CheckpointError) {
            try SafeTensors.preadFully(fd, raw, at: offset, path: temporaryPath, what: "bytes written by other processes")
        }
        func write(_ raw: UnsafeRawBufferPointer) throws(CheckpointError) {
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { throw .io(path: path, reason: "write failed: \(String(cString: strerror(errno)))") }
                done += n
            }
        }
        func write(_ data: Data) throws(CheckpointError) {
            let failure: CheckpointError? = data.withUnsafeBytes { raw in
                do throws(CheckpointError) { try write(raw); return nil } catch { return error }
            }
            if let failure { throw failure }
        }
        /// Writes `data` at byte `offset` of the file (the header, rewritten last), leaving the file position alone.
        func write(_ data: Data, at offset: Int) throws(CheckpointError) {
            let failure: CheckpointError? = data.withUnsafeBytes { raw in
                do throws(CheckpointError) { try write(raw, at: offset); return nil } catch { return error }
            }
            if let failure { throw failure }
        }
        /// Writes `raw` at byte `offset` (`pwrite`, retried until complete), leaving the file position alone.
        func write(_ raw: UnsafeRawBufferPointer, at offset: Int) throws(CheckpointError) {
            var done = 0
            while done < raw.count {
                let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { throw .io(path: path, reason: "write failed: \(String(cString: strerror(errno)))") }
                done += n
            }
        }
    }

    static func write(to path: String, _ fill: (Sink) throws(CheckpointError) -> Void) throws(CheckpointError) {
        let dir = (path as NSString).deletingLastPathComponent
        var template = Array(((dir.isEmpty ? "." : dir) + "/.\((path as NSString).lastPathComponent).tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }  // O_RDWR: the writer reads back holes others filled
        guard fd >= 0 else { throw .io(path: path, reason: "cannot create a temporary file beside it: \(String(cString: strerror(errno)))") }
        let tmp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        fchmod(fd, 0o644)
        do throws(CheckpointError) {
            try fill(Sink(fd: fd, path: path, temporaryPath: tmp))
        } catch {
            close(fd); unlink(tmp)
            throw error
        }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced else { unlink(tmp); throw .io(path: path, reason: "fsync failed: \(String(cString: strerror(errno)))") }
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw .io(path: path, reason: "rename failed: \(reason)")
        }
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}

/// The source of a tensor that other processes write into a checkpoint file (a distributed run's shards): it has no
/// bytes of its own. `SafeTensors.write` leaves the tensor's range for them (see its `external` argument).
public final class ExternalTensorBytes: TensorDataSource {
    public init() {}
    public func read(into destination: UnsafeMutableRawBufferPointer, at offset: Int) throws(TensorIOError) {
        throw TensorIOError("the tensor's bytes are written by other processes")
    }
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(TensorIOError) {
        throw TensorIOError("the tensor's bytes are written by other processes")
    }
}

extension SafeTensors {
    /// Writes `pieces` (absolute file offset, bytes) into the file at `path` that another process is writing
    /// (`SafeTensors.write`'s `external` hand-off), one `pwrite` per piece, then syncs them: what every rank of a
    /// distributed checkpoint does with its shards (a row- or table-wise shard is one piece per tensor; a
    /// column-wise shard one per row, its slice of the row being strided in the file).
    public static func writePieces(_ pieces: [(offset: Int, bytes: UnsafeRawBufferPointer)], into path: String) throws(CheckpointError) {
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { throw .io(path: path, reason: "cannot open the checkpoint being written: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let sink = AtomicWrite.Sink(fd: fd, path: path, temporaryPath: path)
        for piece in pieces where piece.bytes.count > 0 { try sink.write(piece.bytes, at: piece.offset) }
        guard fsync(fd) == 0 else { throw .io(path: path, reason: "fsync failed: \(String(cString: strerror(errno)))") }
    }
}
