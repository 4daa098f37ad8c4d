import RecKitCore
import RecKitKernels

/// DCN-V2 (Wang et al. 2021, "DCN V2: Improved Deep & Cross Network"): x₀ = [dense ‖ e₁ ‖ … ‖ e_T] (width d),
/// cross layers x_{l+1} = x₀ ⊙ (W_l x_l + b_l) + x_l with W_l full rank (d×d) or low rank (U_l V_lᵀ, rank r),
/// and a deep MLP, either stacked (cross → deep → logit) or parallel ([cross(x₀) ‖ deep(x₀)] → linear → logit).
///
/// Backward of a cross layer with g = ∂L/∂x_{l+1}: ∂L/∂y = g ⊙ x₀, ∂L/∂x₀ += g ⊙ y, ∂L/∂x_l = g + (∂L/∂y)·W.
public final class DCNv2: @unchecked Sendable {
    public let config: DLRMConfig
    public let maxBatch: Int
    public let crossLayers: Int
    public let rank: Int?
    public let parallel: Bool
    public let tables: [AlignedBuffer<Float>]
    public private(set) var states: [AlignedBuffer<Float>] = []
    /// Per cross layer: [W] (full rank) or [V (d→r), U (r→d)].
    let cross: [[Linear]]
    let deep: MLP
    let head: Linear?
    let width: Int
    let xs: [AlignedBuffer<Float>]        // x₀ … x_L, each B × d
    let ys: [AlignedBuffer<Float>]        // y_l = W x_l + b
    let lowRank: [AlignedBuffer<Float>]   // V x_l (B × r) when low rank
    let gx: [AlignedBuffer<Float>], gy: AlignedBuffer<Float>, gLow: AlignedBuffer<Float>, gx0: AlignedBuffer<Float>
    let concat: AlignedBuffer<Float>, gConcat: AlignedBuffer<Float>
    let logits: AlignedBuffer<Float>, gradLogits: AlignedBuffer<Float>
    let deepOut: AlignedBuffer<Float>, gDeepOut: AlignedBuffer<Float>
    let sparseInput: SparseInput
    let workspace = EmbeddingBackwardWorkspace()
    private var batchSize = 0

    /// `config.topHidden` is the deep network's hidden sizes; `bottomHidden` is unused.
    public init(config: DLRMConfig, crossLayers: Int = 3, rank: Int? = nil, parallel: Bool = false, maxBatch: Int,
                maxIndicesPerTable: Int, seed: UInt64) {
        self.config = config; self.crossLayers = crossLayers; self.rank = rank; self.parallel = parallel
        self.maxBatch = maxBatch
        var rng = SeededRandom(seed: seed)
        let t = config.tableSizes.count, d = config.embeddingDim
        let w = config.denseCount + t * d
        width = w
        tables = EmbeddingTables.uniform(rows: config.tableSizes, dim: d, seed: seed, firstStream: 1,
                                         bound: EmbeddingTables.reciprocalSqrtBound)
        var layers: [[Linear]] = []
        for _ in 0..<crossLayers {
            if let r = rank {
                layers.append([Linear(w, r, activation: .identity, rng: &rng), Linear(r, w, activation: .identity, rng: &rng)])
            } else {
                layers.append([Linear(w, w, activation: .identity, rng: &rng)])
            }
        }
        cross = layers
        let hidden = config.topHidden.isEmpty ? [w] : config.topHidden
        let deepOutWidth = parallel ? hidden.last! : 1
        deep = MLP(sizes: [w] + hidden + (parallel ? [] : [1]), lastActivation: parallel ? .relu : .identity,
                   maxBatch: maxBatch, rng: &rng)
        head = parallel ? Linear(w + deepOutWidth, 1, activation: .identity, rng: &rng) : nil
        xs = (0...crossLayers).map { _ in AlignedBuffer(count: maxBatch * (config.denseCount + t * d)) }
        ys = (0..<crossLayers).map { _ in AlignedBuffer(count: maxBatch * (config.denseCount + t * d)) }
        lowRank = (0..<crossLayers).map { _ in AlignedBuffer(count: maxBatch * max(rank ?? 1, 1)) }
        gx = (0...crossLayers).map { _ in AlignedBuffer(count: maxBatch * (config.denseCount + t * d)) }
        gy = AlignedBuffer(count: maxBatch * (config.denseCount + t * d))
        gLow = AlignedBuffer(count: maxBatch * max(rank ?? 1, 1))
        gx0 = AlignedBuffer(count: maxBatch * (config.denseCount + t * d))
        concat = AlignedBuffer(count: maxBatch * (w + deepOutWidth))
        gConcat = AlignedBuffer(count: maxBatch * (w + deepOutWidth))
        deepOut = AlignedBuffer(count: maxBatch * deepOutWidth)
        gDeepOut = AlignedBuffer(count: maxBatch * deepOutWidth)
        logits = AlignedBuffer(count: maxBatch)
        gradLogits = AlignedBuffer(count: maxBatch)
        sparseInput = SparseInput(tables: t, maxBatch: maxBatch, maxIndicesPerTable: maxIndicesPerTable)
    }


    func view(_ b: AlignedBuffer<Float>, _ cols: Int) -> MatrixView { MatrixView(base: b.pointer, rows: batchSize, columns: cols) }

    var tableBatch: TableBatch {
        let t = config.tableSizes.count, d = config.embeddingDim
        return sparseInput.tableBatch(
            (0..<t).map { EmbeddingTableView(weights: tables[$0].pointer, rows: config.tableSizes[$0], dim: d) },
            columnOffsets: (0..<t).map { config.denseCount + $0 * d })
    }

    /// The cross network's output (x_L) for the current batch.
    var crossOut: AlignedBuffer<Float> { xs[crossLayers] }

    var deepOutWidth: Int { parallel ? deep.outFeatures : 1 }

    public func forward(dense: [Float], sparse: KeyedJaggedTensor, labels: [Float], pool: ThreadPool) throws(KernelError) -> Double {
        let b = sparse.batchSize, t = config.tableSizes.count, dc = config.denseCount, w = width
        guard b <= maxBatch, dense.count == b * dc, labels.count == b, sparse.values.count == t else {
            throw .shapeMismatch("dcnv2 batch: \(b) samples, \(dense.count) dense values, \(labels.count) labels")
        }
        batchSize = b
        try sparseInput.load(sparse)
        let x0 = xs[0].pointer
        for r in 0..<b { for j in 0..<dc { x0[r * w + j] = dense[r * dc + j] } }
        try Kernels.tableBatchForward(tableBatch, mode: .sum, output: view(xs[0], w), pool: pool)
        for l in 0..<crossLayers {
            if rank == nil {
                try cross[l][0].forward(view(xs[l], w), view(ys[l], w), pool: pool)
            } else {
                try cross[l][0].forward(view(xs[l], w), view(lowRank[l], rank!), pool: pool)
                try cross[l][1].forward(view(lowRank[l], rank!), view(ys[l], w), pool: pool)
            }
            let x = xs[l].pointer, y = ys[l].pointer, next = xs[l + 1].pointer
            for i in 0..<(b * w) { next[i] = x0[i] * y[i] + x[i] }
        }
        if let head {
            try deep.forward(view(xs[0], w), into: view(deepOut, deepOutWidth), pool: pool)
            let cw = w + deepOutWidth
            for r in 0..<b {
                for j in 0..<w { concat.pointer[r * cw + j] = crossOut.pointer[r * w + j] }
                for j in 0..<deepOutWidth { concat.pointer[r * cw + w + j] = deepOut.pointer[r * deepOutWidth + j] }
            }
            try head.forward(view(concat, cw), view(logits, 1), pool: pool)
        } else {
            try deep.forward(view(crossOut, w), into: view(logits, 1), pool: pool)
        }
        return labels.withUnsafeBufferPointer { lp in
            Kernels.bceWithLogits(logits: logits.pointer, labels: lp.baseAddress!, count: b, grad: gradLogits.pointer, gradScale: 1 / Float(b)) / Double(b)
        }
    }

    public func backward(dense: [Float], update: SparseUpdate, pool: ThreadPool) throws(KernelError) {
        let b = batchSize, w = width, n = b * w, d = config.embeddingDim
        if update.optimizer != .sgd && states.isEmpty {
            states = config.tableSizes.map { AlignedBuffer(count: update.optimizer.stateCount(rows: $0, dim: d)) }
        }
        gx0.pointer.update(repeating: 0, count: n)
        if let head {
            let cw = w + deepOutWidth
            try head.backward(view(concat, cw), view(logits, 1), gradOutput: view(gradLogits, 1), gradInput: view(gConcat, cw), pool: pool)
            for r in 0..<b {
                for j in 0..<w { gx[crossLayers].pointer[r * w + j] = gConcat.pointer[r * cw + j] }
                for j in 0..<deepOutWidth { gDeepOut.pointer[r * deepOutWidth + j] = gConcat.pointer[r * cw + w + j] }
            }
            try deep.backward(view(xs[0], w), output: view(deepOut, deepOutWidth), gradOutput: view(gDeepOut, deepOutWidth),
                              gradInput: view(gx0, w), pool: pool)
        } else {
            try deep.backward(view(crossOut, w), output: view(logits, 1), gradOutput: view(gradLogits, 1),
                              gradInput: view(gx[crossLayers], w), pool: pool)
        }
        let x0 = xs[0].pointer
        for l in stride(from: crossLayers - 1, through: 0, by: -1) {
            let g = gx[l + 1].pointer, y = ys[l].pointer
            for i in 0..<n {
                gy.pointer[i] = g[i] * x0[i]
                gx0.pointer[i] += g[i] * y[i]
            }
            if rank == nil {
                try cross[l][0].backward(view(xs[l], w), view(ys[l], w), gradOutput: view(gy, w), gradInput: view(gx[l], w), pool: pool)
            } else {
                try cross[l][1].backward(view(lowRank[l], rank!), view(ys[l], w), gradOutput: view(gy, w),
                                         gradInput: view(gLow, rank!), pool: pool)
                try cross[l][0].backward(view(xs[l], w), view(lowRank[l], rank!), gradOutput: view(gLow, rank!),
                                         gradInput: view(gx[l], w), pool: pool)
            }
            let gl = gx[l].pointer
            for i in 0..<n { gl[i] += g[i] }
        }
        for i in 0..<n { gx0.pointer[i] += gx[0].pointer[i] }
        let stateBuffers = update.optimizer == .sgd
            ? config.tableSizes.map { _ in UnsafeMutableBufferPointer<Float>(start: nil, count: 0) } : states.map(\.buffer)
        try Kernels.tableBatchBackward(tableBatch, states: stateBuffers, mode: .sum, gradOutput: view(gx0, w),
                                       update: update, workspace: workspace, pool: pool)
    }

    public func zeroGrad() { for c in cross { for l in c { l.zeroGrad() } }; deep.zeroGrad(); head?.zeroGrad() }
    public var denseParameters: [(AlignedBuffer<Float>, AlignedBuffer<Float>)] {
        cross.flatMap { $0.flatMap(\.parameters) } + deep.parameters + (head?.parameters ?? [])
    }
    public func restoreStates(_ values: [[Float]]) { states = values.map { AlignedBuffer($0) } }
    /// Precision of the deep tower's GEMMs (cross layers stay fp32).
    public var precision: Precision {
        get { deep.precision }
        set { deep.precision = newValue }
    }
    public var lastLogits: [Float] { Array(UnsafeBufferPointer(start: logits.pointer, count: batchSize)) }
    public var kind: String { "dcnv2" }
}

extension DCNv2: CTRModel {}
