import Foundation
import RecKitCore
import RecKitKernels

/// BPR-MF (Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009).
///
///     x̂(u,i) = pᵤ·qᵢ + bᵢ,   loss = −Σ log σ(x̂(u,i) − x̂(u,j)) + reg·(‖pᵤ‖² + ‖qᵢ‖² + ‖qⱼ‖² + bᵢ² + bⱼ²)/2
///
/// over triples (u, i positive, j sampled uniformly among u's non-interacted items), plain SGD, one pass per
/// epoch over the positives in a seeded shuffled order (single-threaded, so a seed fixes the result).
/// P [U × d], Q [I × d], b [I]. A user unseen in training is scored by the item biases alone.
public struct BPRModel: CFModel {
    public struct Options: Sendable, Equatable {
        public var dimension = 64
        public var epochs = 30
        public var learningRate: Float = 0.05
        public var regularization: Float = 0.0025
        public var seed: UInt64 = 42
        public init() {}
    }

    public let kind = CFModelKind.bpr
    public let users: IDMap
    public let items: IDMap
    public let itemCounts: [Int]
    public let dimension: Int
    public let userFactors: [Float]
    public let itemFactors: [Float]
    public let itemBias: [Float]
    let options: Options
    public var hyperparameters: [String: Double] {
        ["dimension": Double(dimension), "epochs": Double(options.epochs), "learning_rate": Double(options.learningRate),
         "regularization": Double(options.regularization)]
    }

    /// Per-epoch training record of each positive (for SVP-CF): called after every epoch with, for each
    /// positive in CSR order, whether the model ranked it above its sampled negative.
    public typealias EpochObserver = (_ epoch: Int, _ correct: [Bool], _ loss: [Float]) -> Void

    public static func fit(train: InteractionMatrix, users: IDMap, items: IDMap, options: Options = Options(),
                           observe: EpochObserver? = nil) throws(CFError) -> BPRModel {
        guard options.dimension > 0, options.epochs >= 0, options.learningRate > 0 else {
            throw .invalidOptions("BPR needs dimension > 0, epochs ≥ 0 and a positive learning rate")
        }
        let u = train.rows, n = train.columns, d = options.dimension
        guard n > 1 else { throw .invalidOptions("BPR needs at least 2 items") }
        var rng = SeededRandom(seed: options.seed)
        var p = (0..<(u * d)).map { _ in Float(rng.nextGaussian()) * 0.1 }
        var q = (0..<(n * d)).map { _ in Float(rng.nextGaussian()) * 0.1 }
        var bias = [Float](repeating: 0, count: n)
        // Positives as (user, item) in CSR order.
        var owner = [Int32](repeating: 0, count: train.nonZeros)
        for r in 0..<u { for k in train.rowStart[r]..<train.rowStart[r + 1] { owner[k] = Int32(r) } }
        var order = Array(0..<train.nonZeros)
        var correct = [Bool](repeating: false, count: observe == nil ? 0 : train.nonZeros)
        var losses = [Float](repeating: 0, count: observe == nil ? 0 : train.nonZeros)
        let lr = options.learningRate, reg = options.regularization
        for epoch in 0..<options.epochs {
            order.shuffle(using: &rng)
            for k in order {
                let user = Int(owner[k]), i = Int(train.columnIndices[k])
                if train.rowCount(user) >= n { continue }
                var j = Int(rng.next() % UInt64(n))
                while train.contains(user, Int32(j)) { j = Int(rng.next() % UInt64(n)) }
                p.withUnsafeMutableBufferPointer { pp in
                    q.withUnsafeMutableBufferPointer { qp in
                        let pu = pp.baseAddress! + user * d, qi = qp.baseAddress! + i * d, qj = qp.baseAddress! + j * d
                        var x: Float = bias[i] - bias[j]
                        for t in 0..<d { x += pu[t] * (qi[t] - qj[t]) }
                        let g = 1 / (1 + expf(x))  // σ(−x) = −∂loss/∂x
                        if observe != nil { correct[k] = x > 0; losses[k] = x > 0 ? log1pf(expf(-x)) : -x + log1pf(expf(x)) }
                        for t in 0..<d {
                            let pt = pu[t], it = qi[t], jt = qj[t]
                            pu[t] += lr * (g * (it - jt) - reg * pt)
                            qi[t] += lr * (g * pt - reg * it)
                            qj[t] += lr * (-g * pt - reg * jt)
                        }
                        bias[i] += lr * (g - reg * bias[i])
                        bias[j] += lr * (-g - reg * bias[j])
                    }
                }
            }
            observe?(epoch, correct, losses)
        }
        return BPRModel(users: users, items: items, itemCounts: train.columnCounts(), dimension: d, userFactors: p, itemFactors: q,
                        itemBias: bias, options: options)
    }

    init(users: IDMap, items: IDMap, itemCounts: [Int], dimension: Int, userFactors: [Float], itemFactors: [Float], itemBias: [Float],
         options: Options) {
        self.users = users; self.items = items; self.itemCounts = itemCounts; self.dimension = dimension
        self.userFactors = userFactors; self.itemFactors = itemFactors; self.itemBias = itemBias; self.options = options
    }

    public func score(context: InteractionMatrix, rows: Range<Int>, userIndex: [Int32], into out: UnsafeMutablePointer<Float>,
                      algebra: DenseAlgebra, pool: ThreadPool) throws(CFError) {
        let n = items.count, d = dimension, b = rows.count
        let pu = AlignedBuffer<Float>(count: max(1, b * d))
        pu.fill(0)
        for k in 0..<b where userIndex[k] >= 0 {
            let src = Int(userIndex[k]) * d
            for t in 0..<d { pu.pointer[k * d + t] = userFactors[src + t] }
        }
        try itemFactors.withUnsafeBufferPointer { (qp) throws(CFError) in
            try algebra.gemm(pu.pointer, qp.baseAddress!, into: out, m: b, n: n, k: d, transB: true)
        }
        for k in 0..<b { for i in 0..<n { out[k * n + i] += itemBias[i] } }
    }

    public func tensors() -> [CFTensor] {
        [CFTensor(name: "user_factors", shape: [users.count, dimension], floats: userFactors),
         CFTensor(name: "item_factors", shape: [items.count, dimension], floats: itemFactors),
         CFTensor(name: "item_bias", shape: [items.count], floats: itemBias)]
    }
}
