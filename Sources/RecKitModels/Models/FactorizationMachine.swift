import RecKitCore
import RecKitEmbeddings
import RecKitKernels

/// The factorization machine's configuration.
public struct FMConfig: ModelConfiguration, Equatable {
    public static let kind = ModelKind.fm
    public var denseCount: Int
    public var sparse: [SparseFeatureSpec]
    /// D, the factors' dimension.
    public var embeddingDim: Int
    public init(denseCount: Int, sparse: [SparseFeatureSpec], embeddingDim: Int) {
        self.denseCount = denseCount; self.sparse = sparse; self.embeddingDim = embeddingDim
    }
    public func validate() throws(ModelError) { try validateFeatures(dim: embeddingDim) }
    public var embeddingTables: [(collection: String, spec: EmbeddingTableSpec)] {
        tables(dim: 1).map { ("first_order", $0) } + tables(dim: embeddingDim).map { ("factors", $0) }
    }
    public func makeModel(initialization: ModelInitialization, sparseOptimizer: SparseOptimizerKind?,
                          quantization: QuantizedDType?, storage: (any RowStorageProvider)?) throws(ModelError) -> any CTRModel {
        try FactorizationMachine(denseCount: denseCount, sparse: sparse, factorDim: embeddingDim, initialization: initialization,
                                 sparseOptimizer: sparseOptimizer, quantization: quantization, storage: storage)
    }
}

/// Logistic regression's configuration (first-order weights only).
public struct LRConfig: ModelConfiguration, Equatable {
    public static let kind = ModelKind.lr
    public var denseCount: Int
    public var sparse: [SparseFeatureSpec]
    public init(denseCount: Int, sparse: [SparseFeatureSpec]) { self.denseCount = denseCount; self.sparse = sparse }
    public func validate() throws(ModelError) { try validateFeatures(dim: 1) }
    public var embeddingTables: [(collection: String, spec: EmbeddingTableSpec)] { tables(dim: 1).map { ("first_order", $0) } }
    public func makeModel(initialization: ModelInitialization, sparseOptimizer: SparseOptimizerKind?,
                          quantization: QuantizedDType?, storage: (any RowStorageProvider)?) throws(ModelError) -> any CTRModel {
        try FactorizationMachine(denseCount: denseCount, sparse: sparse, factorDim: nil, initialization: initialization,
                                 sparseOptimizer: sparseOptimizer, quantization: quantization, storage: storage)
    }
}

/// Logistic regression and the factorization machine (Rendle 2010) over one-hot/multi-hot fields and dense
/// features, with explicit backward.
///
///   z = b + ⟨w, x_dense⟩ + Σ_t w_t(ids_t)                          (first order; w_t: tables of dim 1)
///     + ½ Σ_d [ (Σ_t v_t,d)² − Σ_t v_t,d² ]                         (FM only; v_t = pooled factors of field t)
/// Backward: ∂z/∂w_t = 1 per id (through pooling), ∂z/∂v_t,d = S_d − v_t,d with S_d = Σ_t v_t,d.
///
/// Parameters: `linear.weight` [dense], `bias` [1], `first_order.<feature>.weight` [R, 1] (zeros at start),
/// `factors.<feature>.weight` [R, D] (FM; table t from stream `seed, 100 + t` in U(−0.01, 0.01)).
public final class FactorizationMachine: CTRModel, @unchecked Sendable {
    public let denseCountValue: Int
    public let sparse: [SparseFeatureSpec]
    /// D for FM, nil for LR.
    public let factorDim: Int?
    public let firstOrder: EmbeddingCollection
    public let factors: EmbeddingCollection?
    let denseWeight: AlignedBuffer<Float>, denseGrad: AlignedBuffer<Float>
    let bias: AlignedBuffer<Float>, biasGrad: AlignedBuffer<Float>

    public init(denseCount: Int, sparse: [SparseFeatureSpec], factorDim: Int?, initialization: ModelInitialization,
                sparseOptimizer: SparseOptimizerKind?, quantization: QuantizedDType? = nil,
                storage: (any RowStorageProvider)? = nil) throws(ModelError) {
        denseCountValue = denseCount
        self.sparse = sparse
        self.factorDim = factorDim
        let ones = sparse.map { EmbeddingTableSpec(name: $0.name, rows: $0.rows, dim: 1) }
        firstOrder = try makeCollection(prefix: "first_order", specs: ones, initialization: initialization, stream: 0,
                                        bound: { _ in 0 }, zeros: true, sparseOptimizer: sparseOptimizer, quantization: quantization, storage: storage)
        if let d = factorDim {
            let specs = sparse.map { EmbeddingTableSpec(name: $0.name, rows: $0.rows, dim: d) }
            factors = try makeCollection(prefix: "factors", specs: specs, initialization: initialization, stream: 100,
                                         bound: { _ in 0.01 }, sparseOptimizer: sparseOptimizer, quantization: quantization, storage: storage)
        } else {
            factors = nil
        }
        denseWeight = AlignedBuffer(count: denseCount)
        denseGrad = AlignedBuffer(count: denseCount)
        bias = AlignedBuffer(count: 1)
        biasGrad = AlignedBuffer(count: 1)
    }

    public var kind: ModelKind { factorDim == nil ? .lr : .fm }
    public var configuration: any ModelConfiguration {
        if let d = factorDim { return FMConfig(denseCount: denseCountValue, sparse: sparse, embeddingDim: d) }
        return LRConfig(denseCount: denseCountValue, sparse: sparse)
    }
    public var denseCount: Int { denseCountValue }
    public var embeddingCollections: [EmbeddingCollection] { [firstOrder] + (factors.map { [$0] } ?? []) }

    final class Workspace: ModelWorkspace, @unchecked Sendable {
        let linearOut: AlignedBuffer<Float>, gradLinear: AlignedBuffer<Float>   // B × T
        let factorOut: AlignedBuffer<Float>, gradFactor: AlignedBuffer<Float>   // B × T·D
        let first: EmbeddingWorkspace, second: EmbeddingWorkspace?
        override var embeddingWorkspaces: [EmbeddingWorkspace] { [first] + (second.map { [$0] } ?? []) }
        init(_ m: FactorizationMachine, maxBatch: Int) {
            let t = m.sparse.count, d = m.factorDim ?? 0
            linearOut = AlignedBuffer(count: maxBatch * t); gradLinear = AlignedBuffer(count: maxBatch * t)
            factorOut = AlignedBuffer(count: max(maxBatch * t * d, 1)); gradFactor = AlignedBuffer(count: max(maxBatch * t * d, 1))
            first = m.firstOrder.makeWorkspace()
            second = m.factors?.makeWorkspace()
            super.init(maxBatch: maxBatch, denseCount: m.denseCountValue)
        }
    }

    public func makeWorkspace(maxBatch: Int) -> ModelWorkspace { Workspace(self, maxBatch: max(maxBatch, 1)) }

    func workspace(_ w: ModelWorkspace) throws(ModelError) -> Workspace {
        guard let ws = w as? Workspace else { throw .shape("not a \(kind.rawValue) workspace") }
        return ws
    }

    public func forward(_ batch: Batch, workspace w: ModelWorkspace, mode: ForwardMode, pool: ThreadPool) throws(ModelError) {
        let ws = try workspace(w)
        try ws.begin(batch, denseCount: denseCountValue)
        ws.trainingPending = false
        let b = batch.size, t = sparse.count, d = factorDim ?? 0, dc = denseCountValue
        try embedding { () throws(EmbeddingError) in
            try firstOrder.forward(batch.sparse, deduped: batch.deduped, workspace: ws.first,
                                   output: MatrixView(base: ws.linearOut.pointer, rows: b, columns: t),
                                   columnOffsets: Array(0..<t), training: mode == .training, pool: pool)
            if let factors, let second = ws.second {
                try factors.forward(batch.sparse, deduped: batch.deduped, workspace: second,
                                    output: MatrixView(base: ws.factorOut.pointer, rows: b, columns: t * d),
                                    columnOffsets: (0..<t).map { $0 * d }, training: mode == .training, pool: pool)
            }
        }
        let dense = ws.dense.pointer, linear = ws.linearOut.pointer, wv = denseWeight.pointer
        for r in 0..<b {
            var z = bias.pointer[0]
            for j in 0..<dc { z += wv[j] * dense[r * dc + j] }
            for i in 0..<t { z += linear[r * t + i] }
            if factorDim != nil {
                let v = ws.factorOut.pointer + r * t * d
                for k in 0..<d {
                    var s: Float = 0, sq: Float = 0
                    for i in 0..<t { let x = v[i * d + k]; s += x; sq += x * x }
                    z += 0.5 * (s * s - sq)
                }
            }
            ws.logits.pointer[r] = z
        }
        ws.trainingPending = mode == .training
    }

    public func backward(workspace w: ModelWorkspace, pool: ThreadPool) throws(ModelError) {
        let ws = try workspace(w)
        guard ws.trainingPending else { throw .shape("\(kind.rawValue) backward without a training forward") }
        guard quantization == nil else { throw .embedding(.readOnly(table: sparse.first?.name ?? "first_order")) }
        let b = ws.batchSize, t = sparse.count, d = factorDim ?? 0, dc = denseCountValue
        let dense = ws.dense.pointer
        for r in 0..<b {
            let g = ws.gradLogits.pointer[r]
            biasGrad.pointer[0] += g
            for j in 0..<dc { denseGrad.pointer[j] += g * dense[r * dc + j] }
            for i in 0..<t { ws.gradLinear.pointer[r * t + i] = g }
            if factorDim != nil {
                let v = ws.factorOut.pointer + r * t * d, gv = ws.gradFactor.pointer + r * t * d
                for k in 0..<d {
                    var s: Float = 0
                    for i in 0..<t { s += v[i * d + k] }
                    for i in 0..<t { gv[i * d + k] = g * (s - v[i * d + k]) }
                }
            }
        }
    }

    public func applySparseUpdate(_ update: SparseUpdate, workspace w: ModelWorkspace, pool: ThreadPool) throws(ModelError) {
        let ws = try workspace(w)
        guard ws.trainingPending else { throw .shape("\(kind.rawValue) sparse update without a training forward") }
        ws.trainingPending = false
        let b = ws.batchSize, t = sparse.count, d = factorDim ?? 0
        try embedding { () throws(EmbeddingError) in
            try firstOrder.backward(workspace: ws.first, gradOutput: MatrixView(base: ws.gradLinear.pointer, rows: b, columns: t),
                                    columnOffsets: Array(0..<t), update: update, pool: pool)
            if let factors, let second = ws.second {
                try factors.backward(workspace: second, gradOutput: MatrixView(base: ws.gradFactor.pointer, rows: b, columns: t * d),
                                     columnOffsets: (0..<t).map { $0 * d }, update: update, pool: pool)
            }
        }
    }

    public func zeroGrad() { denseGrad.fill(0); biasGrad.fill(0) }
    public var denseParameters: [DenseParameter] {
        [DenseParameter(name: "linear.weight", shape: [denseCountValue], value: denseWeight, grad: denseGrad),
         DenseParameter(name: "bias", shape: [1], value: bias, grad: biasGrad)]
    }
    /// No MLP: always fp32 (setting bf16 is accepted and has no effect).
    public var precision: Precision {
        get { .fp32 }
        set {}
    }
}
