/// Why a checkpoint could not be written or read; always names the file, and the tensor or field when there is one.
public enum CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be opened, read or written.
    case io(path: String, reason: String)
    /// The file is not a usable checkpoint (bad header, checksum, sizes…).
    case invalid(path: String, reason: String)
    /// One tensor is missing, unexpected, mis-shaped or corrupted.
    case tensor(path: String, name: String, reason: String)
    /// A checkpoint of RecKit's first (positional) format.
    case legacyFormat(path: String)
    /// The checkpoint's model cannot be built or does not fit what the caller asked.
    case model(path: String, reason: String)

    public var description: String {
        switch self {
        case let .io(path, reason): return "checkpoint \(path): \(reason)"
        case let .invalid(path, reason): return "checkpoint \(path) is not usable: \(reason)"
        case let .tensor(path, name, reason): return "checkpoint \(path): tensor \(name): \(reason)"
        case .legacyFormat(let path):
            return "checkpoint \(path) is in RecKit's first format (positional tensors); convert it with `reckit checkpoint convert \(path) NEW.safetensors`"
        case let .model(path, reason): return "checkpoint \(path): \(reason)"
        }
    }
}
