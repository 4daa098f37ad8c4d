import Foundation

/// `manifest.json` of a shard dataset: the schema and the shards in order.
public struct Manifest: Codable, Sendable, Equatable {
    public struct Shard: Codable, Sendable, Equatable {
        public var file: String
        public var rows: Int
        public var bytes: Int
        public init(file: String, rows: Int, bytes: Int) { self.file = file; self.rows = rows; self.bytes = bytes }
    }

    public static let fileName = "manifest.json"
    public static let formatName = "reckit-shards"

    public var format: String = Manifest.formatName
    public var version: Int = Int(ShardFile.version)
    public var schema: DatasetSchema
    public var shards: [Shard]
    public var rows: Int

    public init(schema: DatasetSchema, shards: [Shard]) {
        self.schema = schema
        self.shards = shards
        rows = shards.reduce(0) { $0 + $1.rows }
    }

    public func write(to directory: String) throws(DataError) {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data: Data
        do { data = try e.encode(self) } catch { throw .io(path: directory, reason: "cannot encode manifest: \(error)") }
        try AtomicFile.write(data, to: directory + "/" + Self.fileName)
    }

    /// Largest manifest accepted (a manifest lists shards, not rows).
    static let maxBytes = 64 << 20

    public static func read(directory: String) throws(DataError) -> Manifest {
        let path = directory + "/" + fileName
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw .io(path: path, reason: "no manifest (is this a RecKit shard directory? create one with `reckit data convert`)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG, st.st_size <= maxBytes else {
            throw .badShard(path: path, reason: "manifest: not a regular file of at most \(maxBytes) bytes")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read the manifest") }
        let m: Manifest
        do { m = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw .badShard(path: path, reason: "manifest: not valid JSON for a manifest (\(error))")
        }
        try m.validate(path: path)
        return m
    }

    /// What readers rely on: the format and version, shard files that are plain names inside the dataset directory,
    /// non-negative row counts that add up to `rows`, at least one shard, a valid schema.
    public func validate(path: String) throws(DataError) {
        guard format == Self.formatName else { throw .badShard(path: path, reason: "format: \(format), expected \(Self.formatName)") }
        guard (1...Int(ShardFile.version)).contains(version) else { throw .badShard(path: path, reason: "version: \(version) is not supported") }
        guard !shards.isEmpty else { throw .badShard(path: path, reason: "shards: the list is empty (no rows to read)") }
        var total = 0
        for (i, s) in shards.enumerated() {
            guard !s.file.isEmpty, !s.file.contains("/"), s.file != ".", s.file != "..", !s.file.contains("\0") else {
                throw .badShard(path: path, reason: "shards[\(i)].file: '\(s.file)' must be a file name inside the dataset directory")
            }
            guard s.rows >= 0, s.bytes >= 0 else { throw .badShard(path: path, reason: "shards[\(i)].rows: negative count") }
            let (sum, overflow) = total.addingReportingOverflow(s.rows)
            guard !overflow else { throw .badShard(path: path, reason: "shards[\(i)].rows: the total overflows") }
            total = sum
        }
        guard total == rows else { throw .badShard(path: path, reason: "rows: \(rows), but the shards hold \(total)") }
        guard Set(shards.map(\.file)).count == shards.count else { throw .badShard(path: path, reason: "shards: a file is listed twice") }
        try schema.validate(path: path)
    }
}

/// A shard dataset on disk: manifest + shards, read shard by shard (bounded memory).
public struct ShardDataset: Sendable {
    public let directory: String
    public let manifest: Manifest
    /// First row of each shard, and the total at the end (shards + 1 entries).
    public let shardStarts: [Int]

    public init(directory: String) throws(DataError) {
        self.directory = directory
        manifest = try Manifest.read(directory: directory)
        var starts = [0]
        for s in manifest.shards { starts.append(starts.last! + s.rows) }
        shardStarts = starts
    }

    public var schema: DatasetSchema { manifest.schema }

    /// The shard holding row `row` (file order), by the manifest's row counts; nil past the end.
    public func shardIndex(containing row: Int) -> Int? {
        guard row >= 0, row < manifest.rows else { return nil }
        var lo = 0, hi = manifest.shards.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if shardStarts[mid] <= row { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Reads shard `i` (verifying its checksums and that its schema equals the manifest's).
    public func shard(_ i: Int) throws(DataError) -> ShardColumns {
        let path = directory + "/" + manifest.shards[i].file
        let (schema, cols) = try ShardFile.read(path)
        guard schema == manifest.schema else { throw .badShard(path: path, reason: "header: the schema differs from the manifest's") }
        guard cols.rowCount == manifest.shards[i].rows else {
            throw .badShard(path: path, reason: "row count: \(cols.rowCount), the manifest says \(manifest.shards[i].rows)")
        }
        return cols
    }
}
