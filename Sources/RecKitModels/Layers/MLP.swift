import RecKitCore
import RecKitKernels

/// A stack of Linear layers (ReLU between, `lastActivation` at the end), named `<name>.<i>`. Its per-call memory
/// (hidden outputs and gradients, bf16 scratch) is an `MLP.Activations`, sized for a maximum batch.
public final class MLP: @unchecked Sendable {
    public let name: String
    public let layers: [Linear]

    /// sizes = [K, H1, ..., N]; weights drawn from `rng` layer after layer (zeros when nil).
    public init(sizes: [Int], lastActivation: Activation, rng: inout SeededRandom?, name: String) {
        self.name = name
        var ls: [Linear] = []
        for i in 0..<(sizes.count - 1) {
            ls.append(Linear(sizes[i], sizes[i + 1], activation: i == sizes.count - 2 ? lastActivation : .relu, rng: &rng,
                             name: "\(name).\(i)"))
        }
        layers = ls
    }

    /// Hidden outputs and their gradients (B × H_i each, for up to `maxBatch` rows) and each layer's bf16 scratch.
    public final class Activations: @unchecked Sendable {
        public let maxBatch: Int
        let outputs: [AlignedBuffer<Float>]
        let grads: [AlignedBuffer<Float>]
        let scratch: [BF16Scratch]
        init(_ mlp: MLP, maxBatch: Int) {
            self.maxBatch = maxBatch
            outputs = mlp.layers.dropLast().map { AlignedBuffer(count: maxBatch * $0.outFeatures) }
            grads = mlp.layers.dropLast().map { AlignedBuffer(count: maxBatch * $0.outFeatures) }
            scratch = mlp.layers.map { _ in BF16Scratch() }
        }
    }

    public func makeActivations(maxBatch: Int) -> Activations { Activations(self, maxBatch: maxBatch) }

    public var inFeatures: Int { layers[0].inFeatures }
    public var outFeatures: Int { layers[layers.count - 1].outFeatures }

    private func hidden(_ a: Activations, _ i: Int, _ b: Int) -> MatrixView {
        MatrixView(base: a.outputs[i].pointer, rows: b, columns: layers[i].outFeatures)
    }

    /// output (B × N, may be strided) = MLP(input (B × K)).
    public func forward(_ input: MatrixView, into output: MatrixView, activations a: Activations, pool: ThreadPool) throws(KernelError) {
        let b = input.rows
        guard b <= a.maxBatch else { throw .shapeMismatch("batch \(b) > \(name)'s activations for \(a.maxBatch)") }
        for (i, l) in layers.enumerated() {
            let x = i == 0 ? input : hidden(a, i - 1, b)
            let y = i == layers.count - 1 ? output : hidden(a, i, b)
            try l.forward(x, y, scratch: a.scratch[i], pool: pool)
        }
    }

    /// Backward from gradOutput (B × N, overwritten); writes gradInput (B × K) when given.
    public func backward(_ input: MatrixView, output: MatrixView, gradOutput: MatrixView, gradInput: MatrixView?,
                         activations a: Activations, pool: ThreadPool) throws(KernelError) {
        let b = input.rows
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let l = layers[i]
            let x = i == 0 ? input : hidden(a, i - 1, b)
            let y = i == layers.count - 1 ? output : hidden(a, i, b)
            let gy = i == layers.count - 1 ? gradOutput : MatrixView(base: a.grads[i].pointer, rows: b, columns: l.outFeatures)
            let gx: MatrixView? = i == 0 ? gradInput : MatrixView(base: a.grads[i - 1].pointer, rows: b, columns: l.inFeatures)
            try l.backward(x, y, gradOutput: gy, gradInput: gx, scratch: a.scratch[i], pool: pool)
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
    public var parameters: [DenseParameter] { layers.flatMap(\.parameters) }
}
