import Crypto
import Foundation

/// Croissant 1.0 metadata (JSON-LD, http://mlcommons.org/croissant/1.0) of a converted shard dataset: every file
/// of the directory as a `cr:FileObject` with its SHA-256, the shards as a `cr:FileSet`, a `rows` record set with
/// one field per column (label, dense features, sparse feature ids, timestamp) and a `features` record set that
/// lists each sparse feature's cardinality inline. The license is left for the user to fill in (RecKit cannot know
/// the source data's terms); `reckit data croissant DIR` writes it as `DIR/croissant.json`.
///
/// The shards are RecKit's binary format (`application/x-reckit-shard`), which generic Croissant loaders cannot
/// read record by record; the metadata still describes, checksums and validates the dataset.
public enum Croissant {
    public static let fileName = "croissant.json"

    /// The JSON-LD context recommended by the Croissant 1.0 specification (its appendix 1).
    static var context: [String: Any] { [
        "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
        "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
        "data": ["@id": "cr:data", "@type": "@json"], "dataType": ["@id": "cr:dataType", "@type": "@vocab"],
        "dct": "http://purl.org/dc/terms/", "examples": ["@id": "cr:examples", "@type": "@json"], "extract": "cr:extract",
        "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet",
        "format": "cr:format", "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath",
        "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path", "recordSet": "cr:recordSet",
        "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated", "replace": "cr:replace",
        "sc": "https://schema.org/", "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField",
        "transform": "cr:transform", "equivalentProperty": "cr:equivalentProperty", "samplingRate": "cr:samplingRate",
    ] }

    /// SHA-256 of a file's bytes (hex), streamed.
    public static func sha256(file path: String) throws(DataError) -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { throw .io(path: path, reason: "cannot read") }
        defer { try? h.close() }
        var hash = SHA256()
        while true {
            let chunk: Data
            do { chunk = try h.read(upToCount: 1 << 22) ?? Data() } catch { throw .io(path: path, reason: "read failed: \(error)") }
            if chunk.isEmpty { break }
            hash.update(data: chunk)
        }
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The metadata of the dataset in `directory` (checksums computed now), as pretty-printed JSON-LD.
    public static func metadata(directory: String, name: String? = nil, description: String? = nil) throws(DataError) -> Data {
        let ds = try ShardDataset(directory: directory)
        let schema = ds.schema
        let datasetName = name ?? (URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent)
        var distribution: [[String: Any]] = []
        func fileObject(_ file: String, format: String, description: String) throws(DataError) -> [String: Any] {
            ["@type": "cr:FileObject", "@id": file, "name": file, "description": description, "contentUrl": file,
             "encodingFormat": format, "sha256": try sha256(file: directory + "/" + file),
             "contentSize": "\((try? FileManager.default.attributesOfItem(atPath: directory + "/" + file)[.size] as? Int) ?? 0) B"]
        }
        distribution.append(try fileObject(Manifest.fileName, format: "application/json", description: "RecKit manifest: schema, shards and row counts"))
        if FileManager.default.fileExists(atPath: directory + "/" + CategoricalEncoder.vocabularyFile) {
            distribution.append(try fileObject(CategoricalEncoder.vocabularyFile, format: "application/octet-stream",
                                               description: "RecKit vocabularies: raw categorical keys in id order, per sparse feature"))
        }
        for s in ds.manifest.shards {
            distribution.append(try fileObject(s.file, format: "application/x-reckit-shard", description: "RecKit shard of \(s.rows) rows (columnar, CRC-32C per column)"))
        }
        distribution.append(["@type": "cr:FileSet", "@id": "shards", "name": "shards", "description": "every shard, in row order",
                             "encodingFormat": "application/x-reckit-shard", "includes": "shard-*.rks"])
        func field(_ id: String, _ type: String, _ description: String) -> [String: Any] {
            ["@type": "cr:Field", "@id": "rows/\(id)", "name": id, "description": description, "dataType": type,
             "source": ["fileSet": ["@id": "shards"], "extract": ["column": id]]]
        }
        var fields: [[String: Any]] = []
        if schema.hasLabel { fields.append(field("label", "sc:Float", "click label (0 or 1)")) }
        for d in schema.denseNames { fields.append(field(d, "sc:Float", "dense feature \(d), preprocessed: \(schema.preprocessing.dense)")) }
        for f in schema.sparse { fields.append(field(f.name, "sc:Integer", "sparse feature \(f.name): id in 0..<\(f.cardinality)")) }
        if schema.hasTimestamps { fields.append(field("timestamp", "sc:Integer", "event time (seconds)")) }
        let featureRows: [[String: Any]] = schema.sparse.map { ["features/name": $0.name, "features/cardinality": $0.cardinality] }
        let features: [String: Any] = [
            "@type": "cr:RecordSet", "@id": "features", "name": "features", "description": "the sparse features and their cardinalities",
            "key": ["@id": "features/name"],
            "field": [["@type": "cr:Field", "@id": "features/name", "name": "name", "dataType": "sc:Text"],
                      ["@type": "cr:Field", "@id": "features/cardinality", "name": "cardinality", "dataType": "sc:Integer"]],
            "data": featureRows,
        ]
        let doc: [String: Any] = [
            "@context": context, "@type": "sc:Dataset", "conformsTo": "http://mlcommons.org/croissant/1.0",
            "name": datasetName,
            "description": description ?? "\(ds.manifest.rows) rows converted by RecKit from \(schema.source) input (\(schema.sparse.count) sparse and \(schema.denseNames.count) dense features).",
            "license": "", "url": "",
            "version": "\(ds.manifest.version).0.0",
            "datePublished": String(ISO8601DateFormatter().string(from: Date()).prefix(10)),
            "distribution": distribution,
            "recordSet": [["@type": "cr:RecordSet", "@id": "rows", "name": "rows", "description": "one row per example, in file order", "field": fields], features],
        ]
        do { return try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) } catch {
            throw .invalidOptions("cannot encode the Croissant metadata: \(error)")
        }
    }
}
