import Foundation
import RecKitCore
import RecKitCheckpoint
import RecKitKernels
import RecKitModels

/// Optimizers for dense (MLP) parameters.
///
/// With g the gradient (+ weightDecay·w for L2 under SGD/Adagrad/Adam; decoupled for AdamW):
/// - sgd:     w ← w − lr·g
/// - adagrad: h ← h + g²;  w ← w − lr·g/(√h + eps)                      (PyTorch: eps 1e-10, h₀ = 0)
/// - adam:    m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  w ← w − lr·m̂/(√v̂ + eps), m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
/// - adamw:   adam without L2 in g, and w ← w − lr·weightDecay·w before the update.
public enum DenseOptimizerKind: String, Sendable, Codable, CaseIterable { case sgd, adagrad, adam, adamw }

public final class DenseOptimizer: @unchecked Sendable {
    public let kind: DenseOptimizerKind
    public var beta1: Float = 0.9, beta2: Float = 0.999
    public var eps: Float
    public var weightDecay: Float
    public private(set) var step = 0
    /// Per parameter: first and second moment (Adam) or accumulator (Adagrad, in `second`).
    public private(set) var first: [AlignedBuffer<Float>] = []
    public private(set) var second: [AlignedBuffer<Float>] = []

    public init(kind: DenseOptimizerKind, weightDecay: Float = 0, eps: Float? = nil) {
        self.kind = kind
        self.weightDecay = weightDecay
        self.eps = eps ?? (kind == .adagrad ? 1e-10 : 1e-8)
    }

    /// Allocates the moments for `params` (once; they must then stay the same parameters).
    public func prepare(_ params: [DenseParameter]) throws(TrainingError) {
        if first.count == params.count && zip(first, params).allSatisfy({ $0.count == (usesFirst ? $1.value.count : 0) })
            && zip(second, params).allSatisfy({ $0.count == (usesSecond ? $1.value.count : 0) }) { return }
        guard first.isEmpty else {
            throw .optimizerState("the \(kind.rawValue) optimizer holds moments for \(first.count) parameters, the model has \(params.count)")
        }
        first = params.map { AlignedBuffer(count: usesFirst ? $0.value.count : 0) }
        second = params.map { AlignedBuffer(count: usesSecond ? $0.value.count : 0) }
    }

    var usesFirst: Bool { kind == .adam || kind == .adamw }
    var usesSecond: Bool { kind != .sgd }

    /// Applies one update to every parameter with learning rate `lr`, split across `pool` when given (the same bits
    /// either way).
    public func apply(_ params: [DenseParameter], lr: Float, pool: ThreadPool? = nil) throws(TrainingError) {
        try prepare(params)
        step += 1
        let c1 = 1 - Float(pow(Double(beta1), Double(step))), c2 = 1 - Float(pow(Double(beta2), Double(step)))
        // Fixed chunks of every parameter: the update is element-wise, so any split gives the same bits.
        var items: [(Int, Range<Int>)] = []
        for (k, p) in params.enumerated() {
            for start in stride(from: 0, to: p.value.count, by: Self.chunk) { items.append((k, start..<min(start + Self.chunk, p.value.count))) }
        }
        let run: (Int) -> Void = { t in
            let (k, range) = items[t]
            self.update(params[k].value.pointer, params[k].grad.pointer, self.first[k].pointer, self.second[k].pointer, range,
                        lr: lr, c1: c1, c2: c2)
        }
        if let pool { pool.parallelFor(items.count, run) } else { for t in items.indices { run(t) } }
    }

    /// The moments as named tensors (`optimizer.<parameter>.exp_avg`, `.exp_avg_sq`, or Adagrad's `.sum`), allocating
    /// them first if no step was taken yet.
    public func stateTensors(_ params: [DenseParameter]) throws(TrainingError) -> [StateTensor] {
        try prepare(params)
        var out: [StateTensor] = []
        for (k, p) in params.enumerated() {
            if usesFirst { out.append(StateTensor(name: OptimizerStateNames.firstMoment(p.name), shape: p.shape, role: .optimizerState, buffer: first[k])) }
            if usesSecond {
                out.append(StateTensor(name: OptimizerStateNames.secondMoment(p.name, adagrad: kind == .adagrad), shape: p.shape,
                                       role: .optimizerState, buffer: second[k]))
            }
        }
        return out
    }

    /// Sets the step count (restoring: Adam's bias correction continues from it).
    public func setStep(_ s: Int) { step = max(0, s) }

    /// The optimizer as a checkpoint records it.
    public var record: CheckpointMetadata.OptimizerRecord {
        .init(kind: kind.rawValue, eps: eps, weightDecay: weightDecay, beta1: usesFirst ? beta1 : nil, beta2: usesFirst ? beta2 : nil, step: step)
    }

    /// Elements per task of the parallel update.
    static let chunk = 16_384

    private typealias V = SIMD16<Float>

    /// One update of elements `range`, 16 lanes at a time (a short tail goes through zero-padded lanes). Each lane
    /// does the same IEEE operations in the same order as the formulas above — no fused multiply-adds — so the
    /// result does not depend on the vector width or the split.
    private func update(_ wp: UnsafeMutablePointer<Float>, _ gp: UnsafeMutablePointer<Float>, _ mp: UnsafeMutablePointer<Float>,
                        _ vp: UnsafeMutablePointer<Float>, _ range: Range<Int>, lr: Float, c1: Float, c2: Float) {
        let wd = V(repeating: weightDecay), lrv = V(repeating: lr), eps = V(repeating: eps)
        let b1 = V(repeating: beta1), b2 = V(repeating: beta2), c1v = V(repeating: c1), c2v = V(repeating: c2)
        let one = V(repeating: 1)
        @inline(__always) func load(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ n: Int) -> V {
            if n == 16 { return UnsafeRawPointer(p + i).loadUnaligned(as: V.self) }
            var v = V()
            for j in 0..<n { v[j] = p[i + j] }
            return v
        }
        @inline(__always) func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ n: Int) {
            if n == 16 { UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V.self); return }
            for j in 0..<n { p[i + j] = v[j] }
        }
        var i = range.lowerBound
        while i < range.upperBound {
            let n = min(16, range.upperBound - i)
            var w = load(wp, i, n)
            let g = load(gp, i, n)
            switch kind {
            case .sgd:
                w -= lrv * (g + wd * w)
            case .adagrad:
                let gi = g + wd * w
                let h = load(vp, i, n) + gi * gi
                store(h, vp, i, n)
                w -= lrv * gi / (h.squareRoot() + eps)
            case .adam, .adamw:
                var gi = g
                if kind == .adam { gi += wd * w } else { w -= lrv * wd * w }
                let m = b1 * load(mp, i, n) + (one - b1) * gi
                let v = b2 * load(vp, i, n) + (one - b2) * gi * gi
                store(m, mp, i, n)
                store(v, vp, i, n)
                w -= lrv * (m / c1v) / ((v / c2v).squareRoot() + eps)
            }
            store(w, wp, i, n)
            i += n
        }
    }
}
