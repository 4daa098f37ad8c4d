import Foundation
import RecKitModels

/// What a training run reports as it goes, for run directories, TensorBoard and tuners (`RecKitExperiments`).
///
/// The trainer calls `trained` every `Trainer.logEvery` steps (and once for a shorter last interval), `evaluated`
/// after each validation pass, and `kept` once at the end with the metrics of the parameters it keeps (the best
/// epoch under early stopping). Calls come from the training thread, between steps; an observer that throws stops
/// training with its error.
public protocol TrainingObserver: AnyObject {
    /// The effective run, before the first step.
    func started(_ start: RunStart) throws(TrainingError)
    func trained(_ record: StepRecord) throws(TrainingError)
    func evaluated(_ record: EvaluationRecord) throws(TrainingError)
    func kept(_ record: EvaluationRecord) throws(TrainingError)
}

/// The effective recipe and data of a run.
public struct RunStart: Sendable {
    public var model: ModelKind
    public var options: TrainOptions
    public var trainRows: Int
    public var validationRows: Int
    /// The shard dataset directory trained on (a temporary one for raw files).
    public var datasetDirectory: String
    /// The vocabulary minimum count asked for (`--min-count`, else the config's; nil: default). Raw input only uses it.
    public var minCount: Int?
    /// Steps already taken when resuming (0 for a fresh run).
    public var resumedStep: Int
}

/// One logged interval of training.
public struct StepRecord: Sendable, Equatable {
    /// Optimizer steps taken in all (the interval's last step).
    public var step: Int
    /// Epoch (0-based) of the interval's last step.
    public var epoch: Int
    /// Mean batch loss over the interval's steps.
    public var loss: Double
    /// Dense learning rate at the interval's last step (after warm-up and decay).
    public var learningRate: Double
    /// Samples per second over the interval (wall clock, includes data loading).
    public var samplesPerSecond: Double
    /// Seconds since training started.
    public var elapsed: Double
}

/// One validation pass.
public struct EvaluationRecord: Sendable {
    public var step: Int
    /// Epochs completed (1-based) when the pass ran.
    public var epoch: Int
    public var metrics: BinaryMetrics
    /// Mean prediction and observed click rate per decile of prediction.
    public var reliability: [ReliabilityBin]
    public var elapsed: Double
}
