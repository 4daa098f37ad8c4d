import RecKitCore
import RecKitKernels

/// DCN-V2's cross network (Wang et al. 2021): x_{l+1} = x₀ ⊙ (W_l x_l + b_l) + x_l over L layers of width w, with
/// W_l full rank (w × w, `<name>.<l>.weight|bias`) or low rank U_l V_lᵀ (`<name>.<l>.down` w → r and `.up` r → w).
///
/// Backward with g = ∂L/∂x_{l+1}: ∂L/∂y_l = g ⊙ x₀, ∂L/∂x₀ += g ⊙ y_l, ∂L/∂x_l = g + (∂L/∂y_l)·W_l.
public final class CrossNetwork: @unchecked Sendable {
    public let width: Int
    public let rank: Int?
    /// Per layer: [W] (full rank) or [V (w→r), U (r→w)].
    public let layers: [[Linear]]

    public init(width: Int, layers count: Int, rank: Int?, rng: inout SeededRandom?, name: String) {
        self.width = width; self.rank = rank
        var ls: [[Linear]] = []
        for l in 0..<count {
            if let r = rank {
                ls.append([Linear(width, r, activation: .identity, rng: &rng, name: "\(name).\(l).down"),
                           Linear(r, width, activation: .identity, rng: &rng, name: "\(name).\(l).up")])
            } else {
                ls.append([Linear(width, width, activation: .identity, rng: &rng, name: "\(name).\(l)")])
            }
        }
        layers = ls
    }

    /// x₀ … x_L, y_l, V x_l and their gradients for up to `maxBatch` rows.
    public final class Activations: @unchecked Sendable {
        let xs: [AlignedBuffer<Float>], ys: [AlignedBuffer<Float>], low: [AlignedBuffer<Float>]
        let gx: [AlignedBuffer<Float>], gy: AlignedBuffer<Float>, gLow: AlignedBuffer<Float>
        let scratch: [[BF16Scratch]]
        init(_ c: CrossNetwork, maxBatch: Int) {
            let n = maxBatch * c.width, r = maxBatch * max(c.rank ?? 1, 1), l = c.layers.count
            xs = (0...l).map { _ in AlignedBuffer(count: n) }; ys = (0..<l).map { _ in AlignedBuffer(count: n) }
            low = (0..<l).map { _ in AlignedBuffer(count: r) }; gx = (0...l).map { _ in AlignedBuffer(count: n) }
            gy = AlignedBuffer(count: n); gLow = AlignedBuffer(count: r)
            scratch = c.layers.map { $0.map { _ in BF16Scratch() } }
        }
        /// x₀ (B × w): the caller writes the network's input here.
        public var input: UnsafeMutablePointer<Float> { xs[0].pointer }
        /// x_L, the output.
        public var output: UnsafeMutablePointer<Float> { xs[xs.count - 1].pointer }
        /// ∂L/∂x_L: the caller writes the output's gradient here before `backward`.
        public var gradOutput: UnsafeMutablePointer<Float> { gx[gx.count - 1].pointer }
    }

    public func makeActivations(maxBatch: Int) -> Activations { Activations(self, maxBatch: maxBatch) }

    func view(_ b: AlignedBuffer<Float>, _ rows: Int, _ cols: Int) -> MatrixView { MatrixView(base: b.pointer, rows: rows, columns: cols) }

    /// x_1 … x_L from x₀ (`a.input`, B rows).
    public func forward(batch b: Int, activations a: Activations, pool: ThreadPool) throws(KernelError) {
        let w = width, x0 = a.xs[0].pointer
        for l in 0..<layers.count {
            if let r = rank {
                try layers[l][0].forward(view(a.xs[l], b, w), view(a.low[l], b, r), scratch: a.scratch[l][0], pool: pool)
                try layers[l][1].forward(view(a.low[l], b, r), view(a.ys[l], b, w), scratch: a.scratch[l][1], pool: pool)
            } else {
                try layers[l][0].forward(view(a.xs[l], b, w), view(a.ys[l], b, w), scratch: a.scratch[l][0], pool: pool)
            }
            let x = a.xs[l].pointer, y = a.ys[l].pointer, next = a.xs[l + 1].pointer
            for i in 0..<(b * w) { next[i] = x0[i] * y[i] + x[i] }
        }
    }

    /// From ∂L/∂x_L (`a.gradOutput`): weight gradients accumulate; ∂L/∂x₀ is added into `gradInput` (B × w) —
    /// first g ⊙ y_l for l = L−1 … 0, then the gradient that flowed through the x_l chain.
    public func backward(batch b: Int, activations a: Activations, gradInput gx0: UnsafeMutablePointer<Float>,
                         pool: ThreadPool) throws(KernelError) {
        let w = width, n = b * w, x0 = a.xs[0].pointer
        for l in stride(from: layers.count - 1, through: 0, by: -1) {
            let g = a.gx[l + 1].pointer, y = a.ys[l].pointer
            for i in 0..<n {
                a.gy.pointer[i] = g[i] * x0[i]
                gx0[i] += g[i] * y[i]
            }
            if let r = rank {
                try layers[l][1].backward(view(a.low[l], b, r), view(a.ys[l], b, w), gradOutput: view(a.gy, b, w),
                                          gradInput: view(a.gLow, b, r), scratch: a.scratch[l][1], pool: pool)
                try layers[l][0].backward(view(a.xs[l], b, w), view(a.low[l], b, r), gradOutput: view(a.gLow, b, r),
                                          gradInput: view(a.gx[l], b, w), scratch: a.scratch[l][0], pool: pool)
            } else {
                try layers[l][0].backward(view(a.xs[l], b, w), view(a.ys[l], b, w), gradOutput: view(a.gy, b, w),
                                          gradInput: view(a.gx[l], b, w), scratch: a.scratch[l][0], pool: pool)
            }
            let gl = a.gx[l].pointer
            for i in 0..<n { gl[i] += g[i] }
        }
        for i in 0..<n { gx0[i] += a.gx[0].pointer[i] }
    }

    public func zeroGrad() { for c in layers { for l in c { l.zeroGrad() } } }
    public var parameters: [DenseParameter] { layers.flatMap { $0.flatMap(\.parameters) } }
}
