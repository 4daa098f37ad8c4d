import CRecKitShims
import Foundation
import RecKitCore

/// How often each row of each sparse feature's table is looked up in a dataset: what a tier placement is planned
/// from (`reckit data stats --access-counts FILE`, `reckit plan tiering --stats FILE`).
///
/// Counting is exact: a 32-bit count per row for tables up to 2²⁸ rows (1 GiB of counts at most), a hash map of the
/// ids actually seen beyond that. Each table's seen rows are stored sorted by count (descending, ties by id), so
/// the hottest N rows of a table are its first N entries.
///
/// File (little-endian): magic `RKACCESS`, version u32 (1), header length u32, header CRC-32C u32, the header
/// (UTF-8 JSON: per table `name`, `rows`, `lookups`, `seen`), then per table `seen` int64 ids and `seen` uint32
/// counts, each block followed by its CRC-32C. Every count and length is checked against the bytes present.
public struct RowAccessStats: Sendable, Equatable {
    public struct Table: Sendable, Equatable, Codable {
        public var name: String
        /// Rows of the table (the feature's cardinality).
        public var rows: Int
        /// Lookups counted (ids across all rows of the dataset).
        public var lookups: Int
        /// Distinct rows looked up.
        public var seen: Int
        /// The seen rows, hottest first, and their counts (not in the JSON header).
        public var ids: [Int64] = []
        public var counts: [UInt32] = []
        enum CodingKeys: String, CodingKey { case name, rows, lookups, seen }

        public init(name: String, rows: Int, lookups: Int, seen: Int, ids: [Int64], counts: [UInt32]) {
            self.name = name; self.rows = rows; self.lookups = lookups; self.seen = seen; self.ids = ids; self.counts = counts
        }

        /// Lookups that the hottest `n` rows take.
        public func lookups(ofHottest n: Int) -> Int { counts.prefix(n).reduce(0) { $0 + Int($1) } }
    }

    public var tables: [Table]

    public init(tables: [Table]) { self.tables = tables }

    static let magic = Array("RKACCESS".utf8)
    static let denseLimit = 1 << 28

    /// Counts every lookup of every sparse feature in `dataset`'s rows.
    /// `maxRows` counts only the first rows (a sample, for planners that need rates rather than totals).
    public static func count(_ dataset: ShardDataset, maxRows: Int? = nil, progress: ((Int) -> Void)? = nil) throws(DataError) -> RowAccessStats {
        let features = dataset.schema.sparse
        // A dense count per row, unless the rows read cannot touch more than a small part of the table (a sample):
        // then a hash map of the ids seen (1,000 tables of millions of rows would otherwise allocate gigabytes).
        let sampleIds = maxRows.map { min($0, dataset.manifest.rows) * 64 } ?? Int.max
        var dense: [[UInt32]] = features.map {
            $0.cardinality <= denseLimit && $0.cardinality <= max(sampleIds, 1 << 16) ? [UInt32](repeating: 0, count: $0.cardinality) : []
        }
        var sparse: [[Int64: UInt32]] = features.map { _ in [:] }
        var lookups = [Int](repeating: 0, count: features.count)
        var lo = LoaderOptions(batchSize: 8192)
        if let maxRows { lo.rows = 0..<min(max(maxRows, 0), dataset.manifest.rows) }
        let loader = try BatchLoader(dataset: dataset, options: lo)
        var rows = 0
        while let batch = loader.next() {
            for f in features.indices {
                let values = batch.sparse.values[f]
                lookups[f] += values.count
                if dense[f].isEmpty {
                    for id in values { sparse[f][id, default: 0] &+= 1 }
                } else {
                    dense[f].withUnsafeMutableBufferPointer { c in
                        for id in values where id >= 0 && Int(id) < c.count { c[Int(id)] = c[Int(id)] &+ (c[Int(id)] == .max ? 0 : 1) }
                    }
                }
            }
            rows += batch.size
            progress?(rows)
        }
        if let e = loader.error { throw e }
        var tables: [Table] = []
        for (f, spec) in features.enumerated() {
            var pairs: [(Int64, UInt32)] = []
            if dense[f].isEmpty {
                pairs = sparse[f].map { ($0.key, $0.value) }
            } else {
                pairs.reserveCapacity(dense[f].count / 4)
                for (i, c) in dense[f].enumerated() where c > 0 { pairs.append((Int64(i), c)) }
            }
            pairs.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            tables.append(Table(name: spec.name, rows: spec.cardinality, lookups: lookups[f], seen: pairs.count,
                                ids: pairs.map(\.0), counts: pairs.map(\.1)))
        }
        return RowAccessStats(tables: tables)
    }

    /// Writes the file atomically.
    public func write(to path: String) throws(DataError) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let header: Data
        do { header = try enc.encode(tables) } catch { throw .io(path: path, reason: "cannot encode the header: \(error)") }
        try AtomicFile.write(to: path) { (sink) throws(DataError) in
            var w = ByteWriter()
            w.bytes(Self.magic)
            w.u32(1)
            w.u32(UInt32(header.count))
            w.u32(header.withUnsafeBytes { reckit_crc32c(0, $0.baseAddress, $0.count) })
            w.data(header)
            try sink.write(w.buffer)
            for t in tables {
                for block in [t.ids.withUnsafeBytes { Data($0) }, t.counts.withUnsafeBytes { Data($0) }] {
                    try sink.write(block)
                    var w = ByteWriter()
                    w.u32(block.withUnsafeBytes { reckit_crc32c(0, $0.baseAddress, $0.count) })
                    try sink.write(w.buffer)
                }
            }
        }
    }

    /// Reads a statistics file, validating every length and checksum; `hottest` caps the rows kept per table.
    public static func read(_ path: String, hottest: Int = .max) throws(DataError) -> RowAccessStats {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw .io(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        func bad(_ reason: String) -> DataError { .io(path: path, reason: "not a valid access-statistics file: \(reason)") }
        var r = ByteReader(data: data, path: path)
        do throws(DataError) {
            guard try r.bytes(8, field: "magic") == magic else { throw bad("magic: not RKACCESS") }
            let version = try r.u32(field: "version")
            guard version == 1 else { throw bad("version \(version) (this RecKit reads 1)") }
            let n = try r.length(UInt64(try r.u32(field: "header length")), field: "header length", limit: r.remaining - 4)
            let crc = try r.u32(field: "header checksum")
            let header = try r.slice(n, field: "header")
            guard header.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == crc else { throw bad("header: checksum mismatch") }
            var tables: [Table]
            do { tables = try JSONDecoder().decode([Table].self, from: header) } catch { throw bad("header: \(error)") }
            for i in tables.indices {
                let t = tables[i]
                guard t.rows >= 0, t.seen >= 0, t.seen <= t.rows, t.lookups >= 0 else { throw bad("table \(t.name): counts out of range") }
                let seen = try r.length(UInt64(t.seen), field: "table \(t.name): seen", limit: r.remaining / 12)
                let ids = try r.slice(seen * 8, field: "table \(t.name): ids")
                let idsCRC = try r.u32(field: "table \(t.name): ids checksum")
                let counts = try r.slice(seen * 4, field: "table \(t.name): counts")
                let countsCRC = try r.u32(field: "table \(t.name): counts checksum")
                guard ids.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == idsCRC,
                      counts.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == countsCRC else {
                    throw bad("table \(t.name): checksum mismatch")
                }
                let keep = min(seen, hottest)
                tables[i].ids = ids.withUnsafeBytes { raw in (0..<keep).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) } }
                tables[i].counts = counts.withUnsafeBytes { raw in (0..<keep).map { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) } }
                guard tables[i].ids.allSatisfy({ $0 >= 0 && $0 < Int64(t.rows) }) else { throw bad("table \(t.name): an id outside 0..<\(t.rows)") }
            }
            guard r.remaining == 0 else { throw bad("\(r.remaining) bytes after the last table") }
            return RowAccessStats(tables: tables)
        } catch let e {
            if case .badShard(_, let reason) = e { throw bad(reason) }
            throw e
        }
    }
}
