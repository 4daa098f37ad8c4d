import RecKitCore
import RecKitKernels

/// A fully connected layer Y = act(X·Wᵀ + b) with its gradients. W: N×K (PyTorch layout), b: N.
/// Gradients accumulate into `gradWeight`/`gradBias` until `zeroGrad()`.
public final class Linear: @unchecked Sendable {
    public let inFeatures: Int, outFeatures: Int
    public let activation: Activation
    public let weight: AlignedBuffer<Float>
    public let bias: AlignedBuffer<Float>
    public let gradWeight: AlignedBuffer<Float>
    public let gradBias: AlignedBuffer<Float>
    /// fp32, or bf16 mixed precision for the GEMMs (fp32 master weights; see `Precision`).
    public var precision: Precision = .fp32
    /// bf16 copies of X, W and dZ kept between forward and backward in bf16 mode.
    private let bf16 = BF16Scratch()
    /// W laid out for the fp32 forward (`Kernels.packLinearWeight`) while the weights are frozen for inference;
    /// nil otherwise (the forward then packs W per call). Dropped by `backward`, the first step of any update.
    public private(set) var packedWeight: AlignedBuffer<Float>?

    /// Weights ~ U(−√(1/K), √(1/K)) (PyTorch's default for Linear), bias likewise.
    public init(_ k: Int, _ n: Int, activation: Activation, rng: inout SeededRandom) {
        inFeatures = k; outFeatures = n
        self.activation = activation
        let bound = (1 / Float(k)).squareRoot()
        weight = AlignedBuffer((0..<(n * k)).map { _ in (rng.nextUniform() * 2 - 1) * bound })
        bias = AlignedBuffer((0..<n).map { _ in (rng.nextUniform() * 2 - 1) * bound })
        gradWeight = AlignedBuffer(count: n * k)
        gradBias = AlignedBuffer(count: n)
    }

    /// output (B × N) = act(input (B × K) · Wᵀ + b).
    public func forward(_ input: MatrixView, _ output: MatrixView, pool: ThreadPool) throws(KernelError) {
        let args = LinearForwardArguments(input: input, weight: weight.pointer, bias: bias.pointer, output: output,
                                          activation: activation, packedWeight: packedWeight.map { UnsafePointer($0.pointer) })
        switch precision {
        case .fp32: try Kernels.linearForward(args, pool: pool)
        case .bf16: try Kernels.linearForwardBF16(args, scratch: bf16, pool: pool)
        }
    }

    /// From gradOutput (B × N, overwritten by dZ): accumulates dW, db; writes dX (B × K) when asked.
    public func backward(_ input: MatrixView, _ output: MatrixView, gradOutput: MatrixView, gradInput: MatrixView?,
                         pool: ThreadPool) throws(KernelError) {
        packedWeight = nil  // the weights are about to change
        let args = LinearBackwardArguments(
            input: input, weight: weight.pointer, output: output, gradOutput: gradOutput, gradInput: gradInput,
            gradWeight: gradWeight.pointer, gradBias: gradBias.pointer, activation: activation, accumulate: true)
        switch precision {
        case .fp32: try Kernels.linearBackward(args, pool: pool)
        case .bf16: try Kernels.linearBackwardBF16(args, scratch: bf16, pool: pool)
        }
    }

    public func zeroGrad() { gradWeight.fill(0); gradBias.fill(0) }
    public var parameters: [(AlignedBuffer<Float>, AlignedBuffer<Float>)] { [(weight, gradWeight), (bias, gradBias)] }

    /// Packs W once for the fp32 forward, so inference does not repack it per batch. Call again after changing
    /// the weights by any route other than training (`backward` drops the packed copy; a checkpoint loads into a
    /// new model).
    public func prepareForInference() {
        packedWeight = Kernels.packLinearWeight(weight.pointer, inFeatures: inFeatures, outFeatures: outFeatures)
    }
}

/// A stack of Linear layers (ReLU between, `lastActivation` at the end) with activations preallocated for up to
/// `maxBatch` rows, reused every step.
public final class MLP: @unchecked Sendable {
    public let layers: [Linear]
    public let maxBatch: Int
    private let outputs: [AlignedBuffer<Float>]
    private let grads: [AlignedBuffer<Float>]

    /// sizes = [K, H1, ..., N].
    public init(sizes: [Int], lastActivation: Activation, maxBatch: Int, rng: inout SeededRandom) {
        var ls: [Linear] = []
        for i in 0..<(sizes.count - 1) {
            ls.append(Linear(sizes[i], sizes[i + 1], activation: i == sizes.count - 2 ? lastActivation : .relu, rng: &rng))
        }
        layers = ls
        self.maxBatch = maxBatch
        outputs = ls.dropLast().map { AlignedBuffer(count: maxBatch * $0.outFeatures) }
        grads = ls.dropLast().map { AlignedBuffer(count: maxBatch * $0.outFeatures) }
    }

    public var inFeatures: Int { layers[0].inFeatures }
    public var outFeatures: Int { layers[layers.count - 1].outFeatures }

    private func hidden(_ i: Int, _ b: Int) -> MatrixView {
        MatrixView(base: outputs[i].pointer, rows: b, columns: layers[i].outFeatures)
    }

    /// output (B × N, may be strided) = MLP(input (B × K)).
    public func forward(_ input: MatrixView, into output: MatrixView, pool: ThreadPool) throws(KernelError) {
        let b = input.rows
        guard b <= maxBatch else { throw .shapeMismatch("batch \(b) > MLP maxBatch \(maxBatch)") }
        for (i, l) in layers.enumerated() {
            let x = i == 0 ? input : hidden(i - 1, b)
            let y = i == layers.count - 1 ? output : hidden(i, b)
            try l.forward(x, y, pool: pool)
        }
    }

    /// Backward from gradOutput (B × N, overwritten); writes gradInput (B × K) when given.
    public func backward(_ input: MatrixView, output: MatrixView, gradOutput: MatrixView, gradInput: MatrixView?,
                         pool: ThreadPool) throws(KernelError) {
        let b = input.rows
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let l = layers[i]
            let x = i == 0 ? input : hidden(i - 1, b)
            let y = i == layers.count - 1 ? output : hidden(i, b)
            let gy = i == layers.count - 1 ? gradOutput : MatrixView(base: grads[i].pointer, rows: b, columns: l.outFeatures)
            let gx: MatrixView? = i == 0 ? gradInput : MatrixView(base: grads[i - 1].pointer, rows: b, columns: l.inFeatures)
            try l.backward(x, y, gradOutput: gy, gradInput: gx, pool: pool)
        }
    }

    public func zeroGrad() { for l in layers { l.zeroGrad() } }
    /// Packs every layer's weights once for inference (`Linear.prepareForInference`).
    public func prepareForInference() { for l in layers { l.prepareForInference() } }
    /// Precision of every layer's GEMMs.
    public var precision: Precision {
        get { layers[0].precision }
        set { for l in layers { l.precision = newValue } }
    }
    public var parameters: [(AlignedBuffer<Float>, AlignedBuffer<Float>)] { layers.flatMap(\.parameters) }
}
