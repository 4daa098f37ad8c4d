import Foundation
import RecKitCore

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

    /// Applies one update to every (parameter, gradient) pair with learning rate `lr`.
    public func apply(_ params: [(AlignedBuffer<Float>, AlignedBuffer<Float>)], lr: Float) {
        if first.count != params.count {
            first = params.map { AlignedBuffer(count: kind == .adam || kind == .adamw ? $0.0.count : 0) }
            second = params.map { AlignedBuffer(count: kind == .sgd ? 0 : $0.0.count) }
        }
        step += 1
        let c1 = 1 - Float(pow(Double(beta1), Double(step))), c2 = 1 - Float(pow(Double(beta2), Double(step)))
        for (k, (w, g)) in params.enumerated() {
            let wp = w.pointer, gp = g.pointer
            switch kind {
            case .sgd:
                for i in 0..<w.count { wp[i] -= lr * (gp[i] + weightDecay * wp[i]) }
            case .adagrad:
                let h = second[k].pointer
                for i in 0..<w.count {
                    let gi = gp[i] + weightDecay * wp[i]
                    h[i] += gi * gi
                    wp[i] -= lr * gi / (h[i].squareRoot() + eps)
                }
            case .adam, .adamw:
                let m = first[k].pointer, v = second[k].pointer
                for i in 0..<w.count {
                    var gi = gp[i]
                    if kind == .adam { gi += weightDecay * wp[i] } else { wp[i] -= lr * weightDecay * wp[i] }
                    m[i] = beta1 * m[i] + (1 - beta1) * gi
                    v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
                    wp[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
                }
            }
        }
    }

    /// Restores state saved by a checkpoint.
    public func restore(step: Int, first: [[Float]], second: [[Float]]) {
        self.step = step
        self.first = first.map { AlignedBuffer($0) }
        self.second = second.map { AlignedBuffer($0) }
    }
}

