import CRecKitShims
import Foundation

/// Maps raw 64-bit categorical keys to embedding rows, per feature.
///
/// - `hash(modulo: M)`: id = key mod M (DLRM's `--max-ind-range`), cardinality M.
/// - `vocabulary(minCount: k)`: a first pass `observe`s every key; keys seen ≥ k times get ids 1...V in
///   first-seen order, all others (and keys never seen) map to 0, the feature's out-of-vocabulary row.
///
/// Thread safety: `encode` may run concurrently (pass 2 only reads); `observe`, `merge` and `finalize` are
/// called from one thread.
public final class CategoricalEncoder: @unchecked Sendable {
    public enum Mode: Sendable, Equatable { case hash(modulo: Int), vocabulary(minCount: Int) }

    public let mode: Mode
    public let featureCount: Int
    private var counts: [[UInt64: Int64]]
    private var order: [[UInt64]]
    private var ids: [[UInt64: Int64]]
    public private(set) var vocabularies: [[UInt64]] = []

    public init(mode: Mode, featureCount: Int) {
        self.mode = mode
        self.featureCount = featureCount
        counts = Array(repeating: [:], count: featureCount)
        order = Array(repeating: [], count: featureCount)
        ids = Array(repeating: [:], count: featureCount)
    }

    /// Pass 1 (vocabulary mode): counts one occurrence.
    @inline(__always) public func observe(_ feature: Int, _ key: UInt64) {
        if let c = counts[feature][key] {
            counts[feature][key] = c &+ 1
        } else {
            counts[feature][key] = 1
            order[feature].append(key)
        }
    }

    /// Pass 1, merged per block in file order: adds a block's counts, keeping global first-seen order.
    public func merge(_ feature: Int, keys: [UInt64], counts blockCounts: [UInt64: Int64]) {
        for k in keys {
            let c = blockCounts[k]!
            if let old = counts[feature][k] {
                counts[feature][k] = old &+ c
            } else {
                counts[feature][k] = c
                order[feature].append(k)
            }
        }
    }

    /// Ends pass 1: builds the vocabularies.
    public func finalize() {
        guard case .vocabulary(let minCount) = mode else { return }
        vocabularies = (0..<featureCount).map { f in order[f].filter { counts[f][$0]! >= Int64(minCount) } }
        for f in 0..<featureCount {
            var map: [UInt64: Int64] = [:]
            map.reserveCapacity(vocabularies[f].count)
            for (i, k) in vocabularies[f].enumerated() { map[k] = Int64(i + 1) }
            ids[f] = map
        }
        counts = Array(repeating: [:], count: featureCount)
        order = Array(repeating: [], count: featureCount)
    }

    /// Restores vocabulary-mode ids from saved vocabularies (prediction/serving on raw rows).
    public convenience init(minCount: Int, vocabularies: [[UInt64]]) {
        self.init(mode: .vocabulary(minCount: minCount), featureCount: vocabularies.count)
        self.vocabularies = vocabularies
        for f in 0..<vocabularies.count {
            for (i, k) in vocabularies[f].enumerated() { ids[f][k] = Int64(i + 1) }
        }
    }

    /// The row of `key` in `feature`'s table (64-bit: hash sizes and vocabularies may pass 2³¹).
    @inline(__always) public func encode(_ feature: Int, _ key: UInt64) -> Int64 {
        switch mode {
        case .hash(let m): return Int64(key % UInt64(m))
        case .vocabulary: return ids[feature][key] ?? 0
        }
    }

    /// Rows of each feature's embedding table.
    public var cardinalities: [Int] {
        switch mode {
        case .hash(let m): return Array(repeating: m, count: featureCount)
        case .vocabulary: return vocabularies.map { $0.count + 1 }
        }
    }

    // MARK: vocabulary.bin

    public static let vocabularyFile = "vocabulary.bin"
    static let vocabularyMagic = Array("RKVOCAB1".utf8)

    /// Writes the vocabularies: magic, feature count u32, then per feature: count u64, keys u64…, CRC-32C u32.
    public func writeVocabulary(to directory: String) throws(DataError) {
        var w = ByteWriter()
        w.bytes(Self.vocabularyMagic)
        w.u32(UInt32(vocabularies.count))
        for v in vocabularies {
            w.u64(UInt64(v.count))
            v.withUnsafeBytes { raw in
                w.raw(raw)
                w.u32(reckit_crc32c(0, raw.baseAddress, raw.count))
            }
        }
        try AtomicFile.write(w.buffer, to: directory + "/" + Self.vocabularyFile)
    }

    public static func readVocabulary(from directory: String) throws(DataError) -> [[UInt64]] {
        let path = directory + "/" + vocabularyFile
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read vocabulary") }
        var r = ByteReader(data: data, path: path)
        guard try r.bytes(8, field: "magic") == vocabularyMagic else { throw .badShard(path: path, reason: "magic: not a RecKit vocabulary") }
        let n = try r.length(UInt64(try r.u32(field: "feature count")), field: "feature count", limit: r.remaining / 12)
        var result: [[UInt64]] = []
        for f in 0..<n {
            let count = try r.length(try r.u64(field: "feature \(f) key count"), field: "feature \(f) key count", limit: r.remaining / 8)
            let payload = try r.slice(count * 8, field: "feature \(f) keys")
            let crc = try r.u32(field: "feature \(f) checksum")
            guard payload.withUnsafeBytes({ reckit_crc32c(0, $0.baseAddress, $0.count) }) == crc else {
                throw .badShard(path: path, reason: "feature \(f) keys: checksum mismatch")
            }
            result.append(try ShardFile.decode(payload, UInt64.self, path))
        }
        guard r.remaining == 0 else { throw .badShard(path: path, reason: "\(r.remaining) unexpected bytes after the last feature") }
        return result
    }
}
