import RecKitCore
import RecKitKernels

/// What the trainer, evaluation and checkpoints need from a click-through-rate model.
public protocol CTRModel: AnyObject {
    /// "lr", "fm", "dlrm".
    var kind: String { get }
    var config: DLRMConfig { get }
    var maxBatch: Int { get }
    /// Mean BCE of the batch; keeps what `backward` needs.
    func forward(dense: [Float], sparse: KeyedJaggedTensor, labels: [Float], pool: ThreadPool) throws(KernelError) -> Double
    /// Dense gradients accumulate; embedding rows are updated by the fused sparse optimizer.
    func backward(dense: [Float], update: SparseUpdate, pool: ThreadPool) throws(KernelError)
    func zeroGrad()
    var denseParameters: [(AlignedBuffer<Float>, AlignedBuffer<Float>)] { get }
    var tables: [AlignedBuffer<Float>] { get }
    var states: [AlignedBuffer<Float>] { get }
    func restoreStates(_ values: [[Float]])
    var lastLogits: [Float] { get }
    /// Precision of the model's MLP GEMMs (models without MLPs ignore bf16: their work is embedding-bound).
    var precision: Precision { get set }
    /// Prepares constant weights for repeated inference (for DLRM: packs the MLP weights once). Training drops it.
    func prepareForInference()
}

extension CTRModel {
    public func prepareForInference() {}
}

extension DLRM: CTRModel {
    public var kind: String { "dlrm" }
}

/// Builds a model of `kind` ("lr", "fm", "dlrm", "dcnv2": stacked, 3 full-rank cross layers) for `config`.
public func makeCTRModel(kind: String, config: DLRMConfig, maxBatch: Int, maxIndicesPerTable: Int, seed: UInt64) -> (any CTRModel)? {
    switch kind {
    case "dlrm": return DLRM(config: config, maxBatch: maxBatch, maxIndicesPerTable: maxIndicesPerTable, seed: seed)
    case "lr": return FactorizationMachine(config: config, secondOrder: false, maxBatch: maxBatch, maxIndicesPerTable: maxIndicesPerTable, seed: seed)
    case "fm": return FactorizationMachine(config: config, secondOrder: true, maxBatch: maxBatch, maxIndicesPerTable: maxIndicesPerTable, seed: seed)
    case "dcnv2": return DCNv2(config: config, crossLayers: config.crossLayers ?? 3, rank: config.crossRank,
                               parallel: config.crossParallel ?? false, maxBatch: maxBatch,
                               maxIndicesPerTable: maxIndicesPerTable, seed: seed)
    default: return nil
    }
}
