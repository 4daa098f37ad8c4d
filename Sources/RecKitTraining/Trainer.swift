import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels

/// The named phases of a training step, in order, and evaluation.
public enum TrainingPhase: String, Sendable, CaseIterable {
    /// Embedding lookups and the dense network: logits, then the loss and its gradient.
    case forward
    /// Dense gradients (accumulated into the parameters' grads) and the pooled embeddings' gradient.
    case backward
    /// Every dense gradient is final: where a distributed trainer all-reduces them (`Trainer.denseGradientsReady`).
    case denseGradientsReady
    /// The fused embedding backward + sparse optimizer on the rows the batch touched.
    case sparseUpdate
    /// Gradient clipping and the dense optimizer.
    case denseUpdate
    /// Metrics on a validation source.
    case evaluate
}

/// Trains a `CTRModel` step by step: `step(_:)` runs one batch through the phases of `TrainingPhase`; `fit` runs epochs
/// over a `BatchSource` with the learning-rate schedule, progress, early stopping on a validation source and exact
/// resumption from `position`.
///
/// The trainer owns one workspace (batches up to `options.batchSize`) and uses the thread pool it is given for every
/// kernel. A step changes the model's parameters in place; a loss that is not finite stops with
/// `TrainingError.diverged` before any update from it.
public final class Trainer {
    public let model: any CTRModel
    public let optimizer: DenseOptimizer
    public let options: TrainOptions
    public let pool: ThreadPool
    public let workspace: ModelWorkspace
    /// Where training stands (steps taken, epoch, rows of it done).
    public private(set) var position: TrainPosition
    /// Runs when the dense gradients of a step are complete, before clipping and any update: the hook where a
    /// distributed trainer all-reduces them. It may change the gradients in place.
    public var denseGradientsReady: (([DenseParameter]) throws(TrainingError) -> Void)?
    /// Runs before clipping and the dense optimizer: where an allreduce started by `denseGradientsReady` (and
    /// overlapped with the sparse update) is waited for.
    public var beforeDenseUpdate: (([DenseParameter]) throws(TrainingError) -> Void)?
    /// Turns this process's share of a step's mean loss into the step's loss (a distributed trainer sums the ranks').
    public var reduceLoss: ((Double) throws(TrainingError) -> Double)?
    /// Turns this process's validation scores into the whole validation set's, in sample order (a distributed
    /// trainer gathers every rank's share), before metrics are computed.
    public var gatherScores: ((_ logits: [Float], _ labels: [Float]) throws(TrainingError) -> (logits: [Float], labels: [Float]))?
    /// Seconds spent per phase since the trainer was made (or `resetPhaseTimes`).
    public private(set) var phaseSeconds: [TrainingPhase: Double] = [:]
    /// Time every phase (off by default: two clock reads per phase).
    public var timesPhases = false
    /// With bf16 requested: each MLP layer's precision, chosen by a probe on this CPU (bf16 only where it is faster).
    public let precisionPlan: [(layer: String, shape: String, precision: Precision)]
    /// Early-stopping snapshots written so far (each spilled to a file, removed at the end).
    public private(set) var snapshotsWritten = 0
    /// Receives logged intervals and validation passes (run directories, TensorBoard, tuners).
    public var observer: (any TrainingObserver)?
    /// Steps per logged interval (nil: about 50 intervals per epoch).
    public var logEvery: Int?

    public init(model: any CTRModel, optimizer: DenseOptimizer, options: TrainOptions, pool: ThreadPool,
                position: TrainPosition = TrainPosition()) throws(TrainingError) {
        guard model.sparseOptimizer == options.sparseOptimizer || (options.sparseOptimizer == .sgd && model.sparseOptimizer == nil) else {
            throw .options("the model's embedding rows keep \(model.sparseOptimizer?.rawValue ?? "no") optimizer state, the options ask for \(options.sparseOptimizer.rawValue)")
        }
        guard optimizer.kind == options.denseOptimizer else {
            throw .options("the dense optimizer is \(optimizer.kind.rawValue), the options ask for \(options.denseOptimizer.rawValue)")
        }
        self.model = model
        self.optimizer = optimizer
        self.options = options
        self.pool = pool
        self.position = position
        model.precision = options.precision
        precisionPlan = options.precision == .bf16 ? model.planPrecision(batch: options.batchSize, training: true, pool: pool) : []
        workspace = model.makeWorkspace(maxBatch: options.batchSize)
        try optimizer.prepare(model.denseParameters)
    }

    public func resetPhaseTimes() { phaseSeconds = [:] }

    @inline(__always) func phase<T>(_ p: TrainingPhase, _ body: () throws(TrainingError) -> T) throws(TrainingError) -> T {
        guard timesPhases else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { phaseSeconds[p, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        return try body()
    }

    /// Warm-up then per-epoch decay: min(1, (step+1)/warmup) · decay^epoch.
    public static func learningRateScale(step: Int, epoch: Int, options o: TrainOptions) -> Float {
        let warm: Float = o.warmupSteps > 0 ? min(1, Float(step + 1) / Float(o.warmupSteps)) : 1
        return warm * Float(pow(Double(o.lrDecayPerEpoch), Double(epoch)))
    }

    /// One optimizer step on `batch` (which must carry labels) in epoch `epoch`; returns the batch's mean loss.
    /// `next`, the batch that will follow, lets storages that keep rows elsewhere (tiered tables) fetch its rows
    /// while this one computes.
    @discardableResult
    public func step(_ batch: Batch, epoch: Int, next: Batch? = nil) throws(TrainingError) -> Double {
        let local = try phase(.forward) { () throws(TrainingError) -> Double in
            do throws(ModelError) {
                try model.forward(batch, workspace: workspace, mode: .training, pool: pool)
                if let next { model.prefetch(next) }
                return try BinaryCrossEntropy.loss(workspace, labels: batch.labels, meanOver: batch.globalSize ?? batch.size)
            } catch { throw .model(error) }
        }
        let loss = try reduceLoss?(local) ?? local
        guard loss.isFinite else { throw .diverged(step: position.step + 1, loss: loss) }
        try phase(.backward) { () throws(TrainingError) in
            model.zeroGrad()
            do throws(ModelError) { try model.backward(workspace: workspace, pool: pool) } catch { throw .model(error) }
        }
        let params = model.denseParameters
        try phase(.denseGradientsReady) { () throws(TrainingError) in try denseGradientsReady?(params) }
        let scale = Self.learningRateScale(step: position.step, epoch: epoch, options: options)
        try phase(.sparseUpdate) { () throws(TrainingError) in
            let update = SparseUpdate(optimizer: options.sparseOptimizer, learningRate: options.sparseLearningRate * scale,
                                      weightDecay: options.embeddingL2)
            do throws(ModelError) { try model.applySparseUpdate(update, workspace: workspace, pool: pool) } catch { throw .model(error) }
        }
        try phase(.denseUpdate) { () throws(TrainingError) in
            try beforeDenseUpdate?(params)
            if let c = options.clipNorm { Self.clip(params, maxNorm: c) }
            try optimizer.apply(params, lr: options.learningRate * scale, pool: pool)
        }
        position.step += 1
        return loss
    }

    /// Scales all gradients so their global L2 norm is at most `maxNorm`.
    public static func clip(_ params: [DenseParameter], maxNorm: Float) {
        var sq: Double = 0
        for p in params { let g = p.grad; for i in 0..<g.count { sq += Double(g.pointer[i]) * Double(g.pointer[i]) } }
        let norm = Float(sq.squareRoot())
        guard norm > maxNorm, norm > 0 else { return }
        let s = maxNorm / norm
        for p in params { let g = p.grad; for i in 0..<g.count { g.pointer[i] *= s } }
    }

    /// Metrics of the model on every batch of `source` (inference, no update).
    public func evaluate(_ source: any BatchSource) throws(TrainingError) -> BinaryMetrics {
        try phase(.evaluate) { () throws(TrainingError) -> BinaryMetrics in
            let (z, y) = try scores(source)
            return try Evaluation.metrics(logits: z, labels: y)
        }
    }

    /// Logits and labels of every sample of `source` (every rank's, in order, when distributed).
    func scores(_ source: any BatchSource) throws(TrainingError) -> (logits: [Float], labels: [Float]) {
        let (z, y) = try Evaluation.logits(model, source, workspace: workspace, pool: pool)
        return try gatherScores?(z, y) ?? (z, y)
    }

    /// Metrics and the reliability deciles of the model on `source`, from one scoring pass.
    func validate(_ source: any BatchSource, epoch: Int, since t0: Date) throws(TrainingError) -> EvaluationRecord {
        try phase(.evaluate) { () throws(TrainingError) -> EvaluationRecord in
            let (z, y) = try scores(source)
            guard y.count == z.count else { throw .options("the validation data has no labels") }
            return EvaluationRecord(step: position.step, epoch: epoch, metrics: BinaryMetrics.compute(logits: z, labels: y),
                                    reliability: observer == nil ? [] : ReliabilityBin.quantiles(logits: z, labels: y),
                                    elapsed: Date().timeIntervalSince(t0))
        }
    }

    /// Trains from `position` to the end of `options.epochs` (or `options.maxSteps` steps in all) on `train`,
    /// evaluating on `validation` after each epoch when early stopping is on and at the end.
    ///
    /// Early stopping keeps the best epoch's parameters: when an epoch is the best so far and another one follows,
    /// the model's state is written to a checkpoint file in `snapshotDirectory` (not kept in RAM), and restored at the
    /// end if a later epoch did worse.
    ///
    /// `checkpoint`, when given, is called after every `checkpointEvery`-th step with the position reached and the rows
    /// trained so far (periodic checkpoints: a run killed at any moment resumes from the last one).
    public func fit(train: any BatchSource, validation: (any BatchSource)?, snapshotDirectory: String? = nil,
                    checkpointEvery: Int? = nil, checkpoint: ((TrainPosition, Int) throws(TrainingError) -> Void)? = nil,
                    progress: ((TrainProgress) -> Void)? = nil) throws(TrainingError) -> TrainReport {
        let o = options
        let t0 = Date()
        var seen = 0
        var lastLoss: Double?
        var lastReport = Date.distantPast
        var best: (auc: Double, epoch: Int, record: EvaluationRecord, snapshot: String?)?
        var epochsRun = 0
        var stopped = false
        defer { if let s = best?.snapshot { unlink(s) } }
        let validating = (validation?.rowCount ?? 0) > 0
        let every = max(1, logEvery ?? train.rowCount / max(o.batchSize, 1) / 50)
        var interval = (loss: 0.0, steps: 0, rows: 0, start: t0)
        let flushInterval = { [self] (epoch: Int) throws(TrainingError) in
            guard let observer, interval.steps > 0 else { return }
            let now = Date()
            let lr = Double(o.learningRate * Self.learningRateScale(step: position.step - 1, epoch: epoch, options: o))
            try observer.trained(StepRecord(step: position.step, epoch: epoch, loss: interval.loss / Double(interval.steps), learningRate: lr,
                                            samplesPerSecond: Double(interval.rows) / max(now.timeIntervalSince(interval.start), 1e-9),
                                            elapsed: now.timeIntervalSince(t0)))
            interval = (0, 0, 0, now)
        }
        for epoch in position.epoch..<max(position.epoch, o.epochs) {
            epochsRun = epoch + 1
            let stream = try train.batches(epoch: epoch, skip: epoch == position.epoch ? position.rowInEpoch : 0)
            if epoch != position.epoch || position.rowInEpoch == 0 { position.epoch = epoch; position.rowInEpoch = 0 }
            var upcoming = try stream.next()
            while let batch = upcoming {
                if let m = o.maxSteps, position.step >= m { stopped = true; break }
                upcoming = try stream.next()
                // A rank's share of a global batch may be empty: it still takes part in the step's collectives.
                let rows = batch.globalSize ?? batch.size
                guard rows > 0 else { continue }
                let loss = try step(batch, epoch: epoch, next: upcoming)
                lastLoss = loss
                seen += rows
                interval.loss += loss; interval.steps += 1; interval.rows += rows
                if position.step % every == 0 { try flushInterval(epoch) }
                position.epoch = epoch
                position.rowInEpoch += rows
                if let every = checkpointEvery, every > 0, position.step % every == 0, let checkpoint { try checkpoint(position, seen) }
                if let progress, Date().timeIntervalSince(lastReport) > 2 {
                    lastReport = Date()
                    progress(TrainProgress(epoch: epoch, step: position.step, rows: seen, totalRows: train.rowCount * o.epochs,
                                           loss: lastLoss ?? .nan, samplesPerSecond: Double(seen) / Date().timeIntervalSince(t0)))
                }
            }
            try flushInterval(epoch)
            if stopped { break }
            position.epoch = epoch + 1
            position.rowInEpoch = 0
            if validating, let validation, o.earlyStoppingPatience > 0 {
                let record = try validate(validation, epoch: epoch + 1, since: t0)
                try observer?.evaluated(record)
                let auc = record.metrics.auc ?? 0
                if best == nil || auc > best!.auc {
                    if let s = best?.snapshot { unlink(s) }
                    let another = epoch + 1 < o.epochs && (o.maxSteps.map { position.step < $0 } ?? true)
                    best = (auc, epoch + 1, record, another ? try snapshot(in: snapshotDirectory) : nil)
                } else if epoch + 1 - best!.epoch >= o.earlyStoppingPatience {
                    break
                }
            }
        }
        let seconds = Date().timeIntervalSince(t0)
        if let best, best.epoch != epochsRun, let path = best.snapshot { try restore(path) }
        // The kept epoch was already evaluated; evaluate only when early stopping did not run.
        var kept = best?.record
        if kept == nil, validating, let validation {
            kept = try validate(validation, epoch: epochsRun, since: t0)
            try observer?.evaluated(kept!)
        }
        if let kept { try observer?.kept(kept) }
        let validationMetrics = kept?.metrics
        return TrainReport(rowsTrained: seen, steps: position.step, seconds: seconds, samplesPerSecond: Double(seen) / max(seconds, 1e-9),
                           finalLoss: lastLoss, validation: validationMetrics, checkpoint: nil, epochs: epochsRun,
                           bestEpoch: best?.epoch ?? epochsRun, position: position, seed: o.seed,
                           denseOptimizer: o.denseOptimizer.rawValue, sparseOptimizer: o.sparseOptimizer.rawValue)
    }

    /// Writes the model's state (parameters and sparse optimizer state) to a fresh file; returns its path.
    func snapshot(in directory: String?) throws(TrainingError) -> String {
        let dir = directory ?? NSTemporaryDirectory()
        var template = Array((dir + "/reckit-best-epoch-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw .options("cannot create the early-stopping snapshot in \(dir): \(String(cString: strerror(errno)))") }
        close(fd)
        snapshotsWritten += 1
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let meta = CheckpointMetadata(model: model.kind, config: model.configuration.encodedJSON(), schema: nil, denseOptimizer: nil,
                                      sparseOptimizer: nil, step: position.step, seed: options.seed, rowsSeen: 0)
        do throws(CheckpointError) { try Checkpoint.write(model.stateTensors(), metadata: meta, to: path) } catch {
            unlink(path)
            throw .checkpoint(error)
        }
        return path
    }

    func restore(_ path: String) throws(TrainingError) {
        do throws(CheckpointError) { try Checkpoint.open(path).read(into: model.stateTensors()) { _ in false } } catch { throw .checkpoint(error) }
    }
}
