import Foundation

/// One row of `metrics.csv`: a logged training interval (train fields set) or a validation pass (validation fields
/// set). Columns, in order: `step, epoch, elapsed_s, train_loss, learning_rate, samples_per_s, val_auc, val_logloss,
/// val_ne, val_calibration`; an empty cell is a value that row does not have.
public struct MetricsRow: Sendable, Equatable {
    public var step: Int
    /// Training rows: the 0-based epoch of the interval's last step; validation rows: epochs completed.
    public var epoch: Int
    public var elapsed: Double
    public var trainLoss: Double?
    public var learningRate: Double?
    public var samplesPerSecond: Double?
    public var validationAUC: Double?
    public var validationLogloss: Double?
    public var validationNE: Double?
    public var validationCalibration: Double?

    public init(step: Int, epoch: Int, elapsed: Double) { self.step = step; self.epoch = epoch; self.elapsed = elapsed }

    public static let header = "step,epoch,elapsed_s,train_loss,learning_rate,samples_per_s,val_auc,val_logloss,val_ne,val_calibration"

    public var isValidation: Bool { validationLogloss != nil }

    /// The row as CSV. Values are printed as the shortest text that reads back to the same Float (single precision
    /// is plenty for curves, and it is several times faster than `String(format:)`, which matters when a short run
    /// logs thousands of intervals); elapsed seconds and samples/s are rounded to ms and 0.1.
    public var csvLine: String {
        func f(_ v: Double?) -> String { v.map { $0.isFinite ? Float($0).description : "nan" } ?? "" }
        var line = String(step)
        line += ","; line += String(epoch)
        line += ","; line += f((elapsed * 1000).rounded() / 1000)
        for v in [trainLoss, learningRate, samplesPerSecond.map { ($0 * 10).rounded() / 10 }, validationAUC, validationLogloss, validationNE, validationCalibration] {
            line += ","; line += f(v)
        }
        return line
    }

    /// Parses a data line of `path` (1-based `line` for errors).
    public init(csv text: Substring, path: String, line: Int) throws(ExperimentError) {
        let cells = text.split(separator: ",", omittingEmptySubsequences: false)
        guard cells.count == 10 else { throw .malformed(path: path, line: line, reason: "expected 10 fields, found \(cells.count)") }
        func int(_ i: Int, _ name: String) throws(ExperimentError) -> Int {
            guard let v = Int(cells[i]) else { throw .malformed(path: path, line: line, reason: "field \(name): not an integer: \"\(cells[i])\"") }
            return v
        }
        func double(_ i: Int, _ name: String) throws(ExperimentError) -> Double? {
            if cells[i].isEmpty { return nil }
            guard let v = Double(cells[i]) else { throw .malformed(path: path, line: line, reason: "field \(name): not a number: \"\(cells[i])\"") }
            return v
        }
        self.init(step: try int(0, "step"), epoch: try int(1, "epoch"), elapsed: try double(2, "elapsed_s") ?? 0)
        trainLoss = try double(3, "train_loss")
        learningRate = try double(4, "learning_rate")
        samplesPerSecond = try double(5, "samples_per_s")
        validationAUC = try double(6, "val_auc")
        validationLogloss = try double(7, "val_logloss")
        validationNE = try double(8, "val_ne")
        validationCalibration = try double(9, "val_calibration")
    }

    /// Every row of a metrics.csv. A last line without its newline (a run killed mid-write) is ignored.
    public static func read(_ path: String) throws(ExperimentError) -> [MetricsRow] {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read") }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last.map({ !$0.isEmpty }) ?? false { lines.removeLast() }  // incomplete last line
        var out: [MetricsRow] = []
        for (i, l) in lines.enumerated() where !l.isEmpty {
            if l == Substring(header) { continue }  // first line, and again after a resume
            out.append(try MetricsRow(csv: l, path: path, line: i + 1))
        }
        return out
    }
}

/// An append-only file written one whole record per `write(2)` (O_APPEND), so a crash leaves whole records:
/// lines of metrics.csv, framed events of a TensorBoard file.
final class AppendOnlyFile {
    let path: String
    private let fd: Int32

    /// Opens `path` for appending, creating it if needed.
    init(_ path: String) throws(ExperimentError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: path, reason: "cannot open for appending: \(String(cString: strerror(errno)))") }
    }

    /// Creates a new file: `base`, or `base.1`, `base.2`… when that name exists (names are never reused).
    init(creatingNew base: String) throws(ExperimentError) {
        var k = 0, candidate = base, handle: Int32 = -1
        while true {
            handle = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
            if handle >= 0 || errno != EEXIST || k >= 1000 { break }
            k += 1
            candidate = base + ".\(k)"
        }
        path = candidate
        fd = handle
        guard fd >= 0 else { throw .io(path: path, reason: "cannot create: \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    var isEmpty: Bool { lseek(fd, 0, SEEK_END) == 0 }

    func append(line: String) throws(ExperimentError) { try append(Array((line + "\n").utf8)) }

    func append(_ bytes: [UInt8]) throws(ExperimentError) {
        let failed = bytes.withUnsafeBytes { raw -> Bool in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return true }
                done += n
            }
            return false
        }
        if failed { throw .io(path: path, reason: "write failed: \(String(cString: strerror(errno)))") }
    }
}
