import RecKitCore
import RecKitKernels

/// A dense parameter with its gradient, named for state dicts and checkpoints.
public struct DenseParameter: @unchecked Sendable {
    /// Path name, e.g. `bottom_mlp.0.weight`.
    public let name: String
    public let shape: [Int]
    public let value: AlignedBuffer<Float>
    public let grad: AlignedBuffer<Float>

    public init(name: String, shape: [Int], value: AlignedBuffer<Float>, grad: AlignedBuffer<Float>) {
        self.name = name; self.shape = shape; self.value = value; self.grad = grad
    }

    public var stateTensor: StateTensor { StateTensor(name: name, shape: shape, role: .parameter, buffer: value) }
}

/// A fully connected layer Y = act(X·Wᵀ + b) with its gradients. W: N×K (PyTorch layout), b: N.
/// Gradients accumulate into `gradWeight`/`gradBias` until `zeroGrad()`. The layer keeps no activations: callers
/// pass the input, output and (bf16) scratch of the call, so one layer serves concurrent forwards.
public final class Linear: @unchecked Sendable {
    public let name: String
    public let inFeatures: Int, outFeatures: Int
    public let activation: Activation
    public let weight: AlignedBuffer<Float>
    public let bias: AlignedBuffer<Float>
    public let gradWeight: AlignedBuffer<Float>
    public let gradBias: AlignedBuffer<Float>
    /// The requested precision: fp32, or bf16 mixed precision for the GEMMs (fp32 master weights; see `Precision`).
    /// With bf16 requested, `plan` may keep the layer fp32 where bf16 is not faster on this CPU.
    public var precision: Precision = .fp32 { didSet { planned = [:] } }
    /// The precision the probe chose per batch-size bucket (bf16 requested only); unplanned buckets run as requested.
    private var planned: [Int: Precision] = [:]
    /// W laid out for the fp32 forward (`Kernels.packLinearWeight`) while the weights are frozen for inference;
    /// nil otherwise (the forward then packs W per call). Dropped by `backward`, the first step of any update.
    public private(set) var packedWeight: AlignedBuffer<Float>?

    /// Weights ~ U(−√(1/K), √(1/K)) (PyTorch's default for Linear), bias likewise, drawn from `rng` (W first);
    /// zeros when `rng` is nil (the values come next from a checkpoint).
    public init(_ k: Int, _ n: Int, activation: Activation, rng: inout SeededRandom?, name: String = "linear") {
        self.name = name
        inFeatures = k; outFeatures = n
        self.activation = activation
        let bound = (1 / Float(k)).squareRoot()
        weight = AlignedBuffer(count: n * k)
        bias = AlignedBuffer(count: n)
        if rng != nil {
            for i in 0..<(n * k) { weight.pointer[i] = (rng!.nextUniform() * 2 - 1) * bound }
            for i in 0..<n { bias.pointer[i] = (rng!.nextUniform() * 2 - 1) * bound }
        }
        gradWeight = AlignedBuffer(count: n * k)
        gradBias = AlignedBuffer(count: n)
    }

    /// output (B × N) = act(input (B × K) · Wᵀ + b). `scratch` holds the bf16 copies in bf16 mode.
    public func forward(_ input: MatrixView, _ output: MatrixView, scratch: BF16Scratch, pool: ThreadPool) throws(KernelError) {
        let args = LinearForwardArguments(input: input, weight: weight.pointer, bias: bias.pointer, output: output,
                                          activation: activation, packedWeight: packedWeight.map { UnsafePointer($0.pointer) })
        switch effectivePrecision(batch: input.rows) {
        case .fp32: try Kernels.linearForward(args, pool: pool)
        case .bf16: try Kernels.linearForwardBF16(args, scratch: scratch, pool: pool)
        }
    }

    /// The precision a batch of `batch` rows runs in.
    @inline(__always) public func effectivePrecision(batch: Int) -> Precision {
        precision == .fp32 ? .fp32 : planned[BF16Probe.bucket(batch)] ?? .bf16
    }

    /// With bf16 requested: asks `probe` whether bf16 beats fp32 for this layer at `batch` rows (forward, plus backward
    /// when `training`) and records the answer for that batch size. Returns the precision the layer will run in.
    @discardableResult
    public func plan(batch: Int, training: Bool, pool: ThreadPool, probe: BF16Probe = .shared) -> Precision {
        guard precision == .bf16 else { return .fp32 }
        let choice: Precision = probe.prefersBF16(m: batch, k: inFeatures, n: outFeatures, training: training, pool: pool) ? .bf16 : .fp32
        planned[BF16Probe.bucket(batch)] = choice
        return choice
    }

    /// From gradOutput (B × N, overwritten by dZ): accumulates dW, db; writes dX (B × K) when asked. `scratch` must
    /// be the forward's.
    public func backward(_ input: MatrixView, _ output: MatrixView, gradOutput: MatrixView, gradInput: MatrixView?,
                         scratch: BF16Scratch, pool: ThreadPool) throws(KernelError) {
        packedWeight = nil  // the weights are about to change
        let args = LinearBackwardArguments(
            input: input, weight: weight.pointer, output: output, gradOutput: gradOutput, gradInput: gradInput,
            gradWeight: gradWeight.pointer, gradBias: gradBias.pointer, activation: activation, accumulate: true)
        switch effectivePrecision(batch: input.rows) {
        case .fp32: try Kernels.linearBackward(args, pool: pool)
        case .bf16: try Kernels.linearBackwardBF16(args, scratch: scratch, pool: pool)
        }
    }

    public func zeroGrad() { gradWeight.fill(0); gradBias.fill(0) }

    /// `<name>.weight` [N, K] and `<name>.bias` [N].
    public var parameters: [DenseParameter] {
        [DenseParameter(name: name + ".weight", shape: [outFeatures, inFeatures], value: weight, grad: gradWeight),
         DenseParameter(name: name + ".bias", shape: [outFeatures], value: bias, grad: gradBias)]
    }

    /// Packs W once for the fp32 forward, so inference does not repack it per batch. Call again after changing
    /// the weights by any route other than training (`backward` drops the packed copy).
    public func prepareForInference() {
        packedWeight = Kernels.packLinearWeight(weight.pointer, inFeatures: inFeatures, outFeatures: outFeatures)
    }
}
