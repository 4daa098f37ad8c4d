import Foundation
import RecKitData

/// User–item events in file order, with raw 64-bit ids (as written in the source; non-numeric tokens are
/// FNV-1a-64 hashed with the top bit set, as `reckit data convert --format interactions` does).
///
/// Every event is a positive in the CF protocol; `ratings` keep the value for tools that want it.
public struct Interactions: Sendable, Equatable {
    public var users: [Int64] = []
    public var items: [Int64] = []
    public var ratings: [Float] = []
    /// Unix timestamps, or nil when the source had none.
    public var timestamps: [Int64]?
    /// Where the events came from (for messages).
    public var source: String
    /// Malformed rows skipped under `MalformedRowPolicy.skip`.
    public var skippedRows = 0

    public init(source: String, users: [Int64] = [], items: [Int64] = [], ratings: [Float] = [], timestamps: [Int64]? = nil) {
        self.source = source; self.users = users; self.items = items; self.ratings = ratings; self.timestamps = timestamps
    }

    public var count: Int { users.count }

    /// The events at `indices`, in that order.
    public func subset(_ indices: [Int], source: String? = nil) -> Interactions {
        var out = Interactions(source: source ?? self.source)
        out.users = indices.map { users[$0] }
        out.items = indices.map { items[$0] }
        out.ratings = indices.map { ratings[$0] }
        out.timestamps = timestamps.map { t in indices.map { t[$0] } }
        return out
    }

    /// Concatenation of several event lists (e.g. train + validation as one context).
    public static func concatenate(_ parts: [Interactions]) -> Interactions {
        var out = Interactions(source: parts.map(\.source).joined(separator: "+"))
        let allTimed = parts.allSatisfy { $0.timestamps != nil }
        if allTimed { out.timestamps = [] }
        for p in parts {
            out.users += p.users; out.items += p.items; out.ratings += p.ratings
            if allTimed { out.timestamps! += p.timestamps! }
        }
        return out
    }

    /// Reads `path`: a directory written by `reckit data convert --format interactions` (features `user` and
    /// `item`; label = rating), or a text file `user item [rating [timestamp]]` separated by TAB or commas, with
    /// or without a header line (a first line that does not start with a digit is a header).
    public static func read(_ path: String, policy: MalformedRowPolicy = .fail) throws(CFError) -> Interactions {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw .io(path: path, reason: "no such file or directory") }
        let result = isDir.boolValue ? try readShards(path) : try readText(path, policy: policy)
        guard result.count > 0 else { throw .emptyInput(path: path, reason: "no interactions") }
        return result
    }

    static func readShards(_ dir: String) throws(CFError) -> Interactions {
        do {
            let dataset = try ShardDataset(directory: dir)
            let manifest = dataset.manifest
            guard let u = manifest.schema.sparse.firstIndex(where: { $0.name == "user" }),
                  let i = manifest.schema.sparse.firstIndex(where: { $0.name == "item" }) else {
                throw CFError.invalidOptions("\(dir): the dataset has no 'user' and 'item' features (convert it with --format interactions)")
            }
            // Vocabulary mode re-numbers ids per dataset: map them back to the raw ids through the saved
            // vocabulary (row k ≥ 1 is key k−1; row 0, out of vocabulary, has no raw id and is skipped).
            var vocab: [[UInt64]]? = nil
            if case .vocabulary = manifest.schema.preprocessing.categorical {
                vocab = try CategoricalEncoder.readVocabulary(from: dir)
            }
            var out = Interactions(source: dir)
            out.timestamps = manifest.schema.hasTimestamps ? [] : nil
            for s in manifest.shards.indices {
                let cols = try dataset.shard(s)
                // Single-hot features store no lengths block (one id per row); multi-hot ones must still have one.
                for f in [u, i] {
                    guard cols.ids[f].count == cols.rowCount, cols.lengths[f].allSatisfy({ $0 == 1 }) else {
                        throw CFError.invalidOptions("\(dir): shard \(s) does not have exactly one user and one item per row")
                    }
                }
                for r in 0..<cols.rowCount {
                    var user = cols.ids[u][r], item = cols.ids[i][r]
                    if let vocab {
                        guard user > 0, item > 0, Int(user) <= vocab[u].count, Int(item) <= vocab[i].count else { out.skippedRows += 1; continue }
                        user = Int64(bitPattern: vocab[u][Int(user) - 1]); item = Int64(bitPattern: vocab[i][Int(item) - 1])
                    }
                    out.users.append(user); out.items.append(item)
                    out.ratings.append(cols.labels.isEmpty ? 1 : cols.labels[r])
                    if out.timestamps != nil { out.timestamps!.append(cols.timestamps[r]) }
                }
            }
            return out
        } catch let e as CFError {
            throw e
        } catch let e as DataError {
            throw .io(path: dir, reason: "\(e)")
        } catch {
            throw .io(path: dir, reason: "\(error)")
        }
    }
}
