import Foundation

/// `manifest.json` of a shard dataset: the schema and the shards in order.
public struct Manifest: Codable, Sendable, Equatable {
    public struct Shard: Codable, Sendable, Equatable {
        public var file: String
        public var rows: Int
        public var bytes: Int
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

    public static func read(directory: String) throws(DataError) -> Manifest {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .io(path: path, reason: "no manifest (is this a RecKit shard directory? create one with `reckit data convert`)")
        }
        let m: Manifest
        do { m = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw .badShard(path: path, reason: "manifest is not valid: \(error)")
        }
        guard m.format == formatName else { throw .badShard(path: path, reason: "format \(m.format), expected \(formatName)") }
        guard m.version == Int(ShardFile.version) else { throw .badShard(path: path, reason: "unsupported version \(m.version)") }
        return m
    }
}

/// A shard dataset on disk: manifest + shards, read shard by shard (bounded memory).
public struct ShardDataset: Sendable {
    public let directory: String
    public let manifest: Manifest

    public init(directory: String) throws(DataError) {
        self.directory = directory
        manifest = try Manifest.read(directory: directory)
    }

    public var schema: DatasetSchema { manifest.schema }

    /// Reads shard `i` (verifying its checksums and that its schema equals the manifest's).
    public func shard(_ i: Int) throws(DataError) -> ShardColumns {
        let path = directory + "/" + manifest.shards[i].file
        let (schema, cols) = try ShardFile.read(path)
        guard schema == manifest.schema else { throw .badShard(path: path, reason: "schema differs from the manifest") }
        guard cols.rowCount == manifest.shards[i].rows else {
            throw .badShard(path: path, reason: "\(cols.rowCount) rows, manifest says \(manifest.shards[i].rows)")
        }
        return cols
    }
}
