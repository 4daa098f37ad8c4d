import Foundation
import RecKitCarbon
import RecKitTraining

/// Records a training run into its `RunDirectory` as it goes: `config.json` at the start, a `metrics.csv` row and a
/// TensorBoard event per logged interval and per validation pass, and at the end the calibration deciles, the
/// summary and the carbon ledger row. Plugs into the trainer as its `TrainingObserver`.
///
/// TensorBoard tags: `train/loss`, `train/learning_rate`, `train/samples_per_s`, `validation/auc`,
/// `validation/logloss`, `validation/ne`, `validation/calibration`.
public final class RunRecorder: TrainingObserver {
    public let directory: RunDirectory
    /// What the config needs beyond the effective options.
    public struct Context: Sendable {
        public var command = "train"
        public var data: [String]
        public var format: String?
        public var maxIndRange: Int?
        public var threads: Int
        public var resumeFrom: String?
        public var checkpoint: String
        public init(data: [String], threads: Int, checkpoint: String) { self.data = data; self.threads = threads; self.checkpoint = checkpoint }
    }
    public let context: Context
    private var metrics: AppendOnlyFile?
    private var events: TensorBoardWriter?
    public private(set) var config: RunConfig?
    /// The leg of the run this recorder writes: "" for the first, ".resume-<step>" for one resumed into the same
    /// directory (its config, summary, calibration and carbon files carry the suffix; metrics and events append).
    public private(set) var leg = ""
    private var keptRecord: EvaluationRecord?
    /// Wall-clock seconds spent recording (config, metrics rows, events, final files): the run directory's cost.
    public private(set) var seconds = 0.0

    public init(directory: RunDirectory, context: Context) throws(ExperimentError) {
        self.directory = directory
        self.context = context
    }

    public func started(_ s: RunStart) throws(TrainingError) {
        try wrap { () throws(ExperimentError) in
            let manifest = s.datasetDirectory + "/manifest.json"
            guard let manifestCRC = Provenance.crc32c(file: manifest) else { throw .io(path: manifest, reason: "cannot read") }
            let c = RunConfig(name: directory.name, command: context.command, model: s.model.rawValue, data: context.data, format: context.format,
                              minCount: s.minCount, maxIndRange: context.maxIndRange, manifestCRC32C: manifestCRC,
                              rawCRC32C: context.format == nil ? nil : Provenance.crc32c(files: context.data),
                              trainRows: s.trainRows, validationRows: s.validationRows, recipe: s.options.file, seed: s.options.seed,
                              threads: context.threads, resumeFrom: context.resumeFrom, resumedStep: s.resumedStep,
                              checkpoint: context.checkpoint, reckitVersion: Provenance.reckitVersion, gitCommit: Provenance.gitCommit(),
                              created: Provenance.timestamp(), host: Provenance.hostName)
            config = c
            // A run resumed into its own directory keeps its first config; the resumed leg's goes beside it.
            leg = FileManager.default.fileExists(atPath: directory.file(RunDirectory.configFile)) ? ".resume-\(s.resumedStep)" : ""
            try directory.writeOnce(try Self.json(c), to: RunDirectory.legFile(RunDirectory.configFile, leg))
            let m = try AppendOnlyFile(directory.file(RunDirectory.metricsFile))
            if m.isEmpty { try m.append(line: MetricsRow.header) }
            metrics = m
            events = try TensorBoardWriter(directory: directory.path)
        }
    }

    public func trained(_ r: StepRecord) throws(TrainingError) {
        var row = MetricsRow(step: r.step, epoch: r.epoch, elapsed: r.elapsed)
        row.trainLoss = r.loss
        row.learningRate = r.learningRate
        row.samplesPerSecond = r.samplesPerSecond
        try wrap { () throws(ExperimentError) in
            try metrics?.append(line: row.csvLine)
            try events?.scalars([.init("train/loss", Float(r.loss)), .init("train/learning_rate", Float(r.learningRate)),
                                 .init("train/samples_per_s", Float(r.samplesPerSecond))], step: r.step)
        }
    }

    public func evaluated(_ r: EvaluationRecord) throws(TrainingError) {
        var row = MetricsRow(step: r.step, epoch: r.epoch, elapsed: r.elapsed)
        let m = r.metrics
        row.validationAUC = m.auc
        row.validationLogloss = m.logloss
        row.validationNE = m.ne
        row.validationCalibration = m.calibration
        var scalars: [TensorBoardEvent.Scalar] = [.init("validation/logloss", Float(m.logloss))]
        if let v = m.auc { scalars.append(.init("validation/auc", Float(v))) }
        if let v = m.ne { scalars.append(.init("validation/ne", Float(v))) }
        if let v = m.calibration { scalars.append(.init("validation/calibration", Float(v))) }
        try wrap { () throws(ExperimentError) in
            try metrics?.append(line: row.csvLine)
            try events?.scalars(scalars, step: r.step)
        }
    }

    public func kept(_ r: EvaluationRecord) throws(TrainingError) { keptRecord = r }

    /// Writes this leg's calibration deciles (of the kept parameters), final report and carbon ledger row, once.
    public func finish(summary: some Encodable, carbon: RunRecord?) throws(ExperimentError) {
        try timed { () throws(ExperimentError) in try writeFinal(summary: summary, carbon: carbon) }
    }

    private func writeFinal(summary: some Encodable, carbon: RunRecord?) throws(ExperimentError) {
        if let r = keptRecord, !r.reliability.isEmpty {
            var text = "decile,mean_prediction,observed_rate,count\n"
            for (i, b) in r.reliability.enumerated() { text += String(format: "%d,%.6g,%.6g,%d\n", i + 1, b.meanPrediction, b.observedRate, b.count) }
            try directory.writeOnce(Data(text.utf8), to: RunDirectory.legFile(RunDirectory.calibrationFile, leg))
        }
        if let carbon { try directory.writeOnce(try Self.json(carbon), to: RunDirectory.legFile(RunDirectory.carbonFile, leg)) }
        try directory.writeOnce(try Self.json(summary), to: RunDirectory.legFile(RunDirectory.summaryFile, leg))
    }

    static func json(_ value: some Encodable) throws(ExperimentError) -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try e.encode(value) } catch { throw .options("cannot encode JSON: \(error)") }
    }

    private func wrap(_ body: () throws(ExperimentError) -> Void) throws(TrainingError) {
        do throws(ExperimentError) { try timed(body) } catch { throw .observer("run directory: \(error)") }
    }

    private func timed(_ body: () throws(ExperimentError) -> Void) throws(ExperimentError) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { seconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        try body()
    }
}
