import Foundation

/// Writes a dataset directory all or nothing: every file goes into a staging directory created exclusively beside
/// the output (`mkdtemp`), and `commit()` renames it into place at the end. A run that fails half-way leaves the old
/// dataset untouched (and `abandon()` removes the staging directory); a finished run replaces it whole, so no
/// manifest ever describes shards from two runs.
public final class DatasetStaging: @unchecked Sendable {
    public let output: String
    /// Where the files are written until `commit()`.
    public let directory: String
    private var done = false

    /// Refuses a non-empty output directory unless `overwrite`.
    public init(output: String, overwrite: Bool) throws(DataError) {
        let out = output.hasSuffix("/") && output.count > 1 ? String(output.dropLast()) : output
        self.output = out
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDir) {
            guard isDir.boolValue else { throw .io(path: out, reason: "exists and is not a directory") }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
            if !entries.isEmpty && !overwrite {
                throw .io(path: out, reason: "the output directory is not empty (\(entries.count) entries); use --overwrite to replace it")
            }
        }
        let parent = (out as NSString).deletingLastPathComponent
        let base = parent.isEmpty ? "." : parent
        do { try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true) } catch {
            throw .io(path: base, reason: "cannot create the parent directory: \(error.localizedDescription)")
        }
        directory = try Self.makeTemporaryDirectory(in: base, prefix: "." + (out as NSString).lastPathComponent + ".staging")
    }

    deinit { if !done { abandon() } }

    /// Creates a fresh directory `<dir>/<prefix>-XXXXXX` exclusively (mkdtemp).
    public static func makeTemporaryDirectory(in dir: String, prefix: String) throws(DataError) -> String {
        var template = Array((dir + "/" + prefix + "-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw .io(path: dir, reason: "cannot create a temporary directory: \(String(cString: strerror(errno)))")
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Moves the staged dataset into place (replacing the old one, if any).
    public func commit() throws(DataError) {
        let parent = (output as NSString).deletingLastPathComponent
        let base = parent.isEmpty ? "." : parent
        var old: String?
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDir) {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
            if !entries.isEmpty {
                let trash = try Self.makeTemporaryDirectory(in: base, prefix: "." + (output as NSString).lastPathComponent + ".old")
                guard rename(output, trash) == 0 else {
                    throw .io(path: output, reason: "cannot move the old dataset aside: \(String(cString: strerror(errno)))")
                }
                old = trash
            }
        }
        guard rename(directory, output) == 0 else {
            let reason = String(cString: strerror(errno))
            if let old { _ = rename(old, output) }
            throw .io(path: output, reason: "cannot move the new dataset into place: \(reason)")
        }
        done = true
        let dfd = open(base, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
        if let old { try? FileManager.default.removeItem(atPath: old) }
    }

    /// Removes the staging directory (a failed run).
    public func abandon() {
        done = true
        try? FileManager.default.removeItem(atPath: directory)
    }
}
