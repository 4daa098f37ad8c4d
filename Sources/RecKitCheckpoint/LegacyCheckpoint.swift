import CRecKitShims
import Foundation
import RecKitCore
import RecKitData
import RecKitEmbeddings
import RecKitKernels
import RecKitModels

/// RecKit's first checkpoint format ("RKCKPT01"), read only to convert it: `magic | version u32 = 1 | header length
/// u32 | header CRC-32C u32 | header JSON | tensor count u32 | per tensor: name length u32, name, float count u64,
/// CRC-32C u32, floats | vocabulary count u32 | per vocabulary: key count u64, keys u64…, CRC-32C u32`. Tensors were
/// positional (`dense.i`, `table.i`, `state.i`, `opt.first.i`, `opt.second.i`, `qtable.i`): their names come from
/// the model rebuilt from the header, in the order the old models listed them.
public enum LegacyCheckpoint {
    struct OldConfig: Decodable {
        var denseCount: Int, tableSizes: [Int], embeddingDim: Int, bottomHidden: [Int], topHidden: [Int]
        var includeDiagonal: Bool?
        var crossLayers: Int?, crossRank: Int?, crossParallel: Bool?
    }
    struct OldHeader: Decodable {
        var model: String
        var dlrm: OldConfig
        var schema: DatasetSchema?
        var step: Int
        var rowsSeen: Int
        var denseOptimizer: String
        var sparseOptimizer: String
        var seed: UInt64
        var position: AnyPosition?
        var quantization: QuantizedDType?
    }
    /// The old position, passed through as JSON (same keys as the trainer's position).
    struct AnyPosition: Codable { var step: Int; var epoch: Int; var rowInEpoch: Int }

    /// What a conversion did.
    public struct Report: Codable, Sendable {
        public var model: String
        public var tensors: Int
        public var output: String
    }

    /// Converts the old-format checkpoint at `source` into the safetensors format at `destination`.
    public static func convert(from source: String, to destination: String) throws(CheckpointError) -> Report {
        guard let data = FileManager.default.contents(atPath: source) else { throw .io(path: source, reason: "cannot read") }
        var off = 0
        func take(_ n: Int, _ what: String) throws(CheckpointError) -> Data {
            guard n >= 0, n <= data.count - off else { throw .invalid(path: source, reason: "\(what): truncated at byte \(off)") }
            defer { off += n }
            return data.subdata(in: (data.startIndex + off)..<(data.startIndex + off + n))
        }
        func u32(_ w: String) throws(CheckpointError) -> Int { Int(try take(4, w).withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }) }
        func u64(_ w: String) throws(CheckpointError) -> Int {
            let v = try take(8, w).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            guard let i = Int(exactly: v), i <= data.count else { throw .invalid(path: source, reason: "\(w): \(v) is larger than the file") }
            return i
        }
        guard [UInt8](try take(8, "magic")) == Array("RKCKPT01".utf8) else { throw .invalid(path: source, reason: "magic: not a RecKit version-1 checkpoint") }
        guard try u32("version") == 1 else { throw .invalid(path: source, reason: "version: not 1") }
        let hlen = try u32("header length"), hcrc = UInt32(try u32("header checksum"))
        let hdata = try take(hlen, "header")
        guard hdata.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == hcrc else { throw .invalid(path: source, reason: "header: checksum mismatch") }
        let header: OldHeader
        do { header = try JSONDecoder().decode(OldHeader.self, from: hdata) } catch { throw .invalid(path: source, reason: "header: \(error)") }
        var floats: [String: Data] = [:]
        for i in 0..<(try u32("tensor count")) {
            let name = String(decoding: try take(try u32("tensor \(i) name length"), "tensor \(i) name"), as: UTF8.self)
            let n = try u64("tensor \(name) length")
            let crc = UInt32(try u32("tensor \(name) checksum"))
            let payload = try take(n * 4, "tensor \(name)")
            guard payload.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == crc else {
                throw .tensor(path: source, name: name, reason: "checksum mismatch")
            }
            floats[name] = payload
        }
        var vocabularies: [[UInt64]] = []
        for f in 0..<(try u32("vocabulary count")) {
            let n = try u64("vocabulary \(f) length")
            let payload = try take(n * 8, "vocabulary \(f)")
            _ = try u32("vocabulary \(f) checksum")
            vocabularies.append(payload.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) })
        }
        guard let kind = ModelKind(rawValue: header.model) else { throw .invalid(path: source, reason: "model: '\(header.model)'") }
        let c = header.dlrm
        let names = header.schema?.sparse.map(\.name) ?? (1...max(c.tableSizes.count, 1)).map { "C\($0)" }
        let sparse = zip(names, c.tableSizes).map { SparseFeatureSpec(name: $0, rows: $1) }
        let config: any ModelConfiguration
        switch kind {
        case .dlrm: config = DLRMConfig(denseCount: c.denseCount, sparse: sparse, embeddingDim: c.embeddingDim, bottomHidden: c.bottomHidden,
                                        topHidden: c.topHidden, includeDiagonal: c.includeDiagonal ?? false)
        case .dcnv2: config = DCNv2Config(denseCount: c.denseCount, sparse: sparse, embeddingDim: c.embeddingDim, deepHidden: c.topHidden,
                                          crossLayers: c.crossLayers ?? 3, crossRank: c.crossRank, parallel: c.crossParallel ?? false)
        case .fm: config = FMConfig(denseCount: c.denseCount, sparse: sparse, embeddingDim: c.embeddingDim)
        case .lr: config = LRConfig(denseCount: c.denseCount, sparse: sparse)
        }
        let sparseKind = SparseOptimizerKind(rawValue: header.sparseOptimizer)
        let hasState = floats.keys.contains { $0.hasPrefix("state.") }
        let model: any CTRModel
        do {
            model = try config.makeModel(initialization: .none, sparseOptimizer: hasState ? sparseKind : nil, quantization: header.quantization)
        } catch { throw .model(path: source, reason: error.description) }
        func fill(_ dst: UnsafeMutableRawBufferPointer, _ name: String) throws(CheckpointError) {
            guard let src = floats[name], src.count >= dst.count else {
                throw .tensor(path: source, name: name, reason: "missing or smaller than the model's \(dst.count) bytes")
            }
            src.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<dst.count])) }
        }
        for (i, p) in model.denseParameters.enumerated() { try fill(UnsafeMutableRawBufferPointer(p.value.buffer), "dense.\(i)") }
        var t = 0
        for collection in model.embeddingCollections {
            for storage in collection.storages {
                if let d = storage as? DenseRowStorage {
                    try fill(UnsafeMutableRawBufferPointer(d.weights.buffer), "table.\(t)")
                    if d.state.count > 0 { try fill(UnsafeMutableRawBufferPointer(d.state.buffer), "state.\(t)") }
                } else if let q = storage as? QuantizedRowStorage {
                    try fill(UnsafeMutableRawBufferPointer(start: q.table.data.pointer, count: q.table.byteCount), "qtable.\(t)")
                }
                t += 1
            }
        }
        // Dense optimizer moments, renamed after the parameters.
        var extra: [StateTensor] = []
        var owned: [AlignedBuffer<Float>] = []
        let adagrad = header.denseOptimizer == "adagrad"
        for (i, p) in model.denseParameters.enumerated() {
            for (old, new) in [("opt.first.\(i)", OptimizerStateNames.firstMoment(p.name)),
                               ("opt.second.\(i)", OptimizerStateNames.secondMoment(p.name, adagrad: adagrad))] {
                guard let d = floats[old], d.count == p.value.count * 4 else { continue }
                let b = AlignedBuffer<Float>(count: p.value.count)
                d.withUnsafeBytes { UnsafeMutableRawBufferPointer(b.buffer).copyMemory(from: $0) }
                owned.append(b)
                extra.append(StateTensor(name: new, shape: p.shape, role: .optimizerState, buffer: b))
            }
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let meta = CheckpointMetadata(
            model: kind, config: config.encodedJSON(), schema: header.schema,
            denseOptimizer: .init(kind: header.denseOptimizer, step: header.step),
            sparseOptimizer: .init(kind: header.sparseOptimizer), step: header.step, seed: header.seed, rowsSeen: header.rowsSeen,
            position: header.position.flatMap { try? enc.encode($0) }, quantization: header.quantization)
        let vocab = vocabularies.isEmpty ? [] : zip(names, vocabularies).map { (feature: $0, keys: $1) }
        let tensors = model.stateTensors() + extra
        try withExtendedLifetime(owned) { () throws(CheckpointError) in
            try Checkpoint.write(tensors, vocabularies: vocab, metadata: meta, to: destination)
        }
        return Report(model: kind.rawValue, tensors: tensors.count + vocab.count, output: destination)
    }
}
