import RecKitCore
import RecKitEmbeddings
import RecKitKernels

/// DLRM with explicit forward and backward.
///
/// Shapes (B batch, T tables, D dim, F = T + 1, P pairs):
///   dense (B × denseCount) → bottom MLP → features[:, 0:D]                   features: B × F·D
///   sparse (one bag per sample and table) → embeddings → features[:, D(1+t) ..< D(2+t)]
///   features → dot interaction → inter (B × (D + P)) → top MLP → logits (B).
/// Backward: logits → top MLP (dense grads accumulate) → interaction → bottom MLP; the features' embedding columns'
/// gradient goes to the embedding collection's fused backward + sparse optimizer (`applySparseUpdate`).
///
/// Parameters: `bottom_mlp.<i>.weight|bias`, `top_mlp.<i>.weight|bias`, `embeddings.<feature>.weight` (+ optimizer
/// state). Initial values: the MLPs from `SeededRandom(seed)` (bottom, then top, layer by layer, weights before
/// biases), table t from stream `seed, 1 + t` in U(−√(1/R), √(1/R)).
public final class DLRM: CTRModel, @unchecked Sendable {
    public let config: DLRMConfig
    public let bottom: MLP
    public let top: MLP
    public let embeddings: EmbeddingCollection
    let interaction: DotInteraction

    public init(config: DLRMConfig, initialization: ModelInitialization, sparseOptimizer: SparseOptimizerKind?,
                quantization: QuantizedDType? = nil, storage: (any RowStorageProvider)? = nil) throws(ModelError) {
        try config.validate()
        self.config = config
        var rng: SeededRandom? = nil
        if case .random(let seed) = initialization { rng = SeededRandom(seed: seed) }
        bottom = MLP(sizes: [config.denseCount] + config.bottomHidden + [config.embeddingDim], lastActivation: .relu, rng: &rng,
                     name: "bottom_mlp")
        top = MLP(sizes: [config.interactionWidth] + config.topHidden + [1], lastActivation: .identity, rng: &rng, name: "top_mlp")
        embeddings = try makeCollection(prefix: "embeddings", specs: config.tables(dim: config.embeddingDim), initialization: initialization,
                                        stream: 1, bound: EmbeddingInitializer.reciprocalSqrtBound, sparseOptimizer: sparseOptimizer,
                                        quantization: quantization, storage: storage)
        interaction = DotInteraction(vectorCount: config.vectorCount, dim: config.embeddingDim, includeDiagonal: config.includeDiagonal)
    }

    public var kind: ModelKind { .dlrm }
    public var configuration: any ModelConfiguration { config }
    public var denseCount: Int { config.denseCount }
    public var embeddingCollections: [EmbeddingCollection] { [embeddings] }

    final class Workspace: ModelWorkspace, @unchecked Sendable {
        let features: AlignedBuffer<Float>, gradFeatures: AlignedBuffer<Float>   // B × F·D
        let inter: AlignedBuffer<Float>, gradInter: AlignedBuffer<Float>         // B × (D + P)
        let bottom: MLP.Activations, top: MLP.Activations
        let embedding: EmbeddingWorkspace
        override var embeddingWorkspaces: [EmbeddingWorkspace] { [embedding] }
        init(_ m: DLRM, maxBatch: Int) {
            let fd = m.config.vectorCount * m.config.embeddingDim, iw = m.config.interactionWidth
            features = AlignedBuffer(count: maxBatch * fd); gradFeatures = AlignedBuffer(count: maxBatch * fd)
            inter = AlignedBuffer(count: maxBatch * iw); gradInter = AlignedBuffer(count: maxBatch * iw)
            bottom = m.bottom.makeActivations(maxBatch: maxBatch); top = m.top.makeActivations(maxBatch: maxBatch)
            embedding = m.embeddings.makeWorkspace()
            super.init(maxBatch: maxBatch, denseCount: m.config.denseCount)
        }
    }

    public func makeWorkspace(maxBatch: Int) -> ModelWorkspace { Workspace(self, maxBatch: max(maxBatch, 1)) }

    func workspace(_ w: ModelWorkspace) throws(ModelError) -> Workspace {
        guard let ws = w as? Workspace else { throw .shape("not a DLRM workspace") }
        return ws
    }

    /// Columns of each table in the features matrix: D·(1 + t).
    var columnOffsets: [Int] { (0..<config.sparse.count).map { ($0 + 1) * config.embeddingDim } }

    public func forward(_ batch: Batch, workspace w: ModelWorkspace, mode: ForwardMode, pool: ThreadPool) throws(ModelError) {
        let ws = try workspace(w)
        try ws.begin(batch, denseCount: config.denseCount)
        ws.trainingPending = false
        let b = batch.size, d = config.embeddingDim, fd = config.vectorCount * d
        let features = MatrixView(base: ws.features.pointer, rows: b, columns: fd)
        try ws.timed("embedding_forward") { () throws(ModelError) in
            try embedding { () throws(EmbeddingError) in
                try embeddings.forward(batch.sparse, deduped: batch.deduped, workspace: ws.embedding, output: features,
                                       columnOffsets: columnOffsets, training: mode == .training, pool: pool)
            }
        }
        let x = MatrixView(base: ws.dense.pointer, rows: b, columns: config.denseCount)
        try ws.timed("bottom_mlp") { () throws(ModelError) in
            try layer("bottom_mlp") { () throws(KernelError) in
                try bottom.forward(x, into: MatrixView(base: ws.features.pointer, rows: b, columns: d, rowStride: fd), activations: ws.bottom, pool: pool)
            }
        }
        let interView = MatrixView(base: ws.inter.pointer, rows: b, columns: config.interactionWidth)
        try ws.timed("interaction") { () throws(ModelError) in
            try layer("interaction") { () throws(KernelError) in try interaction.forward(features, output: interView, pool: pool) }
        }
        try ws.timed("top_mlp") { () throws(ModelError) in
            try layer("top_mlp") { () throws(KernelError) in
                try top.forward(interView, into: MatrixView(base: ws.logits.pointer, rows: b, columns: 1), activations: ws.top, pool: pool)
            }
        }
        ws.trainingPending = mode == .training
    }

    public func backward(workspace w: ModelWorkspace, pool: ThreadPool) throws(ModelError) {
        let ws = try workspace(w)
        guard ws.trainingPending else { throw .shape("DLRM backward without a training forward") }
        guard quantization == nil else { throw .embedding(.readOnly(table: embeddings.specs.first?.name ?? "embeddings")) }
        let b = ws.batchSize, d = config.embeddingDim, fd = config.vectorCount * d
        let interView = MatrixView(base: ws.inter.pointer, rows: b, columns: config.interactionWidth)
        let gradInterView = MatrixView(base: ws.gradInter.pointer, rows: b, columns: config.interactionWidth)
        let features = MatrixView(base: ws.features.pointer, rows: b, columns: fd)
        let gradFeatures = MatrixView(base: ws.gradFeatures.pointer, rows: b, columns: fd)
        try ws.timed("top_mlp_backward") { () throws(ModelError) in
            try layer("top_mlp") { () throws(KernelError) in
                try top.backward(interView, output: MatrixView(base: ws.logits.pointer, rows: b, columns: 1),
                                 gradOutput: MatrixView(base: ws.gradLogits.pointer, rows: b, columns: 1), gradInput: gradInterView,
                                 activations: ws.top, pool: pool)
            }
        }
        try ws.timed("interaction_backward") { () throws(ModelError) in
            try layer("interaction") { () throws(KernelError) in
                try interaction.backward(features, gradOutput: gradInterView, gradFeatures: gradFeatures, pool: pool)
            }
        }
        try ws.timed("bottom_mlp_backward") { () throws(ModelError) in
            try layer("bottom_mlp") { () throws(KernelError) in
                try bottom.backward(MatrixView(base: ws.dense.pointer, rows: b, columns: config.denseCount),
                                    output: MatrixView(base: ws.features.pointer, rows: b, columns: d, rowStride: fd),
                                    gradOutput: MatrixView(base: ws.gradFeatures.pointer, rows: b, columns: d, rowStride: fd),
                                    gradInput: nil, activations: ws.bottom, pool: pool)
            }
        }
    }

    public func applySparseUpdate(_ update: SparseUpdate, workspace w: ModelWorkspace, pool: ThreadPool) throws(ModelError) {
        let ws = try workspace(w)
        guard ws.trainingPending else { throw .shape("DLRM sparse update without a training forward") }
        ws.trainingPending = false
        let b = ws.batchSize, fd = config.vectorCount * config.embeddingDim
        try ws.timed("embedding_backward_optimizer") { () throws(ModelError) in
            try embedding { () throws(EmbeddingError) in
                try embeddings.backward(workspace: ws.embedding, gradOutput: MatrixView(base: ws.gradFeatures.pointer, rows: b, columns: fd),
                                        columnOffsets: columnOffsets, update: update, pool: pool)
            }
        }
    }

    public func zeroGrad() { bottom.zeroGrad(); top.zeroGrad() }
    /// Packs the MLP weights once for inference; training (`backward`) drops the packed copies.
    public func prepareForInference() { bottom.prepareForInference(); top.prepareForInference() }
    public var precisionLayers: [Linear] { bottom.layers + top.layers }
    public var denseParameters: [DenseParameter] { bottom.parameters + top.parameters }
    /// Precision of both MLPs' GEMMs (interaction, embeddings and the loss stay fp32).
    public var precision: Precision {
        get { bottom.precision }
        set { bottom.precision = newValue; top.precision = newValue }
    }
}
