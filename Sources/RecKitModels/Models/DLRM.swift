import RecKitCore
import RecKitKernels

/// DLRM's architecture knobs (Naumov et al. 2019; the reference `dlrm_s_pytorch.py`).
public struct DLRMConfig: Sendable, Codable, Equatable {
    public var denseCount: Int
    public var tableSizes: [Int]
    public var embeddingDim: Int
    /// Bottom MLP hidden sizes; its input is `denseCount`, its output `embeddingDim`.
    public var bottomHidden: [Int]
    /// Top MLP hidden sizes; its input is D + P, its output 1 logit.
    public var topHidden: [Int]
    public var includeDiagonal = false
    /// DCNv2 only: cross layers (default 3), low rank r (nil = full rank), parallel instead of stacked.
    public var crossLayers: Int?
    public var crossRank: Int?
    public var crossParallel: Bool?

    /// The Criteo Kaggle reference config: dim 16, bottom 13-512-256-64-16, top 367-512-256-1.
    public static func criteoKaggle(tableSizes: [Int]) -> DLRMConfig {
        DLRMConfig(denseCount: 13, tableSizes: tableSizes, embeddingDim: 16, bottomHidden: [512, 256, 64], topHidden: [512, 256])
    }

    public init(denseCount: Int, tableSizes: [Int], embeddingDim: Int, bottomHidden: [Int], topHidden: [Int],
                includeDiagonal: Bool = false) {
        self.denseCount = denseCount; self.tableSizes = tableSizes; self.embeddingDim = embeddingDim
        self.bottomHidden = bottomHidden; self.topHidden = topHidden; self.includeDiagonal = includeDiagonal
    }

    /// F = 1 + T interacting vectors.
    public var vectorCount: Int { 1 + tableSizes.count }
    /// D + P, the top MLP's input width.
    public var interactionWidth: Int {
        let f = vectorCount
        return embeddingDim + (includeDiagonal ? f * (f + 1) / 2 : f * (f - 1) / 2)
    }
}

/// DLRM with explicit forward and backward.
///
/// Shapes (B batch, T tables, D dim, F = T + 1, P pairs):
///   dense (B × 13) → bottom MLP → features[:, 0:D]       features: B × F·D
///   sparse (T bags per sample) → tables → features[:, D(1+t) ..< D(2+t)]
///   features → dot interaction → inter (B × (D + P)) → top MLP → logits (B) → mean BCE with labels.
/// Backward: logits → top MLP (dense grads accumulate) → interaction → bottom MLP and, fused with the sparse
/// optimizer, the embedding tables (updated in place, as FBGEMM's TBE does).
public final class DLRM: @unchecked Sendable {
    public let config: DLRMConfig
    public let maxBatch: Int
    public let bottom: MLP
    public let top: MLP
    public let tables: [AlignedBuffer<Float>]
    /// Row-wise quantized copies of the tables (inference only); when set, the forward reads these.
    public private(set) var quantized: [QuantizedTable] = []
    /// Row-wise Adagrad accumulators (R floats per table); used when the sparse optimizer needs them.
    public private(set) var states: [AlignedBuffer<Float>] = []
    let features: AlignedBuffer<Float>, gradFeatures: AlignedBuffer<Float>
    let inter: AlignedBuffer<Float>, gradInter: AlignedBuffer<Float>
    let logits: AlignedBuffer<Float>, gradLogits: AlignedBuffer<Float>
    let sparseInput: SparseInput
    let workspace = EmbeddingBackwardWorkspace()
    private var batchSize = 0
    /// When set, forward/backward add each phase's wall time (seconds) to `phaseSeconds` (benchmarks).
    public var phaseClock: (@Sendable () -> Double)?
    public var phaseSeconds: [String: Double] = [:]

    @inline(__always) func timed(_ phase: String, _ body: () throws(KernelError) -> Void) throws(KernelError) {
        guard let clock = phaseClock else { return try body() }
        let t0 = clock()
        try body()
        phaseSeconds[phase, default: 0] += clock() - t0
    }

    /// Embedding rows ~ U(−√(1/R), √(1/R)) as the DLRM reference initialises them.
    /// - Parameter allocateTables: false for a model whose tables arrive quantized (`setQuantized`): the fp32 tables
    ///   are then empty, which is the point of quantizing.
    public init(config: DLRMConfig, maxBatch: Int, maxIndicesPerTable: Int, seed: UInt64, allocateTables: Bool = true) {
        self.config = config
        self.maxBatch = maxBatch
        var rng = SeededRandom(seed: seed)
        bottom = MLP(sizes: [config.denseCount] + config.bottomHidden + [config.embeddingDim], lastActivation: .relu,
                     maxBatch: maxBatch, rng: &rng)
        top = MLP(sizes: [config.interactionWidth] + config.topHidden + [1], lastActivation: .identity, maxBatch: maxBatch, rng: &rng)
        tables = allocateTables
            ? EmbeddingTables.uniform(rows: config.tableSizes, dim: config.embeddingDim, seed: seed, firstStream: 1,
                                      bound: EmbeddingTables.reciprocalSqrtBound)
            : config.tableSizes.map { _ in AlignedBuffer<Float>(count: 0) }
        let fd = config.vectorCount * config.embeddingDim
        features = AlignedBuffer(count: maxBatch * fd)
        gradFeatures = AlignedBuffer(count: maxBatch * fd)
        inter = AlignedBuffer(count: maxBatch * config.interactionWidth)
        gradInter = AlignedBuffer(count: maxBatch * config.interactionWidth)
        logits = AlignedBuffer(count: maxBatch)
        gradLogits = AlignedBuffer(count: maxBatch)
        sparseInput = SparseInput(tables: config.tableSizes.count, maxBatch: maxBatch, maxIndicesPerTable: maxIndicesPerTable)
    }

    var featureView: MatrixView {
        MatrixView(base: features.pointer, rows: batchSize, columns: config.vectorCount * config.embeddingDim)
    }
    var interactionArguments: InteractionArguments {
        InteractionArguments(features: featureView, vectorCount: config.vectorCount, dim: config.embeddingDim,
                             includeDiagonal: config.includeDiagonal)
    }
    var tableBatch: TableBatch {
        sparseInput.tableBatch(config.tableSizes.enumerated().map { EmbeddingTableView(weights: tables[$0.offset].pointer, rows: $0.element, dim: config.embeddingDim) },
                               columnOffsets: (0..<config.tableSizes.count).map { ($0 + 1) * config.embeddingDim })
    }

    /// The logits of the last forward (B).
    /// Precision of both MLPs' GEMMs (interaction, embeddings and the loss stay fp32).
    public var precision: Precision {
        get { bottom.precision }
        set { bottom.precision = newValue; top.precision = newValue }
    }
    public var lastLogits: [Float] { Array(UnsafeBufferPointer(start: logits.pointer, count: batchSize)) }

    /// Forward pass: returns the mean binary cross-entropy (labels in {0,1}).
    /// - Parameters: dense B × denseCount row-major; sparse: one key per table.
    public func forward(dense: [Float], sparse: KeyedJaggedTensor, labels: [Float], pool: ThreadPool) throws(KernelError) -> Double {
        let b = sparse.batchSize
        guard b <= maxBatch, dense.count == b * config.denseCount, labels.count == b,
              sparse.values.count == config.tableSizes.count else {
            throw .shapeMismatch("DLRM batch: \(b) samples, \(dense.count) dense values, \(labels.count) labels, \(sparse.values.count) sparse keys")
        }
        batchSize = b
        try sparseInput.load(sparse)
        let d = config.embeddingDim, fd = config.vectorCount * d
        let denseDim = config.denseCount
        let loss: Double = try dense.withUnsafeBufferPointer { (dp) throws(KernelError) -> Double in
            let x = MatrixView(base: UnsafeMutablePointer(mutating: dp.baseAddress!), rows: b, columns: denseDim)
            try timed("bottom_mlp") { () throws(KernelError) in
                try bottom.forward(x, into: MatrixView(base: features.pointer, rows: b, columns: d, rowStride: fd), pool: pool)
            }
            try timed("embedding_forward") { () throws(KernelError) in
                if quantized.isEmpty {
                    try Kernels.tableBatchForward(tableBatch, mode: .sum, output: featureView, pool: pool)
                } else {
                    for (t, q) in quantized.enumerated() {
                        try Kernels.quantizedEmbeddingBagForward(table: q, bags: sparseInput.bags(t), mode: .sum,
                                                                 output: featureView.columns((t + 1) * d, count: d), pool: pool)
                    }
                }
            }
            let interView = MatrixView(base: inter.pointer, rows: b, columns: config.interactionWidth)
            try timed("interaction") { () throws(KernelError) in try Kernels.interactionForward(interactionArguments, output: interView, pool: pool) }
            try timed("top_mlp") { () throws(KernelError) in
                try top.forward(interView, into: MatrixView(base: logits.pointer, rows: b, columns: 1), pool: pool)
            }
            return labels.withUnsafeBufferPointer { lp in
                Kernels.bceWithLogits(logits: logits.pointer, labels: lp.baseAddress!, count: b, grad: gradLogits.pointer,
                                      gradScale: 1 / Float(b)) / Double(b)
            }
        }
        return loss
    }

    /// Backward of the last forward (same batch): dense gradients accumulate into the MLPs' grad buffers; the
    /// embedding rows are updated in place by the fused sparse optimizer.
    public func backward(dense: [Float], update: SparseUpdate, pool: ThreadPool) throws(KernelError) {
        guard quantized.isEmpty else { throw .shapeMismatch("a model with quantized tables is inference-only") }
        let b = batchSize, d = config.embeddingDim, fd = config.vectorCount * d
        if update.optimizer != .sgd && states.isEmpty {
            states = config.tableSizes.map { AlignedBuffer(count: update.optimizer.stateCount(rows: $0, dim: d)) }
        }
        let interView = MatrixView(base: inter.pointer, rows: b, columns: config.interactionWidth)
        let gradInterView = MatrixView(base: gradInter.pointer, rows: b, columns: config.interactionWidth)
        let gradFeatureView = MatrixView(base: gradFeatures.pointer, rows: b, columns: fd)
        let denseDim = config.denseCount
        try timed("top_mlp_backward") { () throws(KernelError) in
            try top.backward(interView, output: MatrixView(base: logits.pointer, rows: b, columns: 1),
                             gradOutput: MatrixView(base: gradLogits.pointer, rows: b, columns: 1), gradInput: gradInterView, pool: pool)
        }
        try timed("interaction_backward") { () throws(KernelError) in
            try Kernels.interactionBackward(interactionArguments, gradOutput: gradInterView, gradFeatures: gradFeatureView, pool: pool)
        }
        try timed("bottom_mlp_backward") { () throws(KernelError) in
            try dense.withUnsafeBufferPointer { (dp) throws(KernelError) in
                let x = MatrixView(base: UnsafeMutablePointer(mutating: dp.baseAddress!), rows: b, columns: denseDim)
                try bottom.backward(x, output: MatrixView(base: features.pointer, rows: b, columns: d, rowStride: fd),
                                    gradOutput: MatrixView(base: gradFeatures.pointer, rows: b, columns: d, rowStride: fd),
                                    gradInput: nil, pool: pool)
            }
        }
        let stateBuffers = update.optimizer == .sgd
            ? config.tableSizes.map { _ in UnsafeMutableBufferPointer<Float>(start: nil, count: 0) } : states.map(\.buffer)
        try timed("embedding_backward_optimizer") { () throws(KernelError) in
            try Kernels.tableBatchBackward(tableBatch, states: stateBuffers, mode: .sum, gradOutput: gradFeatureView,
                                           update: update, workspace: workspace, pool: pool)
        }
    }

    /// Quantizes every table (the fp32 tables stay, so quality can be compared); `nil` goes back to fp32.
    public func quantize(_ dtype: QuantizedDType?) {
        guard let dtype else { quantized = []; return }
        quantized = tables.enumerated().map { t, buf in
            QuantizedTable.quantize(buf.pointer, rows: config.tableSizes[t], dim: config.embeddingDim, dtype: dtype)
        }
    }

    /// Installs quantized tables (from a checkpoint); they must match the config's shapes.
    public func setQuantized(_ q: [QuantizedTable]) throws(KernelError) {
        guard q.count == config.tableSizes.count,
              zip(q, config.tableSizes).allSatisfy({ $0.rows == $1 && $0.dim == config.embeddingDim }) else {
            throw .shapeMismatch("quantized tables do not match the model's \(config.tableSizes.count) tables of dim \(config.embeddingDim)")
        }
        quantized = q
    }

    /// Restores sparse-optimizer accumulators (from a checkpoint).
    public func restoreStates(_ values: [[Float]]) { states = values.map { AlignedBuffer($0) } }

    public func zeroGrad() { bottom.zeroGrad(); top.zeroGrad() }
    /// Packs the MLP weights once for inference; training (`backward`) drops the packed copies.
    public func prepareForInference() { bottom.prepareForInference(); top.prepareForInference() }
    /// Dense (MLP) parameters with their gradients.
    public var denseParameters: [(AlignedBuffer<Float>, AlignedBuffer<Float>)] { bottom.parameters + top.parameters }
}
