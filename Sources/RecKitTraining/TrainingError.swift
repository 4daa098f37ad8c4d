import RecKitCheckpoint
import RecKitData
import RecKitEmbeddings
import RecKitModels

/// Why training or evaluation stopped; each case names what failed.
public enum TrainingError: Error, Sendable, CustomStringConvertible {
    /// The loss became NaN or infinite: the model diverged (learning rate too high?). Nothing is saved.
    case diverged(step: Int, loss: Double)
    /// Optimizer state that does not fit the model (restored moments of another size, another kind).
    case optimizerState(String)
    /// Options that cannot work (with the option's name).
    case options(String)
    case data(DataError)
    case model(ModelError)
    case checkpoint(CheckpointError)
    /// An observer could not record the run (a run directory that cannot be written: disk full, permissions).
    case observer(String)

    public var description: String {
        switch self {
        case let .diverged(step, loss):
            return "training diverged at step \(step): the loss is \(loss) (lower the learning rates, or clip gradients with --clip-norm); no checkpoint was written"
        case .optimizerState(let s): return "optimizer state: \(s)"
        case .options(let s): return s
        case .data(let e): return e.description
        case .model(let e): return e.description
        case .checkpoint(let e): return e.description
        case .observer(let s): return s
        }
    }
}
