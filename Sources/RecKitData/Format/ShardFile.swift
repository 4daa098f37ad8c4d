import CRecKitShims
import Foundation

/// The RecKit shard format (see docs/shard-format.md). All integers little-endian. Version 2:
///
/// ```
/// magic "RECKITSH" (8) | version u32 = 2 | flags u32 = 0
/// header length u32 | header CRC-32C u32 | header: UTF-8 JSON of DatasetSchema
/// row count u64 | block count u32 | CRC-32C of (row count, block count) u32
/// block*: kind u32 | feature u32 | byte length u64 | payload CRC-32C u32 | CRC-32C of the 20 bytes before u32 | payload
/// ```
/// Block kinds: 1 labels (f32 × R), 2 dense (f32 × R × dense), 3 lengths of feature f (i32 × R), 4 ids of feature f
/// (i32 × N_f, when every id of the feature fits), 5 weights of feature f (f32 × N_f), 6 timestamps (i64 × R),
/// 7 ids of feature f (i64 × N_f). Version 1 files (no header checksums, ids always kind 4) are still read.
///
/// Reading validates before it allocates: every count and length read from the file is overflow-checked and bounded
/// by the bytes present, every header is checksummed, so a corrupted file is a typed error naming the file and the
/// field, never a crash or a huge allocation.
public enum ShardFile {
    public static let magic: [UInt8] = Array("RECKITSH".utf8)
    public static let version: UInt32 = 2
    /// Versions this build reads.
    public static let readableVersions: ClosedRange<UInt32> = 1...2
    /// Largest schema header accepted (bytes).
    static let maxHeaderBytes = 16 << 20

    enum BlockKind: UInt32 { case labels = 1, dense, lengths, ids, weights, timestamps, ids64 }

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
        var blockCount = 0
        if !columns.labels.isEmpty { blockCount += 1 }
        if columns.denseCount > 0 { blockCount += 1 }
        for f in 0..<columns.sparseCount {
            blockCount += 1 + (columns.lengths[f].isEmpty ? 0 : 1) + (columns.weights[f].isEmpty ? 0 : 1)
        }
        if !columns.timestamps.isEmpty { blockCount += 1 }
        var counts = ByteWriter()
        counts.u64(UInt64(columns.rowCount))
        counts.u32(UInt32(blockCount))
        head.data(counts.buffer)
        head.u32(counts.buffer.withUnsafeBytes { reckit_crc32c(0, $0.baseAddress, $0.count) })
        try AtomicFile.write(to: path) { (sink) throws(DataError) in
            try sink.write(head.buffer)
            func block<T>(_ kind: BlockKind, _ feature: Int, _ values: [T]) throws(DataError) {
                let failure: DataError? = values.withUnsafeBytes { raw in
                    var h = ByteWriter()
                    h.u32(kind.rawValue)
                    h.u32(UInt32(feature))
                    h.u64(UInt64(raw.count))
                    h.u32(reckit_crc32c(0, raw.baseAddress, raw.count))
                    h.u32(h.buffer.withUnsafeBytes { reckit_crc32c(0, $0.baseAddress, $0.count) })
                    do throws(DataError) { try sink.write(h.buffer); try sink.write(raw); return nil } catch { return error }
                }
                if let failure { throw failure }
            }
            if !columns.labels.isEmpty { try block(.labels, 0, columns.labels) }
            if columns.denseCount > 0 { try block(.dense, 0, columns.dense) }
            for f in 0..<columns.sparseCount {
                if !columns.lengths[f].isEmpty { try block(.lengths, f, columns.lengths[f]) }
                if schema.sparse[f].cardinality <= Int(Int32.max) {
                    try block(.ids, f, columns.ids[f].map { Int32(truncatingIfNeeded: $0) })
                } else {
                    try block(.ids64, f, columns.ids[f])
                }
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
        let m = try r.bytes(8, field: "magic")
        guard m == magic else { throw .badShard(path: path, reason: "magic: \(m.prefix(8).map { String(format: "%02x", $0) }.joined()) is not a RecKit shard") }
        let v = try r.u32(field: "version")
        guard readableVersions.contains(v) else { throw .badShard(path: path, reason: "version: \(v) is not supported (this RecKit reads \(readableVersions))") }
        _ = try r.u32(field: "flags")
        let headerLength = try r.length(UInt64(try r.u32(field: "header length")), field: "header length", limit: maxHeaderBytes)
        let headerCRC = try r.u32(field: "header checksum")
        let header = try r.slice(headerLength, field: "header")
        guard header.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == headerCRC else {
            throw .badShard(path: path, reason: "header: checksum mismatch")
        }
        let schema: DatasetSchema
        do { schema = try JSONDecoder().decode(DatasetSchema.self, from: header) } catch {
            throw .badShard(path: path, reason: "header: not a valid schema (\(error))")
        }
        try schema.validate(path: path)
        let countsStart = r.offset
        let rowsRaw = try r.u64(field: "row count")
        let blockCountRaw = try r.u32(field: "block count")
        if v >= 2 {
            let crc = try r.u32(field: "counts checksum")
            let actual = data.withUnsafeBytes { reckit_crc32c(0, $0.baseAddress! + countsStart, 12) }
            guard crc == actual else { throw .badShard(path: path, reason: "row count / block count: checksum mismatch") }
        } else {
            _ = try r.u32(field: "reserved")
        }
        // Every row has at least one id byte per feature or a label; bound R by the bytes present.
        let rows = try r.length(rowsRaw, field: "row count", limit: data.count)
        let blockCount = try r.length(UInt64(blockCountRaw), field: "block count", limit: data.count / 24 + 1)
        var cols = ShardColumns(denseCount: schema.denseNames.count, sparseCount: schema.sparse.count)
        cols.setRowCount(rows)
        var seen = Set<UInt64>()
        for i in 0..<blockCount {
            let headStart = r.offset
            let kindRaw = try r.u32(field: "block \(i) kind")
            let featureRaw = try r.u32(field: "block \(i) feature")
            let lengthRaw = try r.u64(field: "block \(i) length")
            let crc = try r.u32(field: "block \(i) checksum")
            let headCRC = try r.u32(field: "block \(i) header checksum")
            if v >= 2 {
                let actual = data.withUnsafeBytes { reckit_crc32c(0, $0.baseAddress! + headStart, 20) }
                guard actual == headCRC else { throw .badShard(path: path, reason: "block \(i) header: checksum mismatch") }
            }
            guard let kind = BlockKind(rawValue: kindRaw) else { throw .badShard(path: path, reason: "block \(i) kind: unknown kind \(kindRaw)") }
            let sparseKinds: [BlockKind] = [.lengths, .ids, .weights, .ids64]
            let feature = Int(featureRaw)
            if sparseKinds.contains(kind) && feature >= schema.sparse.count {
                throw .badShard(path: path, reason: "block \(i) feature: \(feature), but the schema has \(schema.sparse.count) sparse features")
            }
            let key = UInt64(kind == .ids64 ? BlockKind.ids.rawValue : kind.rawValue) << 32 | UInt64(featureRaw)
            guard seen.insert(key).inserted else { throw .badShard(path: path, reason: "block \(i): a second \(kind) block for feature \(feature)") }
            let length = try r.length(lengthRaw, field: "block \(i) length", limit: r.remaining)
            let start = r.offset
            r.offset += length
            // Checked and decoded straight from the (mapped) file: no intermediate copy of the payload.
            let failure: DataError? = data.withUnsafeBytes { all in
                let payload = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                guard reckit_crc32c(0, payload.baseAddress, payload.count) == crc else {
                    return .badShard(path: path, reason: "block \(i) (kind \(kindRaw), feature \(feature)): payload checksum mismatch")
                }
                do throws(DataError) {
                    switch kind {
                    case .labels: cols.labels = try decode(payload, Float.self, path)
                    case .dense: cols.dense = try decode(payload, Float.self, path)
                    case .lengths: cols.lengths[feature] = try decode(payload, Int32.self, path)
                    case .ids: cols.ids[feature] = try widen(payload, path)
                    case .ids64: cols.ids[feature] = try decode(payload, Int64.self, path)
                    case .weights: cols.weights[feature] = try decode(payload, Float.self, path)
                    case .timestamps: cols.timestamps = try decode(payload, Int64.self, path)
                    }
                    return nil
                } catch { return error }
            }
            if let failure { throw failure }
        }
        guard r.remaining == 0 else { throw .badShard(path: path, reason: "\(r.remaining) unexpected bytes after the last block") }
        try validate(cols, schema: schema, path: path)
        return (schema, cols)
    }

    static func decode<T>(_ raw: UnsafeRawBufferPointer, _: T.Type, _ path: String) throws(DataError) -> [T] {
        guard raw.count % MemoryLayout<T>.size == 0 else { throw .badShard(path: path, reason: "block size \(raw.count) not a multiple of \(MemoryLayout<T>.size)") }
        return [T](unsafeUninitializedCapacity: raw.count / MemoryLayout<T>.size) { buf, n in
            n = raw.count / MemoryLayout<T>.size
            if n > 0 { UnsafeMutableRawBufferPointer(buf).copyMemory(from: raw) }
        }
    }

    /// 32-bit ids widened to 64-bit in one pass.
    static func widen(_ raw: UnsafeRawBufferPointer, _ path: String) throws(DataError) -> [Int64] {
        guard raw.count % 4 == 0 else { throw .badShard(path: path, reason: "block size \(raw.count) not a multiple of 4") }
        let n = raw.count / 4
        return [Int64](unsafeUninitializedCapacity: n) { buf, count in
            for k in 0..<n { buf[k] = Int64(raw.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self)) }
            count = n
        }
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
        if schema.hasLabel && c.labels.count != r { throw .badShard(path: path, reason: "labels: \(c.labels.count) for \(r) rows") }
        if !schema.hasLabel && !c.labels.isEmpty { throw .badShard(path: path, reason: "labels: present, but the schema has none") }
        let (denseNeeded, overflow) = r.multipliedReportingOverflow(by: c.denseCount)
        if overflow || c.dense.count != denseNeeded { throw .badShard(path: path, reason: "dense: \(c.dense.count) values, expected \(r) × \(c.denseCount)") }
        for (f, feature) in schema.sparse.enumerated() {
            let expected: Int
            if feature.multiHot {
                guard c.lengths[f].count == r else { throw .badShard(path: path, reason: "feature \(feature.name) lengths: \(c.lengths[f].count) for \(r) rows") }
                var total = 0
                for l in c.lengths[f] {
                    guard l >= 0 else { throw .badShard(path: path, reason: "feature \(feature.name) lengths: negative length \(l)") }
                    total += Int(l)
                }
                expected = total
            } else {
                guard c.lengths[f].isEmpty else { throw .badShard(path: path, reason: "feature \(feature.name) lengths: present for a one-hot feature") }
                expected = r
            }
            guard c.ids[f].count == expected else { throw .badShard(path: path, reason: "feature \(feature.name) ids: \(c.ids[f].count), expected \(expected)") }
            if feature.weighted ? c.weights[f].count != expected : !c.weights[f].isEmpty {
                throw .badShard(path: path, reason: "feature \(feature.name) weights: \(c.weights[f].count) for \(expected) ids")
            }
            let card = Int64(feature.cardinality)
            for id in c.ids[f] where id < 0 || id >= card {
                throw .badShard(path: path, reason: "feature \(feature.name) ids: \(id) outside 0..<\(feature.cardinality)")
            }
        }
        if schema.hasTimestamps ? c.timestamps.count != r : !c.timestamps.isEmpty {
            throw .badShard(path: path, reason: "timestamps: \(c.timestamps.count) for \(r) rows")
        }
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
