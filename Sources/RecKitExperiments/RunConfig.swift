import CRecKitShims
import Foundation
import RecKitTraining

/// `config.json`: the effective recipe of a run (every hyper-parameter after the data-size defaults, a resumed
/// checkpoint, `--config` and the flags), what it trained on, and where it came from.
public struct RunConfig: Codable, Sendable, Equatable {
    public var name: String
    public var command: String
    public var model: String
    /// The `--data` arguments as given, and the raw format when they were converted on the spot.
    public var data: [String]
    public var format: String?
    public var minCount: Int?
    public var maxIndRange: Int?
    /// CRC-32C of the trained-on dataset's manifest.json, and of the raw input files' bytes when converted.
    public var manifestCRC32C: String
    public var rawCRC32C: String?
    public var trainRows: Int
    public var validationRows: Int
    /// The effective options, as a `--config` file would set them (so `reckit train --config` can replay them).
    public var recipe: TrainOptions.File
    public var seed: UInt64
    public var threads: Int
    public var resumeFrom: String?
    public var resumedStep: Int
    public var checkpoint: String
    public var reckitVersion: String
    /// The git commit of the RecKit checkout the binary was built in, when it can be found.
    public var gitCommit: String?
    public var created: String
    public var host: String

    enum CodingKeys: String, CodingKey {
        case name, command, model, data, format, recipe, seed, threads, checkpoint, created, host
        case minCount = "min_count"
        case maxIndRange = "max_ind_range"
        case manifestCRC32C = "manifest_crc32c"
        case rawCRC32C = "raw_crc32c"
        case trainRows = "train_rows"
        case validationRows = "validation_rows"
        case resumeFrom = "resume_from"
        case resumedStep = "resumed_step"
        case reckitVersion = "reckit_version"
        case gitCommit = "git_commit"
    }

    /// Flattened `key → value` text (recipe keys unprefixed), for comparing runs.
    public var flattened: [String: String] {
        var out: [String: String] = ["model": model, "data": data.joined(separator: " "), "seed": "\(seed)", "threads": "\(threads)",
                                     "manifest_crc32c": manifestCRC32C, "reckit_version": reckitVersion]
        if let format { out["format"] = format }
        if let minCount { out["min_count"] = "\(minCount)" }
        if let maxIndRange { out["max_ind_range"] = "\(maxIndRange)" }
        if let gitCommit { out["git_commit"] = gitCommit }
        if let resumeFrom { out["resume_from"] = resumeFrom }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        if let d = try? e.encode(recipe), let object = try? JSONSerialization.jsonObject(with: d) as? [String: Any] {
            for (k, v) in object {
                if let a = v as? [Any] { out[k] = "[" + a.map { "\($0)" }.joined(separator: ",") + "]" } else { out[k] = "\(v)" }
            }
        }
        return out
    }
}

/// Where a binary and its data come from.
public enum Provenance {
    /// RecKit's version (the package has no release tags yet; bumped with the run-directory format).
    public static let reckitVersion = "0.4.0"

    /// CRC-32C of a file's bytes, streamed (hex), or nil when it cannot be read.
    public static func crc32c(file path: String) -> String? {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        var crc: UInt32 = 0
        while true {
            guard let chunk = try? h.read(upToCount: 1 << 22), !chunk.isEmpty else { break }
            crc = chunk.withUnsafeBytes { reckit_crc32c(crc, $0.baseAddress, $0.count) }
        }
        return String(format: "%08x", crc)
    }

    /// CRC-32C over several files in order (each file's CRC folded into the next), or nil when one cannot be read.
    public static func crc32c(files: [String]) -> String? {
        var parts: [String] = []
        for f in files { guard let c = crc32c(file: f) else { return nil }; parts.append(c) }
        return parts.count == 1 ? parts[0] : parts.joined(separator: "+")
    }

    /// The commit of the git checkout that holds the running executable (a binary built in a RecKit clone, e.g.
    /// `.build/release/reckit`), read from `.git/HEAD` and its ref; nil for an installed binary.
    public static func gitCommit() -> String? {
        var dir = URL(fileURLWithPath: executablePath).deletingLastPathComponent()
        for _ in 0..<8 {
            let git = dir.appendingPathComponent(".git").path
            if let head = try? String(contentsOfFile: git + "/HEAD", encoding: .utf8) {
                let h = head.trimmingCharacters(in: .whitespacesAndNewlines)
                guard h.hasPrefix("ref: ") else { return h.count == 40 ? h : nil }
                let ref = String(h.dropFirst(5))
                if let c = try? String(contentsOfFile: git + "/" + ref, encoding: .utf8) { return c.trimmingCharacters(in: .whitespacesAndNewlines) }
                if let packed = try? String(contentsOfFile: git + "/packed-refs", encoding: .utf8) {
                    for line in packed.split(separator: "\n") where line.hasSuffix(" " + ref) { return String(line.prefix(40)) }
                }
                return nil
            }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        return nil
    }

    /// The running executable (`/proc/self/exe`, else argv[0]).
    public static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments.first ?? ""
    }

    public static var hostName: String {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        return String(cString: host)
    }

    public static func timestamp(_ d: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }
}
