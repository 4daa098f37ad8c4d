import RecKitCore
import RecKitEmbeddings
import RecKitKernels

/// What the trainer, evaluation, checkpoints and serving need from a click-through-rate model.
///
/// A step is `forward` (logits into the workspace) → a loss writes `workspace.gradLogits` → `backward` (dense
/// gradients accumulate into `denseParameters`' grads; the gradient of the pooled embeddings stays in the workspace)
/// → `applySparseUpdate` (the embedding collections' fused backward + sparse optimizer) → a dense optimizer on
/// `denseParameters`. The model keeps parameters and gradients only; everything a call computes lives in its
/// `ModelWorkspace`, so one loaded model scores concurrent batches (one workspace each). Labels never reach it.
public protocol CTRModel: AnyObject, Sendable {
    var kind: ModelKind { get }
    /// The model's configuration (its kind's `Config`).
    var configuration: any ModelConfiguration { get }
    /// Dense features the model reads per sample.
    var denseCount: Int { get }
    /// The embedding collections (their tables name the sparse features the model reads).
    var embeddingCollections: [EmbeddingCollection] { get }
    /// Per-call memory for batches of up to `maxBatch` samples.
    func makeWorkspace(maxBatch: Int) -> ModelWorkspace
    /// Logits of `batch` into `workspace.logits`. `.training` keeps what `backward` needs.
    func forward(_ batch: Batch, workspace: ModelWorkspace, mode: ForwardMode, pool: ThreadPool) throws(ModelError)
    /// Backward of the last training forward from `workspace.gradLogits`.
    func backward(workspace: ModelWorkspace, pool: ThreadPool) throws(ModelError)
    /// The fused sparse update of every embedding row the last training forward touched.
    func applySparseUpdate(_ update: SparseUpdate, workspace: ModelWorkspace, pool: ThreadPool) throws(ModelError)
    /// Dense parameters with their gradients, named.
    var denseParameters: [DenseParameter] { get }
    func zeroGrad()
    /// Precision of the model's MLP GEMMs (models without MLPs ignore bf16: their work is embedding-bound).
    var precision: Precision { get set }
    /// Prepares constant weights for repeated inference (DLRM: packs the MLP weights once). Training drops it.
    func prepareForInference()
    /// The linear layers whose GEMMs follow `precision` (the MLPs; not DCNv2's cross layers).
    var precisionLayers: [Linear] { get }
}

extension CTRModel {
    /// Every tensor of the model's state, named: dense parameters, then each collection's tables and their sparse
    /// optimizer state. What checkpoints write and read and snapshots copy.
    public func stateTensors() -> [StateTensor] {
        denseParameters.map(\.stateTensor) + embeddingCollections.flatMap { $0.stateTensors() }
    }

    /// Starts fetching the rows `batch` will look up on storages that keep rows elsewhere (tiered tables), while
    /// the current batch computes. Call it after the current batch's forward; values never depend on it.
    public func prefetch(_ batch: Batch) {
        for c in embeddingCollections { c.prefetch(batch.sparse) }
    }

    /// The sparse optimizer the embedding rows keep state for (nil: inference-only model).
    public var sparseOptimizer: SparseOptimizerKind? { embeddingCollections.first?.optimizer }

    /// Row quantization of the tables, nil for fp32.
    public var quantization: QuantizedDType? { embeddingCollections.first?.quantization }

    /// The sparse feature keys the model reads (each table's feature, in order, without repeats).
    public var sparseFeatures: [String] {
        var seen = Set<String>(), out: [String] = []
        for c in embeddingCollections { for s in c.specs where seen.insert(s.feature).inserted { out.append(s.feature) } }
        return out
    }

    public func prepareForInference() {}
    public var precisionLayers: [Linear] { [] }

    /// With bf16 requested, decides layer by layer (a probe on this CPU, cached) whether bf16 beats fp32 at `batch`
    /// rows, and returns each layer's choice: what a run reports as "which layers run bf16".
    @discardableResult
    public func planPrecision(batch: Int, training: Bool, pool: ThreadPool, probe: BF16Probe = .shared) -> [(layer: String, shape: String, precision: Precision)] {
        precisionLayers.map { l in
            (l.name, "\(l.inFeatures)→\(l.outFeatures)", l.plan(batch: batch, training: training, pool: pool, probe: probe))
        }
    }
}

/// One line for logs: which layers run bf16 and which stay fp32.
public func describePrecisionPlan(_ plan: [(layer: String, shape: String, precision: Precision)]) -> String {
    let bf16 = plan.filter { $0.precision == .bf16 }.map { "\($0.layer) (\($0.shape))" }
    let fp32 = plan.filter { $0.precision == .fp32 }.map { "\($0.layer) (\($0.shape))" }
    return "bf16: " + (bf16.isEmpty ? "none" : bf16.joined(separator: ", ")) + "; fp32: " + (fp32.isEmpty ? "none" : fp32.joined(separator: ", "))
}

/// Whether a forward is followed by a backward.
public enum ForwardMode: Sendable { case inference, training }

/// How a new model's parameters start.
public enum ModelInitialization: Sendable, Equatable {
    /// Seeded random values (each model documents its streams).
    case random(seed: UInt64)
    /// Zero memory, about to be filled from a checkpoint: nothing is drawn or written.
    case none
}

/// Why a model refused a call or a configuration; names the layer, table or field.
public enum ModelError: Error, Sendable, CustomStringConvertible {
    case shape(String)
    case config(String)
    case embedding(EmbeddingError)
    case kernel(layer: String, KernelError)

    public var description: String {
        switch self {
        case .shape(let s): return s
        case .config(let s): return "model configuration: \(s)"
        case .embedding(let e): return e.description
        case let .kernel(layer, e): return "\(layer): \(e)"
        }
    }
}

/// Runs a kernel-level call, naming the layer in its error.
@inline(__always) func layer(_ name: String, _ body: () throws(KernelError) -> Void) throws(ModelError) {
    do { try body() } catch { throw .kernel(layer: name, error) }
}

/// Runs an embedding call.
@inline(__always) func embedding(_ body: () throws(EmbeddingError) -> Void) throws(ModelError) {
    do { try body() } catch { throw .embedding(error) }
}

/// What every model's workspace has: logits and their gradient for up to `maxBatch` samples, the batch's dense
/// input (kept for backward), and optional per-phase timing (benchmarks).
open class ModelWorkspace: @unchecked Sendable {
    public let maxBatch: Int
    /// B of the last forward.
    public internal(set) var batchSize = 0
    /// Logits of the last forward (B).
    public let logits: AlignedBuffer<Float>
    /// dL/dlogit for `backward` (B), written by the loss.
    public let gradLogits: AlignedBuffer<Float>
    /// The last batch's dense features (B × denseCount).
    let dense: AlignedBuffer<Float>
    /// Set by a training forward, cleared by `applySparseUpdate`.
    var trainingPending = false
    /// When set, phases are timed with this clock (seconds) into `phaseSeconds`.
    public var phaseClock: (() -> Double)?
    public var phaseSeconds: [String: Double] = [:]

    init(maxBatch: Int, denseCount: Int) {
        self.maxBatch = maxBatch
        logits = AlignedBuffer(count: maxBatch)
        gradLogits = AlignedBuffer(count: maxBatch)
        dense = AlignedBuffer(count: maxBatch * max(denseCount, 1))
    }

    /// The logits of the last forward as an array (cold code).
    public var lastLogits: [Float] { Array(UnsafeBufferPointer(start: logits.pointer, count: batchSize)) }

    /// The embedding collections' workspaces (what the last batch's lookups did, e.g. `dedupedTables`).
    open var embeddingWorkspaces: [EmbeddingWorkspace] { [] }

    @inline(__always) func timed(_ name: String, _ body: () throws(ModelError) -> Void) throws(ModelError) {
        guard let clock = phaseClock else { try body(); return }
        let t0 = clock()
        try body()
        phaseSeconds[name, default: 0] += clock() - t0
    }

    /// Checks the batch against this workspace and the model's dense width and copies the dense features (an empty
    /// dense array means zeros: models of data without dense features read one zero column).
    func begin(_ batch: Batch, denseCount: Int) throws(ModelError) {
        let b = batch.size
        guard b <= maxBatch else { throw .shape("batch of \(b) samples > the workspace's \(maxBatch)") }
        if batch.dense.isEmpty {
            dense.pointer.update(repeating: 0, count: b * denseCount)
        } else {
            guard batch.dense.count == b * denseCount else {
                throw .shape("batch has \(batch.dense.count) dense values for \(b) samples × \(denseCount) features")
            }
            batch.dense.withUnsafeBufferPointer { if let p = $0.baseAddress { dense.pointer.update(from: p, count: $0.count) } }
        }
        batchSize = b
    }
}

/// Mean binary cross-entropy with logits over a workspace's batch.
public enum BinaryCrossEntropy {
    /// L = (1/B) Σ_b BCE(z_b, y_b); writes dL/dz = (σ(z) − y)/B into `workspace.gradLogits`.
    public static func loss(_ workspace: ModelWorkspace, labels: [Float]) throws(ModelError) -> Double {
        try loss(workspace, labels: labels, meanOver: workspace.batchSize)
    }

    /// This batch's share of a mean over `meanOver` samples (a rank's part of a global batch): returns
    /// (1/meanOver) Σ_b BCE(z_b, y_b) and writes dL/dz = (σ(z) − y)/meanOver, so the ranks' losses and gradients
    /// add up to the global batch's.
    public static func loss(_ workspace: ModelWorkspace, labels: [Float], meanOver: Int) throws(ModelError) -> Double {
        let b = workspace.batchSize
        guard labels.count == b else { throw .shape("\(labels.count) labels for \(b) samples") }
        guard b > 0 else { return 0 }
        return labels.withUnsafeBufferPointer { lp in
            Kernels.bceWithLogits(logits: workspace.logits.pointer, labels: lp.baseAddress ?? UnsafePointer(workspace.logits.pointer), count: b,
                                  grad: workspace.gradLogits.pointer, gradScale: 1 / Float(meanOver)) / Double(meanOver)
        }
    }
}
