import CRecKitShims
import Foundation
import RecKitCore
import RecKitEmbeddings
import RecKitKernels
import RecKitModels

/// RecKit checkpoints: the safetensors layout (`SafeTensors`) with named tensors — every model parameter, embedding
/// table, sparse and dense optimizer state, and the vocabularies (`vocabulary.<feature>`, U64) — and RecKit's header
/// in `__metadata__` (`CheckpointMetadata`), including a CRC-32C per tensor. Python's `safetensors.numpy.load_file`
/// reads them as they are.
public enum Checkpoint {
    /// Writes `tensors` (a model's state, then any optimizer state) and the vocabularies, atomically.
    /// `external`: see `SafeTensors.write` (tensors whose bytes other processes write).
    public static func write(_ tensors: [StateTensor], vocabularies: [(feature: String, keys: [UInt64])] = [],
                             metadata: CheckpointMetadata, to path: String,
                             external: ((_ temporaryPath: String, _ fileOffsets: [String: Int]) throws(CheckpointError) -> Void)? = nil) throws(CheckpointError) {
        var all = tensors
        var keep: [[UInt64]] = []
        for v in vocabularies { keep.append(v.keys) }
        // The vocabularies' memory must stay alive while written: copy them into buffers we own.
        let buffers = keep.map { AlignedBuffer<UInt64>($0) }
        for (v, b) in zip(vocabularies, buffers) {
            all.append(StateTensor(name: OptimizerStateNames.vocabulary(v.feature), dtype: .u64, shape: [b.count], role: .buffer,
                                   data: UnsafeMutableRawBufferPointer(start: b.pointer, count: b.count * 8)))
        }
        let directory = all.map { ($0.name, $0.dtype, $0.shape) }
        try withExtendedLifetime(buffers) { () throws(CheckpointError) in
            try SafeTensors.write(all, to: path, external: external) { crcs in
                var meta = metadata.encoded(crcs: crcs)
                meta[headerChecksumKey] = String(format: "%08x", headerChecksum(meta, directory))
                return meta
            }
        }
    }

    /// The metadata key of the header checksum.
    static let headerChecksumKey = "header_crc32c"

    /// CRC-32C of the header's meaning: every metadata entry but this checksum, and every tensor's name, dtype and
    /// shape, in sorted order. Any change to what the header says (a renamed tensor, another shape, a different step)
    /// fails it; re-serialising the same header (key order, spaces) does not.
    static func headerChecksum(_ metadata: [String: String], _ tensors: [(String, TensorDType, [Int])]) -> UInt32 {
        var text = ""
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) where k != headerChecksumKey { text += "m\u{0}\(k)\u{0}\(v)\n" }
        for (n, d, shape) in tensors.sorted(by: { $0.0 < $1.0 }) { text += "t\u{0}\(n)\u{0}\(d.rawValue)\u{0}\(shape)\n" }
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { reckit_crc32c(0, $0.baseAddress, $0.count) }
    }

    /// Opens `path` and validates its header (nothing large is read or allocated yet).
    public static func open(_ path: String) throws(CheckpointError) -> CheckpointReader { try CheckpointReader(path: path) }
}

/// An open checkpoint: its metadata and tensor directory, validated; tensors are read on demand.
public final class CheckpointReader: @unchecked Sendable {
    public let path: String
    public let metadata: CheckpointMetadata
    /// Tensors in file order.
    public let entries: [SafeTensors.Entry]
    public let fileSize: Int
    let byName: [String: SafeTensors.Entry]
    let crcs: [String: UInt32]
    let dataStart: Int
    let fd: Int32
    /// The header checksum matches: nothing the header says was changed after writing. Checked by every read, after
    /// the name and shape checks (so a renamed or reordered tensor is reported by name).
    public let headerIntact: Bool

    init(path: String) throws(CheckpointError) {
        self.path = path
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            Glibc.close(fd)
            throw .io(path: path, reason: "not a regular file")
        }
        do throws(CheckpointError) {
            var magic = [UInt8](repeating: 0, count: 8)
            if st.st_size >= 8 {
                try SafeTensors.preadFully(fd, into: &magic, at: 0, path: path, what: "magic")
                if magic == Array("RKCKPT01".utf8) { throw CheckpointError.legacyFormat(path: path) }
            }
            let (entries, raw, dataStart) = try SafeTensors.readHeader(fd: fd, size: Int(st.st_size), path: path)
            let stored = raw[Checkpoint.headerChecksumKey].flatMap { UInt32($0, radix: 16) }
            headerIntact = stored == Checkpoint.headerChecksum(raw, entries.map { ($0.name, $0.dtype, $0.shape) })
            let (meta, crcs) = try CheckpointMetadata.decode(raw, path: path)
            for e in entries where crcs[e.name] == nil {
                throw CheckpointError.tensor(path: path, name: e.name, reason: "no checksum in __metadata__.crc32c")
            }
            self.entries = entries
            self.metadata = meta
            self.crcs = crcs
            self.dataStart = dataStart
            self.fileSize = Int(st.st_size)
            self.byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
            self.fd = fd
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit { Glibc.close(fd) }

    public func entry(_ name: String) -> SafeTensors.Entry? { byName[name] }

    /// Reads every tensor of `tensors` straight into its memory. Each must be in the file with the same dtype and shape;
    /// every file tensor not read must satisfy `ignoring` (otherwise it is "unexpected": a renamed or foreign tensor).
    /// Checksums are verified per tensor.
    public func read(into tensors: [StateTensor], ignoring: (String) -> Bool) throws(CheckpointError) {
        try check(tensors, ignoring: ignoring)
        try verifyHeader()
        for t in tensors {
            let e = byName[t.name]!
            let crc: UInt32
            if let source = t.source {
                crc = try stream(e, into: source, name: t.name)
            } else {
                try SafeTensors.preadFully(fd, t.data, at: dataStart + e.begin, path: path, what: "tensor \(t.name)")
                crc = reckit_crc32c(0, t.data.baseAddress, t.data.count)
            }
            guard crc == crcs[t.name] else {
                throw .tensor(path: path, name: t.name, reason: "checksum mismatch (the file is corrupted, or its tensors were renamed or reordered)")
            }
        }
    }

    /// Copies tensor `e` from the file into a streamed tensor's source in chunks; returns its CRC-32C.
    func stream(_ e: SafeTensors.Entry, into source: any TensorDataSource, name: String) throws(CheckpointError) -> UInt32 {
        let chunk = AlignedBuffer<UInt8>(count: min(SafeTensors.streamChunkBytes, max(e.byteCount, 1)))
        var crc: UInt32 = 0, offset = 0
        while offset < e.byteCount {
            let n = min(chunk.count, e.byteCount - offset)
            let part = UnsafeMutableRawBufferPointer(start: chunk.pointer, count: n)
            try SafeTensors.preadFully(fd, part, at: dataStart + e.begin + offset, path: path, what: "tensor \(name)")
            crc = reckit_crc32c(crc, part.baseAddress, n)
            do throws(TensorIOError) { try source.write(UnsafeRawBufferPointer(part), at: offset) } catch {
                throw .tensor(path: path, name: name, reason: "writing its rows: \(error)")
            }
            offset += n
        }
        return crc
    }

    /// The absolute file offset of tensor `name`'s data (for storages that read rows straight from the checkpoint).
    public func dataOffset(of name: String) -> Int? { byName[name].map { dataStart + $0.begin } }

    /// Throws unless the header checksum matches.
    public func verifyHeader() throws(CheckpointError) {
        guard headerIntact else { throw .invalid(path: path, reason: "header: checksum mismatch (the header was changed after it was written)") }
    }

    /// The checks of `read` without reading: names, dtypes and shapes.
    public func check(_ tensors: [StateTensor], ignoring: (String) -> Bool) throws(CheckpointError) {
        var wanted = Set<String>()
        for t in tensors {
            wanted.insert(t.name)
            guard let e = byName[t.name] else {
                throw .tensor(path: path, name: t.name, reason: "missing from the file (renamed, or a checkpoint of another model?)")
            }
            guard e.dtype == t.dtype, e.shape == t.shape else {
                throw .tensor(path: path, name: t.name, reason: "the file has \(e.dtype.rawValue) \(e.shape), the model needs \(t.dtype.rawValue) \(t.shape)")
            }
        }
        for e in entries where !wanted.contains(e.name) && !ignoring(e.name) {
            throw .tensor(path: path, name: e.name, reason: "unexpected: the model has no tensor of that name")
        }
    }

    /// The vocabularies of `features` (empty when the checkpoint has none).
    public func vocabularies(features: [String]) throws(CheckpointError) -> [[UInt64]] {
        try verifyHeader()
        let names = features.map(OptimizerStateNames.vocabulary)
        guard names.contains(where: { byName[$0] != nil }) else { return [] }
        var out: [[UInt64]] = []
        for name in names {
            guard let e = byName[name] else { throw .tensor(path: path, name: name, reason: "missing (the other features have vocabularies)") }
            guard e.dtype == .u64, e.shape.count == 1 else { throw .tensor(path: path, name: name, reason: "must be U64 [n]") }
            var keys = [UInt64](repeating: 0, count: e.shape[0])
            let failure: CheckpointError? = keys.withUnsafeMutableBytes { raw in
                do throws(CheckpointError) {
                    try SafeTensors.preadFully(fd, raw, at: dataStart + e.begin, path: path, what: "tensor \(name)")
                    guard reckit_crc32c(0, raw.baseAddress, raw.count) == crcs[name] else {
                        throw CheckpointError.tensor(path: path, name: name, reason: "checksum mismatch")
                    }
                    return nil
                } catch { return error }
            }
            if let failure { throw failure }
            out.append(keys)
        }
        return out
    }

    /// Tensor names that are optimizer state (dense moments, sparse accumulators).
    public static func isOptimizerState(_ name: String) -> Bool {
        name.hasPrefix(OptimizerStateNames.prefix) || name.hasSuffix(".adagrad_sum")
    }

    /// Builds the checkpoint's model and reads its parameters. With `optimizerState`, the embedding rows also get
    /// their sparse optimizer's state (training); otherwise the model is inference-only and keeps none. Every
    /// embedding table's size is checked against the file before it is allocated; the model is built without any
    /// initial values (its memory is filled straight from the file).
    public func loadModel(optimizerState: Bool, storage: (any RowStorageProvider)? = nil) throws(CheckpointError) -> any CTRModel {
        let config: any ModelConfiguration
        do {
            config = try metadata.modelConfiguration()
            try config.validate()
        } catch { throw .model(path: path, reason: error.description) }
        let q = metadata.quantization
        for (collection, spec) in config.embeddingTables {
            let name = collection + "." + spec.name + ".weight"
            guard let e = byName[name] else { throw .tensor(path: path, name: name, reason: "missing from the file") }
            let shape = q.map { [spec.rows, $0.rowBytes(dim: spec.dim)] } ?? [spec.rows, spec.dim]
            guard e.shape == shape, e.dtype == (q == nil ? .f32 : .u8) else {
                throw .tensor(path: path, name: name, reason: "the file has \(e.dtype.rawValue) \(e.shape), the configuration needs \(q == nil ? "F32" : "U8") \(shape)")
            }
        }
        let sparse = optimizerState ? metadata.sparseOptimizerKind : nil
        if optimizerState, q != nil { throw .model(path: path, reason: "a quantized checkpoint is inference-only") }
        let model: any CTRModel
        do { model = try config.makeModel(initialization: .none, sparseOptimizer: sparse, quantization: q, storage: storage) } catch {
            throw .model(path: path, reason: error.description)
        }
        // Tables a storage reads in place from this very file are already "loaded" (and not checksummed here: that
        // would read them whole at start-up).
        let tensors = model.stateTensors()
        let inPlace = Set(tensors.filter { $0.source?.backingFile == path }.map(\.name))
        try read(into: tensors.filter { !inPlace.contains($0.name) }) { name in
            inPlace.contains(name) || name.hasPrefix("vocabulary.") || name.hasPrefix(OptimizerStateNames.prefix)
                || (!optimizerState && name.hasSuffix(".adagrad_sum"))
        }
        return model
    }
}
