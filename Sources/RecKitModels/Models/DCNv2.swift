import RecKitCore
import RecKitEmbeddings
import RecKitKernels

/// DCN-V2's configuration: the deep network's hidden sizes, the cross network's depth and rank, stacked or parallel.
public struct DCNv2Config: ModelConfiguration, Equatable {
    public static let kind = ModelKind.dcnv2
    public var denseCount: Int
    public var sparse: [SparseFeatureSpec]
    public var embeddingDim: Int
    /// The deep network's hidden sizes (empty: one hidden layer of width w).
    public var deepHidden: [Int]
    public var crossLayers = 3
    /// Rank of the cross layers' weights (nil = full rank).
    public var crossRank: Int?
    /// Parallel ([cross(x₀) ‖ deep(x₀)] → linear) instead of stacked (cross → deep).
    public var parallel = false

    public init(denseCount: Int, sparse: [SparseFeatureSpec], embeddingDim: Int, deepHidden: [Int], crossLayers: Int = 3,
                crossRank: Int? = nil, parallel: Bool = false) {
        self.denseCount = denseCount; self.sparse = sparse; self.embeddingDim = embeddingDim; self.deepHidden = deepHidden
        self.crossLayers = crossLayers; self.crossRank = crossRank; self.parallel = parallel
    }

    /// w = dense + T·D, the cross network's width.
    public var width: Int { denseCount + sparse.count * embeddingDim }

    public func validate() throws(ModelError) {
        try validateFeatures(dim: embeddingDim)
        try validateHidden(deepHidden, "deep network")
        guard crossLayers >= 1, crossLayers <= 64 else { throw .config("cross layers \(crossLayers) outside 1...64") }
        if let r = crossRank { guard r >= 1, r <= width else { throw .config("cross rank \(r) outside 1...\(width)") } }
        guard width <= 1 << 16 else { throw .config("cross width \(width) over 65536") }
    }

    public var embeddingTables: [(collection: String, spec: EmbeddingTableSpec)] {
        tables(dim: embeddingDim).map { ("embeddings", $0) }
    }

    public func makeModel(initialization: ModelInitialization, sparseOptimizer: SparseOptimizerKind?,
                          quantization: QuantizedDType?, storage: (any RowStorageProvider)?) throws(ModelError) -> any CTRModel {
        try DCNv2(config: self, initialization: initialization, sparseOptimizer: sparseOptimizer, quantization: quantization, storage: storage)
    }
}

/// DCN-V2 (Wang et al. 2021, "DCN V2: Improved Deep & Cross Network"): x₀ = [dense ‖ e₁ ‖ … ‖ e_T] (width w),
/// a `CrossNetwork`, and a deep MLP, either stacked (cross → deep → logit) or parallel ([cross(x₀) ‖ deep(x₀)] →
/// linear → logit).
///
/// Parameters: `cross.<l>…`, `deep.<i>.weight|bias`, `head.weight|bias` (parallel), `embeddings.<feature>.weight`.
/// Initial values: `SeededRandom(seed)` for the cross layers, then the deep network, then the head; table t from
/// stream `seed, 1 + t` in U(−√(1/R), √(1/R)).
public final class DCNv2: CTRModel, @unchecked Sendable {
    public let config: DCNv2Config
    public let cross: CrossNetwork
    public let deep: MLP
    public let head: Linear?
    public let embeddings: EmbeddingCollection

    public init(config: DCNv2Config, initialization: ModelInitialization, sparseOptimizer: SparseOptimizerKind?,
                quantization: QuantizedDType? = nil, storage: (any RowStorageProvider)? = nil) throws(ModelError) {
        try config.validate()
        self.config = config
        var rng: SeededRandom? = nil
        if case .random(let seed) = initialization { rng = SeededRandom(seed: seed) }
        let w = config.width
        embeddings = try makeCollection(prefix: "embeddings", specs: config.tables(dim: config.embeddingDim), initialization: initialization,
                                        stream: 1, bound: EmbeddingInitializer.reciprocalSqrtBound, sparseOptimizer: sparseOptimizer,
                                        quantization: quantization, storage: storage)
        cross = CrossNetwork(width: w, layers: config.crossLayers, rank: config.crossRank, rng: &rng, name: "cross")
        let hidden = config.deepHidden.isEmpty ? [w] : config.deepHidden
        deep = MLP(sizes: [w] + hidden + (config.parallel ? [] : [1]), lastActivation: config.parallel ? .relu : .identity,
                   rng: &rng, name: "deep")
        head = config.parallel ? Linear(w + hidden.last!, 1, activation: .identity, rng: &rng, name: "head") : nil
    }

    public var kind: ModelKind { .dcnv2 }
    public var configuration: any ModelConfiguration { config }
    public var denseCount: Int { config.denseCount }
    public var embeddingCollections: [EmbeddingCollection] { [embeddings] }
    var deepOutWidth: Int { config.parallel ? deep.outFeatures : 1 }

    final class Workspace: ModelWorkspace, @unchecked Sendable {
        let cross: CrossNetwork.Activations
        let deep: MLP.Activations
        let gx0: AlignedBuffer<Float>                                // ∂L/∂x₀, B × w
        let concat: AlignedBuffer<Float>, gConcat: AlignedBuffer<Float>  // parallel: B × (w + deep out)
        let deepOut: AlignedBuffer<Float>, gDeepOut: AlignedBuffer<Float>
        let headScratch = BF16Scratch()
        let embedding: EmbeddingWorkspace
        override var embeddingWorkspaces: [EmbeddingWorkspace] { [embedding] }
        init(_ m: DCNv2, maxBatch: Int) {
            let w = m.config.width, o = m.deepOutWidth
            cross = m.cross.makeActivations(maxBatch: maxBatch)
            deep = m.deep.makeActivations(maxBatch: maxBatch)
            gx0 = AlignedBuffer(count: maxBatch * w)
            concat = AlignedBuffer(count: maxBatch * (w + o)); gConcat = AlignedBuffer(count: maxBatch * (w + o))
            deepOut = AlignedBuffer(count: maxBatch * o); gDeepOut = AlignedBuffer(count: maxBatch * o)
            embedding = m.embeddings.makeWorkspace()
            super.init(maxBatch: maxBatch, denseCount: m.config.denseCount)
        }
    }

    public func makeWorkspace(maxBatch: Int) -> ModelWorkspace { Workspace(self, maxBatch: max(maxBatch, 1)) }

    func workspace(_ w: ModelWorkspace) throws(ModelError) -> Workspace {
        guard let ws = w as? Workspace else { throw .shape("not a DCNv2 workspace") }
        return ws
    }

    var columnOffsets: [Int] { (0..<config.sparse.count).map { config.denseCount + $0 * config.embeddingDim } }

    func view(_ p: UnsafeMutablePointer<Float>, _ rows: Int, _ cols: Int) -> MatrixView { MatrixView(base: p, rows: rows, columns: cols) }

    public func forward(_ batch: Batch, workspace w: ModelWorkspace, mode: ForwardMode, pool: ThreadPool) throws(ModelError) {
        let ws = try workspace(w)
        try ws.begin(batch, denseCount: config.denseCount)
        ws.trainingPending = false
        let b = batch.size, dc = config.denseCount, wd = config.width
        let x0 = ws.cross.input
        try embedding { () throws(EmbeddingError) in
            try embeddings.forward(batch.sparse, deduped: batch.deduped, workspace: ws.embedding, output: view(x0, b, wd),
                                   columnOffsets: columnOffsets, training: mode == .training, pool: pool)
        }
        for r in 0..<b { for j in 0..<dc { x0[r * wd + j] = ws.dense.pointer[r * dc + j] } }
        try layer("cross") { () throws(KernelError) in try cross.forward(batch: b, activations: ws.cross, pool: pool) }
        let o = deepOutWidth
        if let head {
            try layer("deep") { () throws(KernelError) in
                try deep.forward(view(x0, b, wd), into: view(ws.deepOut.pointer, b, o), activations: ws.deep, pool: pool)
            }
            let cw = wd + o, c = ws.concat.pointer, xl = ws.cross.output
            for r in 0..<b {
                for j in 0..<wd { c[r * cw + j] = xl[r * wd + j] }
                for j in 0..<o { c[r * cw + wd + j] = ws.deepOut.pointer[r * o + j] }
            }
            try layer("head") { () throws(KernelError) in
                try head.forward(view(c, b, cw), view(ws.logits.pointer, b, 1), scratch: ws.headScratch, pool: pool)
            }
        } else {
            try layer("deep") { () throws(KernelError) in
                try deep.forward(view(ws.cross.output, b, wd), into: view(ws.logits.pointer, b, 1), activations: ws.deep, pool: pool)
            }
        }
        ws.trainingPending = mode == .training
    }

    public func backward(workspace w: ModelWorkspace, pool: ThreadPool) throws(ModelError) {
        let ws = try workspace(w)
        guard ws.trainingPending else { throw .shape("DCNv2 backward without a training forward") }
        guard quantization == nil else { throw .embedding(.readOnly(table: embeddings.specs.first?.name ?? "embeddings")) }
        let b = ws.batchSize, wd = config.width, n = b * wd, o = deepOutWidth
        let gx0 = ws.gx0.pointer
        gx0.update(repeating: 0, count: n)
        if let head {
            let cw = wd + o
            try layer("head") { () throws(KernelError) in
                try head.backward(view(ws.concat.pointer, b, cw), view(ws.logits.pointer, b, 1), gradOutput: view(ws.gradLogits.pointer, b, 1),
                                  gradInput: view(ws.gConcat.pointer, b, cw), scratch: ws.headScratch, pool: pool)
            }
            let gc = ws.gConcat.pointer, gl = ws.cross.gradOutput
            for r in 0..<b {
                for j in 0..<wd { gl[r * wd + j] = gc[r * cw + j] }
                for j in 0..<o { ws.gDeepOut.pointer[r * o + j] = gc[r * cw + wd + j] }
            }
            try layer("deep") { () throws(KernelError) in
                try deep.backward(view(ws.cross.input, b, wd), output: view(ws.deepOut.pointer, b, o), gradOutput: view(ws.gDeepOut.pointer, b, o),
                                  gradInput: view(gx0, b, wd), activations: ws.deep, pool: pool)
            }
        } else {
            try layer("deep") { () throws(KernelError) in
                try deep.backward(view(ws.cross.output, b, wd), output: view(ws.logits.pointer, b, 1), gradOutput: view(ws.gradLogits.pointer, b, 1),
                                  gradInput: view(ws.cross.gradOutput, b, wd), activations: ws.deep, pool: pool)
            }
        }
        try layer("cross") { () throws(KernelError) in try cross.backward(batch: b, activations: ws.cross, gradInput: gx0, pool: pool) }
    }

    public func applySparseUpdate(_ update: SparseUpdate, workspace w: ModelWorkspace, pool: ThreadPool) throws(ModelError) {
        let ws = try workspace(w)
        guard ws.trainingPending else { throw .shape("DCNv2 sparse update without a training forward") }
        ws.trainingPending = false
        try embedding { () throws(EmbeddingError) in
            try embeddings.backward(workspace: ws.embedding, gradOutput: view(ws.gx0.pointer, ws.batchSize, config.width),
                                    columnOffsets: columnOffsets, update: update, pool: pool)
        }
    }

    public func zeroGrad() { cross.zeroGrad(); deep.zeroGrad(); head?.zeroGrad() }
    public var precisionLayers: [Linear] { deep.layers }
    public var denseParameters: [DenseParameter] { cross.parameters + deep.parameters + (head?.parameters ?? []) }
    /// Precision of the deep tower's GEMMs (cross layers stay fp32).
    public var precision: Precision {
        get { deep.precision }
        set { deep.precision = newValue }
    }
}
