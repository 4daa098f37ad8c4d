/// Element types of named tensors, spelled as the safetensors format spells them.
public enum TensorDType: String, Sendable, Codable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", u8 = "U8", i32 = "I32", i64 = "I64", u64 = "U64"

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .u8: return 1
        case .f16, .bf16: return 2
        case .f32, .i32: return 4
        case .i64, .u64: return 8
        }
    }
}

/// What a named tensor is for: checkpoints keep all three, federated averaging (later) only parameters.
public enum TensorRole: String, Sendable, Codable {
    /// Learned values (weights, biases, embedding rows).
    case parameter
    /// Optimizer moments and accumulators (dense Adam/Adagrad, sparse row-wise Adagrad).
    case optimizerState
    /// Anything else the model needs to run (quantized rows, vocabularies).
    case buffer
}

/// A named view of live memory: `shape` elements of `dtype` at `data`. What a model's state dict lists, checkpoints
/// write and read, and snapshots copy. The memory belongs to the owner of the state (a layer, an embedding storage,
/// an optimizer); a view is valid while that owner lives and is not resized.
///
/// Names are paths (`bottom_mlp.0.weight`, `embeddings.C1.weight`, `embeddings.C1.adagrad_sum`,
/// `optimizer.top_mlp.1.bias.exp_avg`), unique within a state dict.
///
/// A tensor larger than memory (a tiered table's rows, in a file behind a cache) has no `data`: it has a `source`
/// that reads and writes byte ranges of its row-major contents, and `byteCount` says how many bytes it holds.
/// Whoever copies state (checkpoints) streams such tensors in chunks; `data` is empty for them.
public struct StateTensor: @unchecked Sendable {
    public var name: String
    public var dtype: TensorDType
    public var shape: [Int]
    public var role: TensorRole
    /// The tensor's bytes in memory (empty when `source` holds them).
    public var data: UnsafeMutableRawBufferPointer
    /// Where the bytes are when they are not in memory.
    public var source: (any TensorDataSource)?

    public init(name: String, dtype: TensorDType, shape: [Int], role: TensorRole, data: UnsafeMutableRawBufferPointer) {
        self.name = name; self.dtype = dtype; self.shape = shape; self.role = role; self.data = data
    }

    /// A tensor whose bytes are read and written through `source`.
    public init(name: String, dtype: TensorDType, shape: [Int], role: TensorRole, source: any TensorDataSource) {
        self.init(name: name, dtype: dtype, shape: shape, role: role, data: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        self.source = source
    }

    /// Bytes of the tensor's contents (`data.count`, or the product of the shape and the element width when streamed).
    public var byteCount: Int { source == nil ? data.count : elementCount * dtype.byteWidth }

    /// A float tensor over `count` elements at `pointer`.
    public init(name: String, shape: [Int], role: TensorRole, floats pointer: UnsafeMutablePointer<Float>, count: Int) {
        self.init(name: name, dtype: .f32, shape: shape, role: role,
                  data: UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(pointer), count: count * 4))
    }

    /// A float tensor over a whole buffer.
    public init(name: String, shape: [Int], role: TensorRole, buffer: AlignedBuffer<Float>) {
        self.init(name: name, shape: shape, role: role, floats: buffer.pointer, count: buffer.count)
    }

    /// Number of elements (the product of the shape; 1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }

    /// The data as floats (`dtype` must be f32).
    public var floats: UnsafeMutableBufferPointer<Float> {
        data.bindMemory(to: Float.self)
    }
}

/// The bytes of a tensor that does not live in one memory block, read and written in byte ranges of its row-major
/// contents (offsets from 0 to the tensor's `byteCount`). Implementations make the ranges consistent with their
/// own caches (a tiered table flushes dirty rows before a read and drops cached rows a write replaces).
public protocol TensorDataSource: AnyObject, Sendable {
    /// Copies bytes `offset ..< offset + destination.count` of the tensor into `destination`.
    func read(into destination: UnsafeMutableRawBufferPointer, at offset: Int) throws(TensorIOError)
    /// Replaces bytes `offset ..< offset + bytes.count` of the tensor with `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(TensorIOError)
    /// The file the bytes are read from in place, when they are a checkpoint's own tensor (serving reads rows
    /// straight from the checkpoint: loading it must not copy the tensor onto itself). Default nil.
    var backingFile: String? { get }
}

extension TensorDataSource {
    public var backingFile: String? { nil }
}

/// A failed read or write of a streamed tensor: the file and what went wrong.
public struct TensorIOError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
