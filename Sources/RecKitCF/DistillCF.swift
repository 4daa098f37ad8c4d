import Foundation
import RecKitCore
import RecKitKernels

/// Distill-CF (Sachdeva, Dhaliwal, Wu, McAuley, "Infinite Recommendation Networks: A Data-Centric Approach",
/// NeurIPS 2022): learns a small synthetic summary of μ users so that ∞-AE fit on the summary reconstructs the
/// real users as ∞-AE fit on all of them would.
///
/// Notation: X_b [B × I] a batch of real users (0/1), Z [μ × I] the summary's logits, g [μ × I] logistic noise,
/// τ the temperature. Each step:
///
///     S    = σ((Z + g)/τ)                          the summary, sampled with the binary Gumbel-softmax (concrete)
///     K_ss = Θ(S, S),  A = K_ss + λ·tr(K_ss)/μ·I   [μ × μ]   (Θ: `NeuralTangentKernel`; the ridge as ∞-AE's)
///     α    = A⁻¹ S                                 [μ × I]
///     P    = Θ(X_b, S)·α                           [B × I]   ∞-AE-on-the-summary's scores for the real users
///     L    = ‖M ⊙ (P − Y)‖²/B + ρ·mean row sum of S / mean real degree
///
/// Y is X_b (`squared`: ∞-AE's own ridge objective) or T_b, the full-data ∞-AE's scores for the same users
/// (`teacher`, the default); M masks out the items the summary's model was shown (`maskInput`, default: the
/// evaluation ranks only items outside a user's context). With `inputDropout` the model sees X_b with some items
/// hidden while Y keeps them. `Loss.softmaxCrossEntropy` is the paper's −(1/B) Σᵤ Σᵢ yᵤᵢ log softmax(Pᵤ)ᵢ instead;
/// ρ is the paper's cardinality penalty.
/// Adam on Z with the exact gradient of L through Θ (its partials in a, ‖x‖², ‖y‖², `partials`), the
/// Cholesky solve (∂L/∂S += A⁻¹·∂L/∂α, ∂L/∂A = −A⁻¹(∂L/∂α)αᵀ), the ridge's dependence on tr(K_ss), and the
/// sampling (∂S/∂Z = S(1−S)/τ). Binary Gumbel-softmax per (user, item) stands in for
/// the paper's categorical Gumbel-softmax over items per synthetic user: both relax sampling a user's item set.
/// The summary starts from μ real users drawn at random (logits ±`initialLogit`). A `binary` summary keeps each
/// synthetic user's items with σ(Z/τ) > ½; a `soft` one (the default) is the noise-free relaxation S = σ(Z/τ)
/// itself, trained without g and written as weights.
public enum DistillCF {
    /// Defaults are the configuration measured best on ML-1M (docs/cf.md: 97.3% of full-data ∞-AE nDCG@10 with 500
    /// users): a soft summary, fitted to the full-data ∞-AE's scores of the items outside each user's context
    /// (`teacher`, `maskInput`), λ 3.5 inside the loss, 800 Adam steps with cosine decay.
    public struct Options: Sendable {
        public var users = 500
        public var steps = 800
        /// Real users per step (all when larger than U).
        public var batchUsers = 2048
        public var learningRate: Float = 0.3
        /// Cosine decay of the learning rate over the steps to `learningRate`·0.05 (false: constant).
        public var cosineDecay = true
        public var temperature: Float = 1
        /// λ of the ∞-AE fit on the summary inside the loss (relative to the mean kernel diagonal).
        public var lambda: Float = 3.5
        public var initialLogit: Float = 2
        public var seed: UInt64 = 1
        /// The loss: the full-data ∞-AE's scores (`teacher`, default: the best summaries on ML-1M, docs/cf.md), the
        /// squared error ∞-AE's ridge regression minimises, or the paper's softmax cross-entropy.
        public var loss = Loss.teacher
        /// ρ of the cardinality penalty (the paper's 0.001) and the real users' mean number of items it is scaled by
        /// (set by `distill` from the data).
        public var cardinality: Float = 0.001
        public var meanDegree: Double = 1
        /// What the summary is: `binary` (trained through the binary Gumbel-softmax, written as 0/1 interactions) or
        /// `soft` (written as weights S = σ(Z/τ), entries below `softFloor` dropped). A soft summary is trained on the
        /// relaxation's noise-free value by default; `noiseAnneal` > 0 adds Gumbel noise scaled by
        /// max(0, 1 − t/(`noiseAnneal`·steps)) at step t (measured worse on ML-1M: docs/cf.md).
        public var summary = Summary.soft
        public var softFloor: Float = 1e-3
        public var noiseAnneal: Float = 0
        /// λ of the full-data ∞-AE whose scores `Loss.teacher` matches.
        public var teacherLambda: Float = 5
        /// Probability that a real user's interaction is hidden from the summary's model's input in a step while the
        /// target keeps it (0: none). The loss then asks the summary to predict items it was not shown, which is what
        /// the evaluation asks (held-out items from a context) — a denoising ∞-AE objective.
        public var inputDropout: Float = 0
        /// Leave the items the summary's model was shown (the batch's input rows) out of the loss: the evaluation
        /// ranks only items outside a user's context, so only those scores are fitted (with `teacher`: the full
        /// model's scores of the items the user has not interacted with; with `squared` only when `inputDropout` > 0,
        /// the hidden items being the positives; never with `softmax`). Default on: it applies where it can.
        public var maskInput = true
        /// Every this many steps (and after the last) the summary is scored by `distill`'s `select` closure and the
        /// best-scoring one is returned (0: the last step's; the paper selects by validation HR@100 every 40 steps).
        public var selectEvery = 0
        public init() {}
    }

    /// `squared`: ‖P − X_b‖² (reconstruct the real users); `teacher`: ‖P − T_b‖², T the scores of ∞-AE fit on all
    /// the data (`teacherLambda`) for the same users, so the summary's model is fit to score as the full model does;
    /// `softmaxCrossEntropy`: the paper's multinomial likelihood of X_b under softmax(P).
    public enum Loss: String, Sendable, CaseIterable { case softmaxCrossEntropy = "softmax", squared, teacher }

    public enum Summary: String, Sendable, CaseIterable { case binary, soft }

    /// Loss and ∂L/∂Z for logits `z` [μ × I], noise `noise` [μ × I] and the real users `batch` [B × I] (dense 0/1).
    /// `target` [B × I]: what P is fit to under the squared losses (nil: `batch` itself).
    public static func lossAndGradient(z: [Float], noise: [Float], batch: [Float], target: [Float]? = nil, batchUsers bu: Int, summaryUsers mu: Int, items n: Int,
                                       options o: Options, algebra: DenseAlgebra, pool: ThreadPool) throws(CFError) -> (loss: Double, gradient: [Float]) {
        let kernel = NeuralTangentKernel(inputDimension: n)
        let invTau = 1 / o.temperature
        var s = [Float](repeating: 0, count: mu * n)
        for k in 0..<(mu * n) { s[k] = 1 / (1 + exp(-(z[k] + noise[k]) * invTau)) }
        var ns = [Float](repeating: 0, count: mu)
        for i in 0..<mu { var t: Float = 0; for j in 0..<n { t += s[i * n + j] * s[i * n + j] }; ns[i] = t }
        var nb = [Float](repeating: 0, count: bu)
        for i in 0..<bu { var t: Float = 0; for j in 0..<n { t += batch[i * n + j] }; nb[i] = t }
        // K_ss and A.
        var dss = [Float](repeating: 0, count: mu * mu)
        try s.withUnsafeBufferPointer { (sp) throws(CFError) in try algebra.gemm(sp.baseAddress!, sp.baseAddress!, into: &dss, m: mu, n: mu, k: n, transB: true) }
        var factor = [Float](repeating: 0, count: mu * mu)  // K_ss, then A, then A's Cholesky factor
        var trace = 0.0
        for i in 0..<mu {
            for j in 0..<mu {
                factor[i * mu + j] = i == j ? Float(kernel.value(dot: Double(ns[i]), normX: Double(ns[i]), normY: Double(ns[i])))
                                         : Float(kernel.value(dot: Double(dss[i * mu + j]), normX: Double(ns[i]), normY: Double(ns[j])))
            }
            trace += Double(factor[i * mu + i])
        }
        let ridge = Float(Double(o.lambda) * trace / Double(mu))
        for i in 0..<mu { factor[i * mu + i] += ridge }
        // α = A⁻¹S (the factor is kept for the second solve).
        var alpha = s
        try solve(&factor, &alpha, n: mu, nrhs: n, algebra: algebra, factored: false)
        // K_bs and P.
        var dbs = [Float](repeating: 0, count: bu * mu)
        try batch.withUnsafeBufferPointer { (bp) throws(CFError) in
            try s.withUnsafeBufferPointer { (sp) throws(CFError) in try algebra.gemm(bp.baseAddress!, sp.baseAddress!, into: &dbs, m: bu, n: mu, k: n, transB: true) }
        }
        var kbs = dbs
        kbs.withUnsafeMutableBufferPointer { kernel.apply($0.baseAddress!, rows: bu, cols: mu, rowNorms: nb, colNorms: ns, pool: pool) }
        var p = [Float](repeating: 0, count: bu * n)
        try algebra.gemm(kbs, alpha, into: &p, m: bu, n: n, k: mu)
        var loss = 0.0
        switch o.loss {
        case .squared, .teacher:
            let scaleB = 2 / Float(bu)
            let y = target ?? batch
            let mask = o.maskInput
            for k in 0..<(bu * n) {
                let r = mask && batch[k] > 0 ? 0 : p[k] - y[k]
                loss += Double(r * r)
                p[k] = scaleB * r  // p now holds ∂L/∂P
            }
        case .softmaxCrossEntropy:
            // −Σᵢ xᵤᵢ log softmax(Pᵤ)ᵢ per user; ∂/∂Pᵤ = (Σᵢ xᵤᵢ)·softmax(Pᵤ) − xᵤ.
            let y = target ?? batch
            for r in 0..<bu {
                let row = r * n
                var mx = -Float.infinity
                for j in 0..<n { mx = max(mx, p[row + j]) }
                var z = 0.0, count: Float = 0
                for j in 0..<n { z += Double(exp(p[row + j] - mx)); count += y[row + j] }
                let logZ = Double(mx) + log(z)
                for j in 0..<n {
                    let logp = Double(p[row + j]) - logZ
                    if y[row + j] > 0 { loss -= Double(y[row + j]) * logp }
                    p[row + j] = (count * Float(exp(logp)) - y[row + j]) / Float(bu)
                }
            }
        }
        loss /= Double(bu)
        // Cardinality: ρ · mean row sum of S / the real users' mean degree keeps the summary sparse.
        var cardinality = 0.0
        for k in 0..<(mu * n) { cardinality += Double(s[k]) }
        loss += Double(o.cardinality) * cardinality / Double(mu) / Double(max(o.meanDegree, 1e-9))
        let cardinalityGradient = o.cardinality / Float(mu) / Float(max(o.meanDegree, 1e-9))
        // ∂L/∂α = K_bsᵀ ∂L/∂P, ∂L/∂K_bs = ∂L/∂P αᵀ.
        var gAlpha = [Float](repeating: 0, count: mu * n)
        try algebra.gemm(kbs, p, into: &gAlpha, m: mu, n: n, k: bu, transA: true)
        var gKbs = [Float](repeating: 0, count: bu * mu)
        try algebra.gemm(p, alpha, into: &gKbs, m: bu, n: mu, k: n, transB: true)
        // W = A⁻¹ ∂L/∂α: the direct part of ∂L/∂S; ∂L/∂K_ss = −W αᵀ.
        var gS = gAlpha
        try solve(&factor, &gS, n: mu, nrhs: n, algebra: algebra, factored: true)
        var gKss = [Float](repeating: 0, count: mu * mu)
        try algebra.gemm(gS, alpha, into: &gKss, m: mu, n: mu, k: n, transB: true)
        var gNs = [Double](repeating: 0, count: mu)
        // Through K_bs: ∂L/∂D_bs and the synthetic norms.
        for i in 0..<bu {
            for j in 0..<mu {
                let g = Double(gKbs[i * mu + j])
                let d = kernel.partials(dot: Double(dbs[i * mu + j]), normX: Double(nb[i]), normY: Double(ns[j]))
                gKbs[i * mu + j] = Float(g * d.a)
                gNs[j] += g * d.q
            }
        }
        try batch.withUnsafeBufferPointer { (bp) throws(CFError) in
            var part = [Float](repeating: 0, count: mu * n)
            try algebra.gemm(gKbs, bp.baseAddress!, into: &part, m: mu, n: n, k: bu, transA: true)
            for k in 0..<(mu * n) { gS[k] += part[k] }
        }
        // Through K_ss (∂L/∂K_ss = −gKss): off-diagonal entries by ⟨s_i, s_j⟩ and both norms, the diagonal by the norm.
        // The ridge λ·tr(K_ss)/μ adds ∂L/∂r = tr(∂L/∂A) to every diagonal entry's gradient, times λ/μ.
        var traceGA = 0.0
        for i in 0..<mu { traceGA -= Double(gKss[i * mu + i]) }
        let ridgeGradient = Double(o.lambda) / Double(mu) * traceGA
        var gDss = [Float](repeating: 0, count: mu * mu)
        for i in 0..<mu {
            for j in 0..<mu {
                let g = -Double(gKss[i * mu + j])
                if i == j { gNs[i] += (g + ridgeGradient) * kernel.diagonalSlope; continue }
                let d = kernel.partials(dot: Double(dss[i * mu + j]), normX: Double(ns[i]), normY: Double(ns[j]))
                gDss[i * mu + j] += Float(g * d.a)
                gNs[i] += g * d.p
                gNs[j] += g * d.q
            }
        }
        for i in 0..<mu { for j in 0..<i { let t = gDss[i * mu + j] + gDss[j * mu + i]; gDss[i * mu + j] = t; gDss[j * mu + i] = t } }
        var part = [Float](repeating: 0, count: mu * n)
        try algebra.gemm(gDss, s, into: &part, m: mu, n: n, k: mu)
        var gz = [Float](repeating: 0, count: mu * n)
        for i in 0..<mu {
            let gn = Float(2 * gNs[i])
            for j in 0..<n {
                let k = i * n + j
                let total = gS[k] + part[k] + gn * s[k] + cardinalityGradient
                gz[k] = total * s[k] * (1 - s[k]) * invTau
            }
        }
        return (loss, gz)
    }

    /// Cholesky solve of A·X = B in place of `b`, factoring `a` first unless `factored`.
    static func solve(_ a: inout [Float], _ b: inout [Float], n: Int, nrhs: Int, algebra: DenseAlgebra, factored: Bool) throws(CFError) {
        try a.withUnsafeMutableBufferPointer { (ap) throws(CFError) in
            try b.withUnsafeMutableBufferPointer { (bp) throws(CFError) in
                if factored { try algebra.solveFactored(ap.baseAddress!, n: n, bp.baseAddress!, nrhs: nrhs) }
                else { try algebra.solveSPD(ap.baseAddress!, n: n, bp.baseAddress!, nrhs: nrhs) }
            }
        }
    }

    /// Learns the summary of `train` [U × I]; returns its rows (μ × I CSR over the same items), the loss of each
    /// step and the step whose summary it is. `progress(step, loss)` is called after every step; with
    /// `options.selectEvery` > 0, `select(summary, step)` scores the summary every that many steps (higher is
    /// better) and the best one is returned.
    public static func distill(train: InteractionMatrix, options: Options, algebra: DenseAlgebra, pool: ThreadPool,
                               select: ((InteractionMatrix, Int) throws(CFError) -> Double)? = nil,
                               progress: (Int, Double) -> Void = { _, _ in }) throws(CFError) -> (summary: InteractionMatrix, losses: [Double], step: Int) {
        let u = train.rows, n = train.columns, mu = options.users
        var o = options
        o.meanDegree = Double(train.nonZeros) / Double(max(u, 1))
        // Masking the shown items needs targets beyond them: the teacher's scores, or the items dropout hid.
        o.maskInput = o.maskInput && (o.loss == .teacher || (o.loss == .squared && o.inputDropout > 0))
        guard mu >= 2, mu <= u else { throw .invalidOptions("--users must be between 2 and the \(u) real users (got \(mu))") }
        guard o.temperature > 0, o.steps >= 0, o.batchUsers >= 1 else { throw .invalidOptions("Distill-CF needs temperature > 0, steps ≥ 0, batch ≥ 1") }
        try MemoryBudget.check(bytes: 4 * (6 * mu * n + 3 * min(o.batchUsers, u) * n + 4 * mu * mu), what: "Distill-CF with \(mu) users × \(n) items")
        var rng = SeededRandom(seed: o.seed)
        // Start from μ distinct random real users.
        var order = Array(0..<u)
        for i in 0..<mu { order.swapAt(i, i + rng.nextBelow(u - i)) }
        var z = [Float](repeating: -o.initialLogit, count: mu * n)
        for i in 0..<mu { for c in train.row(order[i]) { z[i * n + Int(c)] = o.initialLogit } }
        var m = [Float](repeating: 0, count: mu * n), v = m
        let (b1, b2, eps): (Float, Float, Float) = (0.9, 0.999, 1e-8)
        var losses: [Double] = []
        var best: (z: [Float], score: Double, step: Int)?
        let bu = min(o.batchUsers, u)
        var batch = [Float](repeating: 0, count: bu * n)
        var noise = [Float](repeating: 0, count: mu * n), noisy = false
        // The teacher: full-data ∞-AE's scores for every real user (its own items as the context) [U × I].
        var teacher: [Float] = []
        var targetBatch: [Float] = []
        let dropout = Double(o.inputDropout)
        // With dropout and no teacher, the target is the batch's full rows, the input the rows with items hidden.
        let rowTarget = dropout > 0 && o.loss != .teacher
        if rowTarget { targetBatch = [Float](repeating: 0, count: bu * n) }
        if o.loss == .teacher {
            try MemoryBudget.check(bytes: InfiniteAEModel.fitBytes(users: u, items: n) + 4 * u * n, what: "the full-data ∞-AE teacher (--loss squared needs none)")
            let users = IDMap((0..<Int64(u))), items = IDMap((0..<Int64(n)))
            let full = try InfiniteAEModel.fit(train: train, users: users, items: items, lambda: o.teacherLambda, algebra: algebra, pool: pool)
            teacher = [Float](repeating: 0, count: u * n)
            let block = 512
            for start in stride(from: 0, to: u, by: block) {
                let rows = start..<min(u, start + block)
                try teacher.withUnsafeMutableBufferPointer { (tp) throws(CFError) in
                    try full.score(context: train, rows: rows, userIndex: rows.map { Int32($0) }, into: tp.baseAddress! + start * n, algebra: algebra, pool: pool)
                }
            }
            targetBatch = [Float](repeating: 0, count: bu * n)
        }
        for step in 0..<o.steps {
            var users = Array(0..<u)
            if bu < u { for i in 0..<bu { users.swapAt(i, i + rng.nextBelow(u - i)) } }
            for k in 0..<(bu * n) { batch[k] = 0 }
            if rowTarget { for k in 0..<(bu * n) { targetBatch[k] = 0 } }
            for (r, user) in users.prefix(bu).enumerated() {
                for c in train.row(user) {
                    if rowTarget { targetBatch[r * n + Int(c)] = 1 }
                    if dropout == 0 || rng.nextDouble() >= dropout { batch[r * n + Int(c)] = 1 }
                }
                if !teacher.isEmpty { targetBatch[(r * n)..<((r + 1) * n)] = teacher[(user * n)..<((user + 1) * n)] }
            }
            // Gumbel-softmax noise: throughout for a binary summary; for a soft one annealed to zero, after which the
            // buffer is zeroed once and stays so.
            let scale: Float = o.summary == .binary ? 1 : o.noiseAnneal > 0 ? max(0, 1 - Float(step) / (o.noiseAnneal * Float(o.steps))) : 0
            if scale > 0 {
                for k in 0..<(mu * n) {
                    let x = min(max(rng.nextDouble(), 1e-12), 1 - 1e-12)
                    noise[k] = scale * Float(log(x / (1 - x)))
                }
                noisy = true
            } else if noisy {
                for k in 0..<(mu * n) { noise[k] = 0 }
                noisy = false
            }
            let (loss, g) = try lossAndGradient(z: z, noise: noise, batch: batch, target: targetBatch.isEmpty ? nil : targetBatch, batchUsers: bu, summaryUsers: mu, items: n, options: o,
                                                algebra: algebra, pool: pool)
            guard loss.isFinite else { throw .numerical("Distill-CF diverged at step \(step + 1) (loss \(loss)); lower --lr") }
            losses.append(loss)
            let t = Float(step + 1)
            let c1 = 1 - pow(b1, t), c2 = 1 - pow(b2, t)
            let lr = o.cosineDecay ? o.learningRate * (0.05 + 0.95 * 0.5 * (1 + cos(Float.pi * Float(step) / Float(max(o.steps - 1, 1))))) : o.learningRate
            for k in 0..<(mu * n) {
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k]
                z[k] -= lr * (m[k] / c1) / ((v[k] / c2).squareRoot() + eps)
            }
            progress(step + 1, loss)
            if let select, o.selectEvery > 0, (step + 1) % o.selectEvery == 0 || step + 1 == o.steps {
                let score = try select(try summaryMatrix(z: z, users: mu, items: n, options: o), step + 1)
                if best == nil || score > best!.score { best = (z, score, step + 1) }
            }
        }
        if let best { return (try summaryMatrix(z: best.z, users: mu, items: n, options: o), losses, best.step) }
        return (try summaryMatrix(z: z, users: mu, items: n, options: o), losses, o.steps)
    }

    /// The summary the logits `z` [μ × I] stand for: binary (Z > 0) or soft (σ(Z/τ), entries below the floor dropped).
    static func summaryMatrix(z: [Float], users mu: Int, items n: Int, options o: Options) throws(CFError) -> InteractionMatrix {
        var start = [0], cols: [Int32] = [], values: [Float] = []
        for i in 0..<mu {
            for j in 0..<n {
                switch o.summary {
                case .binary: if z[i * n + j] > 0 { cols.append(Int32(j)) }
                case .soft:
                    let v = 1 / (1 + exp(-z[i * n + j] / o.temperature))
                    if v >= o.softFloor { cols.append(Int32(j)); values.append(v) }
                }
            }
            start.append(cols.count)
        }
        return try InteractionMatrix(rows: mu, columns: n, rowStart: start, columnIndices: cols, values: o.summary == .soft ? values : nil)
    }
}
