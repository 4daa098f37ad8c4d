import CRecKitShims
import Foundation
import RecKitKernels
import RecKitCore
import RecKitData
import RecKitModels

/// Why a checkpoint could not be written or read; always names the file.
public enum CheckpointError: Error, Sendable, CustomStringConvertible {
    case io(path: String, reason: String)
    case invalid(path: String, reason: String)
    public var description: String {
        switch self {
        case let .io(path, reason): return "checkpoint \(path): \(reason)"
        case let .invalid(path, reason): return "checkpoint \(path) is not usable: \(reason)"
        }
    }
}

/// What a checkpoint holds besides tensors.
public struct CheckpointHeader: Codable, Sendable {
    public var model: String
    public var dlrm: DLRMConfig
    /// The data's schema, preprocessing spec included, so evaluation and serving transform raw rows identically.
    public var schema: DatasetSchema?
    public var step: Int
    public var rowsSeen: Int
    public var denseOptimizer: DenseOptimizerKind
    public var sparseOptimizer: String
    public var seed: UInt64
    /// Where training stood (for `--resume`).
    public var position: TrainPosition?
    /// Set for `reckit quantize` output: the tables are stored row-wise quantized ("qtable.i", raw bytes) and the
    /// model is inference-only (no optimizer state is kept).
    public var quantization: QuantizedDType?

    public init(model: String, dlrm: DLRMConfig, schema: DatasetSchema?, step: Int, rowsSeen: Int,
                denseOptimizer: DenseOptimizerKind, sparseOptimizer: String, seed: UInt64, position: TrainPosition? = nil) {
        self.model = model; self.dlrm = dlrm; self.schema = schema; self.step = step; self.rowsSeen = rowsSeen
        self.denseOptimizer = denseOptimizer; self.sparseOptimizer = sparseOptimizer; self.seed = seed
        self.position = position
    }
}

/// RecKit checkpoint, version 1: "RKCKPT01" | version u32 | header length u32 | header CRC-32C u32 | header
/// (JSON) | tensor count u32 | per tensor: name length u32, name, float count u64, CRC-32C u32, floats (LE f32).
/// Written atomically (temp file, fsync, rename); reading checks every checksum and size.
public enum Checkpoint {
    static let magic = Array("RKCKPT01".utf8)
    static let version: UInt32 = 1

    /// - Parameter vocabularies: the dataset's categorical vocabularies (vocabulary mode), so raw rows can be
    ///   mapped exactly as in training; empty for hashed or identity ids.
    public static func save(_ model: any CTRModel, optimizer: DenseOptimizer, header: CheckpointHeader, vocabularies: [[UInt64]] = [],
                            to path: String) throws(CheckpointError) {
        var tensors: [(String, UnsafeBufferPointer<Float>)] = []
        for (i, (p, _)) in model.denseParameters.enumerated() { tensors.append(("dense.\(i)", UnsafeBufferPointer(p.buffer))) }
        let quantized = header.quantization == nil ? [] : ((model as? DLRM)?.quantized ?? [])
        if header.quantization != nil && quantized.isEmpty {
            throw .invalid(path: path, reason: "header says quantized but the model has no quantized tables")
        }
        if quantized.isEmpty {
            for (i, t) in model.tables.enumerated() { tensors.append(("table.\(i)", UnsafeBufferPointer(t.buffer))) }
            for (i, s) in model.states.enumerated() { tensors.append(("state.\(i)", UnsafeBufferPointer(s.buffer))) }
            for (i, b) in optimizer.first.enumerated() { tensors.append(("opt.first.\(i)", UnsafeBufferPointer(b.buffer))) }
            for (i, b) in optimizer.second.enumerated() { tensors.append(("opt.second.\(i)", UnsafeBufferPointer(b.buffer))) }
        } else {
            // Quantized rows as raw bytes, padded to whole floats (the tensor format counts 4-byte values).
            for (i, q) in quantized.enumerated() {
                tensors.append(("qtable.\(i)", UnsafeBufferPointer(start: UnsafeRawPointer(q.data.pointer).assumingMemoryBound(to: Float.self),
                                                                 count: min(q.data.count, (q.byteCount + 3) / 4 * 4) / 4)))
            }
        }
        var head = Data(magic)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { head.append(contentsOf: $0) } }
        let json: Data
        do { json = try JSONEncoder.sortedKeys.encode(header) } catch { throw .io(path: path, reason: "cannot encode header") }
        u32(version)
        u32(UInt32(json.count))
        u32(json.withUnsafeBytes { reckit_crc32c(0, $0.baseAddress, $0.count) })
        head.append(json)
        u32(UInt32(tensors.count))
        do throws(DataError) {
            try AtomicFile.write(to: path) { (sink) throws(DataError) in
                try sink.write(head)
                for (name, values) in tensors {
                    var h = Data()
                    let nameBytes = Array(name.utf8)
                    withUnsafeBytes(of: UInt32(nameBytes.count).littleEndian) { h.append(contentsOf: $0) }
                    h.append(contentsOf: nameBytes)
                    withUnsafeBytes(of: UInt64(values.count).littleEndian) { h.append(contentsOf: $0) }
                    let raw = UnsafeRawBufferPointer(values)
                    withUnsafeBytes(of: reckit_crc32c(0, raw.baseAddress, raw.count).littleEndian) { h.append(contentsOf: $0) }
                    try sink.write(h)
                    if raw.count > 0 { try sink.write(raw) }
                }
                // Vocabulary section: count u32, then per feature: key count u64, keys (u64), CRC-32C u32.
                var v = Data()
                withUnsafeBytes(of: UInt32(vocabularies.count).littleEndian) { v.append(contentsOf: $0) }
                try sink.write(v)
                for keys in vocabularies {
                    var h = Data()
                    withUnsafeBytes(of: UInt64(keys.count).littleEndian) { h.append(contentsOf: $0) }
                    try sink.write(h)
                    let failure: DataError? = keys.withUnsafeBytes { raw in
                        do throws(DataError) {
                            if raw.count > 0 { try sink.write(raw) }
                            var c = Data()
                            withUnsafeBytes(of: reckit_crc32c(0, raw.baseAddress, raw.count).littleEndian) { c.append(contentsOf: $0) }
                            try sink.write(c)
                            return nil
                        } catch { return error }
                    }
                    if let failure { throw failure }
                }
            }
        } catch {
            throw .io(path: path, reason: error.description)
        }
    }

    /// Loads a checkpoint into a new model and optimizer.
    public static func load(_ path: String, maxBatch: Int, maxIndicesPerTable: Int) throws(CheckpointError)
        -> (any CTRModel, DenseOptimizer, CheckpointHeader) {
        let (m, o, h, _) = try loadWithVocabularies(path, maxBatch: maxBatch, maxIndicesPerTable: maxIndicesPerTable)
        return (m, o, h)
    }

    /// Loads a checkpoint and the vocabularies it carries.
    public static func loadWithVocabularies(_ path: String, maxBatch: Int, maxIndicesPerTable: Int) throws(CheckpointError)
        -> (any CTRModel, DenseOptimizer, CheckpointHeader, [[UInt64]]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read") }
        var off = 0
        func take(_ n: Int) throws(CheckpointError) -> Data {
            guard n >= 0, off + n <= data.count else { throw .invalid(path: path, reason: "truncated at byte \(off) (needs \(n) more)") }
            defer { off += n }
            return data.subdata(in: (data.startIndex + off)..<(data.startIndex + off + n))
        }
        func u32() throws(CheckpointError) -> UInt32 { try take(4).withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) } }
        func u64() throws(CheckpointError) -> UInt64 { try take(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) } }
        guard [UInt8](try take(8)) == magic else { throw .invalid(path: path, reason: "wrong magic (not a RecKit checkpoint)") }
        let v = try u32()
        guard v == version else { throw .invalid(path: path, reason: "unsupported version \(v)") }
        let hlen = Int(try u32()), hcrc = try u32()
        let hdata = try take(hlen)
        guard hdata.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == hcrc else {
            throw .invalid(path: path, reason: "header checksum mismatch")
        }
        let header: CheckpointHeader
        do { header = try JSONDecoder().decode(CheckpointHeader.self, from: hdata) } catch {
            throw .invalid(path: path, reason: "header is not valid: \(error)")
        }
        var tensors: [String: [Float]] = [:]
        var rawTables: [Int: Data] = [:]
        let count = Int(try u32())
        for _ in 0..<count {
            let name = String(decoding: try take(Int(try u32())), as: UTF8.self)
            let n = Int(try u64()), crc = try u32()
            let payload = try take(n * 4)
            guard payload.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == crc else {
                throw .invalid(path: path, reason: "checksum mismatch in tensor \(name)")
            }
            if name.hasPrefix("qtable."), let i = Int(name.dropFirst(7)) { rawTables[i] = payload; continue }
            tensors[name] = payload.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        var vocabularies: [[UInt64]] = []
        let vocabCount = Int(try u32())
        for f in 0..<vocabCount {
            let n = Int(try u64())
            let payload = try take(n * 8)
            let crc = try u32()
            guard payload.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == crc else {
                throw .invalid(path: path, reason: "checksum mismatch in vocabulary \(f)")
            }
            vocabularies.append(payload.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) })
        }
        guard off == data.count else { throw .invalid(path: path, reason: "\(data.count - off) unexpected trailing bytes") }
        if let dtype = header.quantization {
            guard header.model == "dlrm" else { throw .invalid(path: path, reason: "quantized \(header.model) checkpoints are not supported") }
            let model = DLRM(config: header.dlrm, maxBatch: maxBatch, maxIndicesPerTable: maxIndicesPerTable, seed: header.seed,
                             allocateTables: false)
            for (i, (p, _)) in model.denseParameters.enumerated() {
                guard let t = tensors["dense.\(i)"], t.count == p.count else { throw .invalid(path: path, reason: "missing or mis-sized tensor dense.\(i)") }
                t.withUnsafeBufferPointer { p.pointer.update(from: $0.baseAddress!, count: t.count) }
            }
            var qs: [QuantizedTable] = []
            for (i, rows) in header.dlrm.tableSizes.enumerated() {
                guard let bytes = rawTables[i] else { throw .invalid(path: path, reason: "missing quantized table \(i)") }
                let buf = AlignedBuffer<UInt8>(count: bytes.count)
                bytes.withUnsafeBytes { buf.pointer.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: bytes.count) }
                do throws(KernelError) {
                    qs.append(try QuantizedTable(dtype: dtype, rows: rows, dim: header.dlrm.embeddingDim, data: buf))
                } catch { throw .invalid(path: path, reason: "quantized table \(i): \(error)") }
            }
            do throws(KernelError) { try model.setQuantized(qs) } catch { throw .invalid(path: path, reason: error.description) }
            return (model, DenseOptimizer(kind: header.denseOptimizer), header, vocabularies)
        }
        guard let model = makeCTRModel(kind: header.model, config: header.dlrm, maxBatch: maxBatch,
                                       maxIndicesPerTable: maxIndicesPerTable, seed: header.seed) else {
            throw .invalid(path: path, reason: "unknown model kind '\(header.model)'")
        }
        func fill(_ b: AlignedBuffer<Float>, _ name: String) throws(CheckpointError) {
            guard let t = tensors[name] else { throw .invalid(path: path, reason: "missing tensor \(name)") }
            guard t.count == b.count else { throw .invalid(path: path, reason: "tensor \(name) has \(t.count) values, model needs \(b.count)") }
            t.withUnsafeBufferPointer { b.pointer.update(from: $0.baseAddress!, count: t.count) }
        }
        for (i, (p, _)) in model.denseParameters.enumerated() { try fill(p, "dense.\(i)") }
        for (i, t) in model.tables.enumerated() { try fill(t, "table.\(i)") }
        let stateNames = tensors.keys.filter { $0.hasPrefix("state.") }.count
        if stateNames > 0 { model.restoreStates((0..<stateNames).map { tensors["state.\($0)"] ?? [] }) }
        let optimizer = DenseOptimizer(kind: header.denseOptimizer)
        let firsts = tensors.keys.filter { $0.hasPrefix("opt.first.") }.count
        optimizer.restore(step: header.step, first: (0..<firsts).map { tensors["opt.first.\($0)"] ?? [] },
                          second: (0..<firsts).map { tensors["opt.second.\($0)"] ?? [] })
        return (model, optimizer, header, vocabularies)
    }
}

extension JSONEncoder {
    static var sortedKeys: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
