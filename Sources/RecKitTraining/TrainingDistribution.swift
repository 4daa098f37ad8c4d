import RecKitCheckpoint
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels

/// How a `TrainingRun` runs as one rank of a group of processes (RecKitDistributed's hybrid parallelism): the seam
/// where a distributed trainer plugs into the single-process run without the run knowing any transport.
///
/// The run asks it to build the model (tables sharded, dense layers replicated), to take a resumed single-process
/// model's state, to wire the trainer's hooks (gradient allreduce, loss and score gathering), to give this rank its
/// share of each batch, and to write checkpoints (one single-process file, each rank writing its shards into it).
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
    /// Every table's tensors as a single-process checkpoint names and shapes them, their bytes written by the shards'
    /// owners (`ExternalTensorBytes` sources); the same list on every rank.
    func checkpointTables(_ model: any CTRModel) -> [StateTensor]
    /// A collective: every rank writes its shards into the checkpoint rank 0 is writing. Rank 0 passes the
    /// temporary file and the tables' absolute offsets (`SafeTensors.write`'s hand-off), or the error that stopped
    /// it first; the others pass nil and receive them. Returns once every rank's shards are written and synced;
    /// throws on every rank when any failed.
    func writeShards(_ target: Result<(path: String, offsets: [String: Int]), CheckpointError>?, optimizer: SparseOptimizerKind?) throws(TrainingError)
    /// A collective after rank 0 renamed the file into place (`ok`) or failed to: the others learn which.
    func checkpointCommitted(_ ok: Bool) throws(TrainingError)
    /// Ends the group after a fatal error on this rank (the others must not wait forever).
    func abort(_ error: any Error)
}
