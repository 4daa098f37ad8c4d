import Foundation

/// A shard dataset converted from raw files into a fresh temporary directory (`mkdtemp`), removed when this object
/// goes away: how `train`, `eval`, `predict` and `quantize` accept raw click logs.
public final class TemporaryDataset: @unchecked Sendable {
    public let dataset: ShardDataset
    public let directory: String
    public let report: ConvertReport

    /// Converts `files` of `format` into a temporary dataset. With `encoder`, categoricals are mapped exactly as a
    /// trained model's preprocessing did and every row must parse (scores stay aligned with input rows);
    /// otherwise a vocabulary (`minCount`) or hashing (`maxIndRange`) is built and malformed rows are skipped.
    public init(files: [String], format: InputFormat, encoder: CategoricalEncoder? = nil, minCount: Int? = nil,
                maxIndRange: Int? = nil) throws(DataError) {
        let parent = NSTemporaryDirectory().hasSuffix("/") ? String(NSTemporaryDirectory().dropLast()) : NSTemporaryDirectory()
        let root = try DatasetStaging.makeTemporaryDirectory(in: parent.isEmpty ? "/tmp" : parent, prefix: "reckit-data")
        let dir = root + "/data"
        var o = ConvertOptions(format: format, inputs: files, output: dir)
        o.minCount = minCount
        o.maxIndRange = maxIndRange
        if let encoder { o.fixedEncoder = encoder; o.onError = .fail }
        do {
            report = try Converter.run(o)
            dataset = try ShardDataset(directory: dir)
        } catch {
            try? FileManager.default.removeItem(atPath: root)
            throw error
        }
        directory = root
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// The vocabularies the conversion built (vocabulary mode), for a checkpoint.
    public func vocabularies() throws(DataError) -> [[UInt64]] {
        guard case .vocabulary = dataset.schema.preprocessing.categorical else { return [] }
        return try CategoricalEncoder.readVocabulary(from: dataset.directory)
    }
}

extension CategoricalEncoder {
    /// The encoder a trained model's `schema` describes (hash, or its saved vocabularies); nil for identity ids
    /// (synthetic data), which raw rows cannot be mapped to.
    public static func forSchema(_ schema: DatasetSchema, vocabularies: [[UInt64]]) throws(DataError) -> CategoricalEncoder? {
        switch schema.preprocessing.categorical {
        case .hash(let m): return CategoricalEncoder(mode: .hash(modulo: m), featureCount: schema.sparse.count)
        case .vocabulary(let k, let sizes):
            guard vocabularies.count == schema.sparse.count, zip(vocabularies, sizes).allSatisfy({ $0.count + 1 == $1 }) else {
                throw .invalidOptions("the model's vocabularies do not match its schema (\(vocabularies.count) of \(schema.sparse.count) features)")
            }
            return CategoricalEncoder(minCount: k, vocabularies: vocabularies)
        case .identity: return nil
        }
    }
}
