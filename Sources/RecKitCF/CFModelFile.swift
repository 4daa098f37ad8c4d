import CRecKitShims
import Foundation

/// A named tensor of a CF model: fp32 or int64, row-major.
public struct CFTensor: Sendable, Equatable {
    public enum DType: String, Codable, Sendable { case f32, i64 }
    public var name: String
    public var shape: [Int]
    public var dtype: DType
    public var bytes: Data

    public init(name: String, shape: [Int], floats: [Float]) {
        self.name = name; self.shape = shape; dtype = .f32
        bytes = floats.withUnsafeBytes { Data($0) }
    }

    public init(name: String, shape: [Int], int64s: [Int64]) {
        self.name = name; self.shape = shape; dtype = .i64
        bytes = int64s.withUnsafeBytes { Data($0) }
    }

    public var floats: [Float] { bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
    public var int64s: [Int64] { bytes.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) } }
}

/// The file of a fitted CF model (`reckit cf fit --output`):
///
///     "RKCFMOD1" | u64 header length | header JSON | u32 CRC-32C of the header | tensor bytes…
///
/// The header holds the model kind, hyper-parameters, the user and item raw ids, item counts and, per tensor,
/// its name, dtype, shape, offset, length and CRC-32C. Written atomically (temp file, fsync, rename); every
/// length and checksum is verified on load.
public enum CFModelFile {
    static let magic = Data("RKCFMOD1".utf8)

    struct Header: Codable {
        struct Entry: Codable { var name: String; var dtype: CFTensor.DType; var shape: [Int]; var offset: Int; var length: Int; var crc32c: UInt32 }
        var format = "reckit-cf-model"
        var version = 1
        var kind: CFModelKind
        var hyperparameters: [String: Double]
        var users: [Int64]
        var items: [Int64]
        var itemCounts: [Int]
        var tensors: [Entry]
    }

    public static func write(_ model: any CFModel, to path: String) throws(CFError) {
        var entries: [Header.Entry] = []
        var body = Data()
        for t in model.tensors() {
            let crc = t.bytes.withUnsafeBytes { reckit_crc32c(0, $0.baseAddress, $0.count) }
            entries.append(.init(name: t.name, dtype: t.dtype, shape: t.shape, offset: body.count, length: t.bytes.count, crc32c: crc))
            body.append(t.bytes)
        }
        let header = Header(kind: model.kind, hyperparameters: model.hyperparameters, users: model.users.ids, items: model.items.ids,
                            itemCounts: model.itemCounts, tensors: entries)
        let json: Data
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]  // the same model gives the same bytes
        do { json = try encoder.encode(header) } catch { throw .io(path: path, reason: "cannot encode header: \(error)") }
        var out = magic
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        let crc = json.withUnsafeBytes { reckit_crc32c(0, $0.baseAddress, $0.count) }
        withUnsafeBytes(of: crc.littleEndian) { out.append(contentsOf: $0) }
        out.append(body)
        try AtomicWrite.write(out, to: path)
    }

    public static func read(_ path: String) throws(CFError) -> any CFModel {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read model file") }
        guard data.count >= 16, data.prefix(8) == magic else { throw .badModel(path: path, reason: "wrong magic (not written by reckit cf fit)") }
        let length = data.subdata(in: 8..<16).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(data.count - 20) else { throw .badModel(path: path, reason: "header length \(length) exceeds the file") }
        let h = Int(length)
        let json = data.subdata(in: 16..<(16 + h))
        let stored = data.subdata(in: (16 + h)..<(20 + h)).withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        guard stored == json.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) else { throw .badModel(path: path, reason: "header checksum mismatch") }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: json) } catch { throw .badModel(path: path, reason: "header: \(error)") }
        guard header.format == "reckit-cf-model", header.version == 1 else { throw .badModel(path: path, reason: "format \(header.format) v\(header.version)") }
        let bodyStart = 20 + h
        var tensors: [String: CFTensor] = [:]
        for e in header.tensors {
            let expected = e.shape.reduce(1, *) * (e.dtype == .f32 ? 4 : 8)
            guard e.offset >= 0, e.length == expected, e.shape.allSatisfy({ $0 >= 0 }), e.offset <= data.count - bodyStart - e.length else {
                throw .badModel(path: path, reason: "tensor \(e.name): shape \(e.shape) and length \(e.length) do not fit the file")
            }
            let bytes = data.subdata(in: (bodyStart + e.offset)..<(bodyStart + e.offset + e.length))
            guard bytes.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == e.crc32c else {
                throw .badModel(path: path, reason: "tensor \(e.name): checksum mismatch")
            }
            var t = CFTensor(name: e.name, shape: e.shape, floats: [])
            t.dtype = e.dtype; t.bytes = bytes
            tensors[e.name] = t
        }
        let users = IDMap(header.users), items = IDMap(header.items)
        guard users.count == header.users.count, items.count == header.items.count, header.itemCounts.count == items.count else {
            throw .badModel(path: path, reason: "user/item id lists are not unique or item counts do not match")
        }
        func tensor(_ name: String, _ shape: [Int]) throws(CFError) -> CFTensor {
            guard let t = tensors[name] else { throw .badModel(path: path, reason: "missing tensor \(name)") }
            guard t.shape == shape else { throw .badModel(path: path, reason: "tensor \(name) has shape \(t.shape), expected \(shape)") }
            return t
        }
        let hp = header.hyperparameters
        let u = users.count, n = items.count
        switch header.kind {
        case .pop:
            return PopularityModel(users: users, items: items, itemCounts: header.itemCounts)
        case .ease:
            return EASEModel(users: users, items: items, itemCounts: header.itemCounts, lambda: Float(hp["lambda"] ?? 0),
                             weights: try tensor("B", [n, n]).floats)
        case .infae:
            let starts = try tensor("train.row_start", [u + 1]).int64s.map { Int($0) }
            let colsT = tensors["train.columns"]
            guard let colsT, colsT.shape.count == 1 else { throw .badModel(path: path, reason: "missing tensor train.columns") }
            let cols = colsT.int64s
            guard cols.allSatisfy({ $0 >= 0 && $0 < Int64(n) }) else { throw .badModel(path: path, reason: "train.columns out of range") }
            // A weighted support (a soft Distill-CF summary) stores its values; a binary one none.
            let values: [Float]? = tensors["train.values"] == nil ? nil : try tensor("train.values", [cols.count]).floats
            let train = try InteractionMatrix(rows: u, columns: n, rowStart: starts, columnIndices: cols.map { Int32($0) }, values: values)
            return InfiniteAEModel(users: users, items: items, itemCounts: header.itemCounts, lambda: Float(hp["lambda"] ?? 0), train: train,
                                   alpha: try tensor("alpha", [u, n]).floats)
        case .bpr:
            let d = Int(hp["dimension"] ?? 0)
            var o = BPRModel.Options()
            o.dimension = d
            return BPRModel(users: users, items: items, itemCounts: header.itemCounts, dimension: d,
                            userFactors: try tensor("user_factors", [u, d]).floats, itemFactors: try tensor("item_factors", [n, d]).floats,
                            itemBias: try tensor("item_bias", [n]).floats, options: o)
        }
    }
}
