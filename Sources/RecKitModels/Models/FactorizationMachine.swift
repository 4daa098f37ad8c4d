import RecKitCore
import RecKitKernels

/// Logistic regression and the factorization machine (Rendle 2010) over one-hot/multi-hot fields and dense
/// features, with explicit backward.
///
///   z = b + ⟨w, x_dense⟩ + Σ_t w_t(ids_t)                          (first order; w_t: tables of dim 1)
///     + ½ Σ_d [ (Σ_t v_t,d)² − Σ_t v_t,d² ]                         (FM only; v_t = pooled embedding of field t)
/// Backward: ∂z/∂w_t = 1 per id (through pooling), ∂z/∂v_t,d = S_d − v_t,d with S_d = Σ_t v_t,d.
/// Table layout: tables[0..<T] are the first-order weights (dim 1), tables[T..<2T] the FM factors (dim D).
public final class FactorizationMachine: @unchecked Sendable {
    public let config: DLRMConfig
    public let maxBatch: Int
    public let secondOrder: Bool
    public let tables: [AlignedBuffer<Float>]
    public private(set) var states: [AlignedBuffer<Float>] = []
    let denseWeight: AlignedBuffer<Float>, denseGrad: AlignedBuffer<Float>
    let bias: AlignedBuffer<Float>, biasGrad: AlignedBuffer<Float>
    let linearOut: AlignedBuffer<Float>, factorOut: AlignedBuffer<Float>
    let gradLinear: AlignedBuffer<Float>, gradFactor: AlignedBuffer<Float>
    let logits: AlignedBuffer<Float>, gradLogits: AlignedBuffer<Float>
    let sparseInput: SparseInput
    let workspace = EmbeddingBackwardWorkspace()
    var denseInput: [Float] = []
    private var batchSize = 0

    public init(config: DLRMConfig, secondOrder: Bool, maxBatch: Int, maxIndicesPerTable: Int, seed: UInt64) {
        self.config = config
        self.secondOrder = secondOrder
        self.maxBatch = maxBatch
        let t = config.tableSizes.count, d = config.embeddingDim
        var all: [AlignedBuffer<Float>] = config.tableSizes.map { AlignedBuffer(count: $0) }  // first order: zero init
        if secondOrder {
            all += EmbeddingTables.uniform(rows: config.tableSizes, dim: d, seed: seed, firstStream: 100) { _ in 0.01 }
        }
        tables = all
        denseWeight = AlignedBuffer(count: config.denseCount)
        denseGrad = AlignedBuffer(count: config.denseCount)
        bias = AlignedBuffer(count: 1)
        biasGrad = AlignedBuffer(count: 1)
        linearOut = AlignedBuffer(count: maxBatch * t)
        gradLinear = AlignedBuffer(count: maxBatch * t)
        factorOut = AlignedBuffer(count: secondOrder ? maxBatch * t * d : 1)
        gradFactor = AlignedBuffer(count: secondOrder ? maxBatch * t * d : 1)
        logits = AlignedBuffer(count: maxBatch)
        gradLogits = AlignedBuffer(count: maxBatch)
        sparseInput = SparseInput(tables: t, maxBatch: maxBatch, maxIndicesPerTable: maxIndicesPerTable)
    }

    public var kind: String { secondOrder ? "fm" : "lr" }

    func batch(firstOrder: Bool) -> TableBatch {
        let t = config.tableSizes.count, d = firstOrder ? 1 : config.embeddingDim
        return sparseInput.tableBatch(
            (0..<t).map { EmbeddingTableView(weights: tables[firstOrder ? $0 : t + $0].pointer, rows: config.tableSizes[$0], dim: d) },
            columnOffsets: (0..<t).map { $0 * d })
    }

    public func forward(dense: [Float], sparse: KeyedJaggedTensor, labels: [Float], pool: ThreadPool) throws(KernelError) -> Double {
        let b = sparse.batchSize, t = config.tableSizes.count, d = config.embeddingDim, dc = config.denseCount
        guard b <= maxBatch, dense.count == b * dc, labels.count == b, sparse.values.count == t else {
            throw .shapeMismatch("\(kind) batch: \(b) samples, \(dense.count) dense values, \(labels.count) labels")
        }
        batchSize = b
        denseInput = dense
        try sparseInput.load(sparse)
        try Kernels.tableBatchForward(batch(firstOrder: true), mode: .sum, output: MatrixView(base: linearOut.pointer, rows: b, columns: t), pool: pool)
        if secondOrder {
            try Kernels.tableBatchForward(batch(firstOrder: false), mode: .sum,
                                          output: MatrixView(base: factorOut.pointer, rows: b, columns: t * d), pool: pool)
        }
        for r in 0..<b {
            var z = bias.pointer[0]
            for j in 0..<dc { z += denseWeight.pointer[j] * dense[r * dc + j] }
            for i in 0..<t { z += linearOut.pointer[r * t + i] }
            if secondOrder {
                let v = factorOut.pointer + r * t * d
                for k in 0..<d {
                    var s: Float = 0, sq: Float = 0
                    for i in 0..<t { let x = v[i * d + k]; s += x; sq += x * x }
                    z += 0.5 * (s * s - sq)
                }
            }
            logits.pointer[r] = z
        }
        return labels.withUnsafeBufferPointer { lp in
            Kernels.bceWithLogits(logits: logits.pointer, labels: lp.baseAddress!, count: b, grad: gradLogits.pointer, gradScale: 1 / Float(b)) / Double(b)
        }
    }

    public func backward(dense: [Float], update: SparseUpdate, pool: ThreadPool) throws(KernelError) {
        let b = batchSize, t = config.tableSizes.count, d = config.embeddingDim, dc = config.denseCount
        if update.optimizer != .sgd && states.isEmpty {
            states = (0..<tables.count).map { i in
                AlignedBuffer(count: update.optimizer.stateCount(rows: config.tableSizes[i % t], dim: i < t ? 1 : d))
            }
        }
        for r in 0..<b {
            let g = gradLogits.pointer[r]
            biasGrad.pointer[0] += g
            for j in 0..<dc { denseGrad.pointer[j] += g * dense[r * dc + j] }
            for i in 0..<t { gradLinear.pointer[r * t + i] = g }
            if secondOrder {
                let v = factorOut.pointer + r * t * d, gv = gradFactor.pointer + r * t * d
                for k in 0..<d {
                    var s: Float = 0
                    for i in 0..<t { s += v[i * d + k] }
                    for i in 0..<t { gv[i * d + k] = g * (s - v[i * d + k]) }
                }
            }
        }
        func buffers(_ range: Range<Int>) -> [UnsafeMutableBufferPointer<Float>] {
            range.map { update.optimizer == .sgd ? UnsafeMutableBufferPointer(start: nil, count: 0) : states[$0].buffer }
        }
        try Kernels.tableBatchBackward(batch(firstOrder: true), states: buffers(0..<t), mode: .sum,
                                       gradOutput: MatrixView(base: gradLinear.pointer, rows: b, columns: t), update: update,
                                       workspace: workspace, pool: pool)
        if secondOrder {
            try Kernels.tableBatchBackward(batch(firstOrder: false), states: buffers(t..<(2 * t)), mode: .sum,
                                           gradOutput: MatrixView(base: gradFactor.pointer, rows: b, columns: t * d), update: update,
                                           workspace: workspace, pool: pool)
        }
    }

    public func zeroGrad() { denseGrad.fill(0); biasGrad.fill(0) }
    public var denseParameters: [(AlignedBuffer<Float>, AlignedBuffer<Float>)] { [(denseWeight, denseGrad), (bias, biasGrad)] }
    public func restoreStates(_ values: [[Float]]) { states = values.map { AlignedBuffer($0) } }
    /// No MLP: always fp32 (setting bf16 is accepted and has no effect).
    public var precision: Precision {
        get { .fp32 }
        set {}
    }
    public var lastLogits: [Float] { Array(UnsafeBufferPointer(start: logits.pointer, count: batchSize)) }
}

extension FactorizationMachine: CTRModel {}
