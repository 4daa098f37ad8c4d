import CRecKitShims
import Foundation

/// The RecKit shard format, version 1 (see docs/shard-format.md). All integers little-endian.
///
/// ```
/// magic "RECKITSH" (8) | version u32 = 1 | flags u32 = 0
/// header length u32 | header CRC-32C u32 | header: UTF-8 JSON of DatasetSchema
/// row count u64 | block count u32 | reserved u32
/// block*: kind u32 | feature u32 | byte length u64 | payload CRC-32C u32 | reserved u32 | payload
/// ```
/// Block kinds: 1 labels (f32 × R), 2 dense (f32 × R × dense), 3 lengths of feature f (i32 × R),
/// 4 ids of feature f (i32 × N_f), 5 weights of feature f (f32 × N_f), 6 timestamps (i64 × R).
public enum ShardFile {
    public static let magic: [UInt8] = Array("RECKITSH".utf8)
    public static let version: UInt32 = 1

    enum BlockKind: UInt32 { case labels = 1, dense, lengths, ids, weights, timestamps }

    /// Writes `columns` with `schema` to `path` atomically (temp file, fsync, rename). Column payloads are
    /// written straight from the arrays (no intermediate copy of the shard).
    public static func write(_ columns: ShardColumns, schema: DatasetSchema, to path: String) throws(DataError) {
        var head = ByteWriter()
        head.bytes(magic)
        head.u32(version)
        head.u32(0)
        let header: Data
        do { header = try JSONEncoder.sorted.encode(schema) } catch { throw .io(path: path, reason: "cannot encode schema: \(error)") }
        head.u32(UInt32(header.count))
        head.u32(header.withUnsafeBytes { reckit_crc32c(0, $0.baseAddress, $0.count) })
        head.data(header)
        head.u64(UInt64(columns.rowCount))
        var blockCount = 0
        if !columns.labels.isEmpty { blockCount += 1 }
        if columns.denseCount > 0 { blockCount += 1 }
        for f in 0..<columns.sparseCount {
            blockCount += 1 + (columns.lengths[f].isEmpty ? 0 : 1) + (columns.weights[f].isEmpty ? 0 : 1)
        }
        if !columns.timestamps.isEmpty { blockCount += 1 }
        head.u32(UInt32(blockCount))
        head.u32(0)
        try AtomicFile.write(to: path) { (sink) throws(DataError) in
            try sink.write(head.buffer)
            func block<T>(_ kind: BlockKind, _ feature: Int, _ values: [T]) throws(DataError) {
                let failure: DataError? = values.withUnsafeBytes { raw in
                    var h = ByteWriter()
                    h.u32(kind.rawValue)
                    h.u32(UInt32(feature))
                    h.u64(UInt64(raw.count))
                    h.u32(reckit_crc32c(0, raw.baseAddress, raw.count))
                    h.u32(0)
                    do throws(DataError) { try sink.write(h.buffer); try sink.write(raw); return nil } catch { return error }
                }
                if let failure { throw failure }
            }
            if !columns.labels.isEmpty { try block(.labels, 0, columns.labels) }
            if columns.denseCount > 0 { try block(.dense, 0, columns.dense) }
            for f in 0..<columns.sparseCount {
                if !columns.lengths[f].isEmpty { try block(.lengths, f, columns.lengths[f]) }
                try block(.ids, f, columns.ids[f])
                if !columns.weights[f].isEmpty { try block(.weights, f, columns.weights[f]) }
            }
            if !columns.timestamps.isEmpty { try block(.timestamps, 0, columns.timestamps) }
        }
    }

    /// Reads and verifies a shard: magic, version, checksums, and that every block fits the schema.
    public static func read(_ path: String) throws(DataError) -> (schema: DatasetSchema, columns: ShardColumns) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw .io(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        var r = ByteReader(data: data, path: path)
        let m = try r.bytes(8)
        guard m == magic else { throw .badShard(path: path, reason: "wrong magic \(m.prefix(8).map { String(format: "%02x", $0) }.joined())") }
        let v = try r.u32()
        guard v == version else { throw .badShard(path: path, reason: "unsupported version \(v) (this RecKit reads version \(version))") }
        _ = try r.u32()
        let headerLength = Int(try r.u32())
        let headerCRC = try r.u32()
        let header = try r.slice(headerLength)
        guard header.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == headerCRC else {
            throw .badShard(path: path, reason: "header checksum mismatch")
        }
        let schema: DatasetSchema
        do { schema = try JSONDecoder().decode(DatasetSchema.self, from: header) } catch {
            throw .badShard(path: path, reason: "header is not a valid schema: \(error)")
        }
        let rows = Int(try r.u64())
        let blockCount = Int(try r.u32())
        _ = try r.u32()
        var cols = ShardColumns(denseCount: schema.denseNames.count, sparseCount: schema.sparse.count)
        cols.setRowCount(rows)
        for _ in 0..<blockCount {
            let kindRaw = try r.u32()
            let feature = Int(try r.u32())
            let length = Int(try r.u64())
            let crc = try r.u32()
            _ = try r.u32()
            let payload = try r.slice(length)
            guard payload.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == crc else {
                throw .badShard(path: path, reason: "checksum mismatch in block kind \(kindRaw) feature \(feature)")
            }
            guard let kind = BlockKind(rawValue: kindRaw) else { throw .badShard(path: path, reason: "unknown block kind \(kindRaw)") }
            if [.lengths, .ids, .weights].contains(kind) && feature >= schema.sparse.count {
                throw .badShard(path: path, reason: "block for sparse feature \(feature) but schema has \(schema.sparse.count)")
            }
            switch kind {
            case .labels: cols.labels = try decode(payload, Float.self, path)
            case .dense: cols.dense = try decode(payload, Float.self, path)
            case .lengths: cols.lengths[feature] = try decode(payload, Int32.self, path)
            case .ids: cols.ids[feature] = try decode(payload, Int32.self, path)
            case .weights: cols.weights[feature] = try decode(payload, Float.self, path)
            case .timestamps: cols.timestamps = try decode(payload, Int64.self, path)
            }
        }
        try validate(cols, schema: schema, path: path)
        return (schema, cols)
    }

    static func decode<T>(_ d: Data, _: T.Type, _ path: String) throws(DataError) -> [T] {
        guard d.count % MemoryLayout<T>.size == 0 else { throw .badShard(path: path, reason: "block size \(d.count) not a multiple of \(MemoryLayout<T>.size)") }
        return d.withUnsafeBytes { raw in
            [T](unsafeUninitializedCapacity: d.count / MemoryLayout<T>.size) { buf, n in
                n = d.count / MemoryLayout<T>.size
                if n > 0 { UnsafeMutableRawBufferPointer(buf).copyMemory(from: raw) }
            }
        }
    }

    /// Column sizes agree with the row count and schema; ids are inside their tables.
    static func validate(_ c: ShardColumns, schema: DatasetSchema, path: String) throws(DataError) {
        let r = c.rowCount
        if schema.hasLabel && c.labels.count != r { throw .badShard(path: path, reason: "\(c.labels.count) labels for \(r) rows") }
        if c.dense.count != r * c.denseCount { throw .badShard(path: path, reason: "dense block has \(c.dense.count) values, expected \(r * c.denseCount)") }
        for (f, feature) in schema.sparse.enumerated() {
            let expected: Int
            if feature.multiHot {
                guard c.lengths[f].count == r else { throw .badShard(path: path, reason: "feature \(feature.name): \(c.lengths[f].count) lengths for \(r) rows") }
                var total = 0
                for l in c.lengths[f] {
                    guard l >= 0 else { throw .badShard(path: path, reason: "feature \(feature.name): negative length") }
                    total += Int(l)
                }
                expected = total
            } else {
                expected = r
            }
            guard c.ids[f].count == expected else { throw .badShard(path: path, reason: "feature \(feature.name): \(c.ids[f].count) ids, expected \(expected)") }
            if feature.weighted && c.weights[f].count != expected { throw .badShard(path: path, reason: "feature \(feature.name): weights count") }
            for id in c.ids[f] where id < 0 || Int(id) >= feature.cardinality {
                throw .badShard(path: path, reason: "feature \(feature.name): id \(id) outside 0..<\(feature.cardinality)")
            }
        }
        if schema.hasTimestamps && c.timestamps.count != r { throw .badShard(path: path, reason: "timestamps count") }
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
