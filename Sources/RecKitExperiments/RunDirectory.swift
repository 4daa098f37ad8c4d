import Foundation

/// One run's directory, `<runs>/<name>/`, and the files in it:
///
/// | file | written | holds |
/// |---|---|---|
/// | `config.json` | once, at the start (atomically) | the effective recipe and provenance (`RunConfig`) |
/// | `metrics.csv` | appended as the run goes | one row per logged interval and per validation pass (`MetricsLog`) |
/// | `events.out.tfevents.*` | appended as the run goes | the same series for TensorBoard (`TensorBoardWriter`) |
/// | `calibration.csv` | once, at the end | reliability deciles of the kept parameters |
/// | `summary.json` | once, at the end | the final report (its presence marks a finished run) |
/// | `carbon.json` | once, at the end | the carbon ledger row of the run |
/// | `checkpoint.safetensors` | by the trainer | the model, unless `--output` put it elsewhere (config.json says where) |
///
/// Nothing is rewritten: a crash leaves a readable prefix. A run resumed into its own directory appends to
/// `metrics.csv`, adds an event file, and writes its config, calibration, summary and carbon files with the suffix
/// `.resume-<step>` (`config.resume-500.json`); readers take the latest leg's.
public struct RunDirectory: Sendable {
    public let path: String
    public var name: String { (path as NSString).lastPathComponent }

    public static let configFile = "config.json"
    public static let metricsFile = "metrics.csv"
    public static let calibrationFile = "calibration.csv"
    public static let summaryFile = "summary.json"
    public static let carbonFile = "carbon.json"
    public static let checkpointFile = "checkpoint.safetensors"

    public init(existing path: String) throws(ExperimentError) {
        guard FileManager.default.fileExists(atPath: path + "/" + Self.configFile) else { throw .notARun(path: path) }
        self.path = path
    }

    private init(path: String) { self.path = path }

    /// A directory used for its `writeOnce` (a tuner's directory, which holds no config.json).
    init(uncheckedPath path: String) { self.path = path }

    public func file(_ name: String) -> String { path + "/" + name }

    /// `base` for the run leg `leg` ("" or ".resume-<step>"): `summary.json` → `summary.resume-500.json`.
    public static func legFile(_ base: String, _ leg: String) -> String {
        guard !leg.isEmpty else { return base }
        let ext = (base as NSString).pathExtension
        return (base as NSString).deletingPathExtension + leg + "." + ext
    }

    /// The latest leg of this run: "" or ".resume-<step>" with the largest step whose config exists.
    public var latestLeg: String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let steps = names.compactMap { n -> Int? in
            guard n.hasPrefix("config.resume-"), n.hasSuffix(".json") else { return nil }
            return Int(n.dropFirst("config.resume-".count).dropLast(".json".count))
        }
        return steps.max().map { ".resume-\($0)" } ?? ""
    }

    /// The runs root: `--runs-dir`, else `$RECKIT_RUNS_DIR`, else `runs` in the working directory.
    public static func root(_ given: String?) -> String {
        given ?? ProcessInfo.processInfo.environment["RECKIT_RUNS_DIR"] ?? "runs"
    }

    /// A new run directory `root/name` — `name` defaults to a UTC timestamp and the model (`20261206-205501-dlrm`,
    /// with `-2`, `-3`… when that exists). A given name that exists is refused unless `appending` (a resumed run
    /// continuing in its own directory).
    public static func create(root: String, name: String?, model: String, appending: Bool = false,
                              now: Date = Date()) throws(ExperimentError) -> RunDirectory {
        if let name {
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                throw .options("--run-name must be one path component, not \"\(name)\"")
            }
        }
        do { try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true) } catch {
            throw .io(path: root, reason: "cannot create the runs directory: \(error.localizedDescription)")
        }
        if let name {
            let path = root + "/" + name
            if FileManager.default.fileExists(atPath: path) {
                guard appending else { throw .runExists(path: path) }
                return RunDirectory(path: path)
            }
            guard mkdir(path, 0o755) == 0 else { throw .io(path: path, reason: "cannot create: \(String(cString: strerror(errno)))") }
            return RunDirectory(path: path)
        }
        let base = "\(timestampName(now))-\(model)"
        for k in 1...1000 {
            let path = root + "/" + (k == 1 ? base : "\(base)-\(k)")
            if mkdir(path, 0o755) == 0 { return RunDirectory(path: path) }
            guard errno == EEXIST else { throw .io(path: path, reason: "cannot create: \(String(cString: strerror(errno)))") }
        }
        throw .io(path: root + "/" + base, reason: "1000 runs with this name already exist")
    }

    /// `now` as `yyyyMMdd-HHmmss` in UTC: the prefix of default run and tuning names.
    public static func timestampName(_ now: Date = Date()) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: now)
    }

    /// Writes `data` to `name` whole or not at all, refusing to replace an existing file: a temp file, then
    /// `link(2)` to the name (which fails if it exists), then the temp name removed. No fsync: these are small
    /// records of a run (a process crash leaves them whole or absent; the checkpoint is the file written durably),
    /// and an fsync per file would cost more than the rest of the recording on a short run.
    public func writeOnce(_ data: Data, to name: String) throws(ExperimentError) {
        let target = file(name)
        let temp = path + "/.\(name).tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temp, contents: data) else {
            throw .io(path: target, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        defer { unlink(temp) }
        guard link(temp, target) == 0 else {
            throw .io(path: target, reason: errno == EEXIST ? "exists; run files are never rewritten" : "cannot create: \(String(cString: strerror(errno)))")
        }
    }

    /// Every run directory under `root` (those holding a config.json), sorted by name.
    public static func all(in root: String) throws(ExperimentError) -> [RunDirectory] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else {
            throw .io(path: root, reason: "cannot list the runs directory (no runs yet? `reckit train` writes them)")
        }
        return names.sorted().compactMap { try? RunDirectory(existing: root + "/" + $0) }
    }
}
