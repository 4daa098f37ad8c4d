import RecKitCore
import RecKitData
import RecKitModels

/// How a `TrainingRun` runs as one rank of a group of processes (RecKitDistributed's hybrid parallelism): the seam
/// where a distributed trainer plugs into the single-process run without the run knowing any transport.
///
/// The run asks it to build the model (tables sharded, dense layers replicated), to take a resumed single-process
/// model's state, to wire the trainer's hooks (gradient allreduce, loss and score gathering), to give this rank its
/// share of each batch, and to write checkpoints (every rank's shards gathered into one single-process file).
public protocol TrainingDistribution: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// One line for logs: backend, world size, where the tables live.
    var summary: String { get }
    /// A model of `config` whose embedding tables are sharded across the group (same initial values as one process).
    func makeModel(_ config: any ModelConfiguration, options: TrainOptions) throws(TrainingError) -> any CTRModel
    /// Copies a whole (single-process) model's state into the sharded `model`: dense parameters, and each shard's
    /// rows, columns and optimizer state (resuming at any world size).
    func adopt(_ whole: any CTRModel, into model: any CTRModel) throws(TrainingError)
    /// Installs the trainer's hooks (dense-gradient allreduce, loss reduction, score gathering).
    func attach(_ trainer: Trainer) throws(TrainingError)
    /// This rank's share of every batch of `source`.
    func shard(_ source: any BatchSource) -> any BatchSource
    /// Every table's tensors gathered on rank 0 in the single-process layout (nil on the other ranks); a collective.
    func gatherTables(_ model: any CTRModel) throws(TrainingError) -> [StateTensor]?
    /// Ends the group after a fatal error on this rank (the others must not wait forever).
    func abort(_ error: any Error)
}
