import RecKitCore
import RecKitKernels

/// EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).
///
///     P = (XᵀX + λI)⁻¹,   B = I − P·diag(1/diag(P))   (so diag(B) = 0),   scores = X_context · B
///
/// X is the binary U × I training matrix; B is I × I. The inverse is LAPACK's Cholesky (`spotrf`+`spotri`) in
/// fp32. Memory while fitting: the dense X (4·U·I bytes) and one I × I matrix (4·I² bytes).
public struct EASEModel: CFModel {
    public let kind = CFModelKind.ease
    public let users: IDMap
    public let items: IDMap
    public let itemCounts: [Int]
    public let lambda: Float
    /// B [I × I], row-major.
    public let weights: [Float]
    public var hyperparameters: [String: Double] { ["lambda": Double(lambda)] }

    /// Bytes the fit needs for U users and I items.
    public static func fitBytes(users: Int, items: Int) -> Int { 4 * (users * items + items * items) }

    public static func fit(train: InteractionMatrix, users: IDMap, items: IDMap, lambda: Float, algebra: DenseAlgebra) throws(CFError) -> EASEModel {
        let gram = try gramMatrix(train, algebra: algebra)
        return try fit(gram: gram, train: train, users: users, items: items, lambda: lambda, algebra: algebra)
    }

    /// XᵀX [I × I], upper triangle only (row-major; exact: counts below 2²⁴).
    public static func gramMatrix(_ train: InteractionMatrix, algebra: DenseAlgebra) throws(CFError) -> [Float] {
        try MemoryBudget.check(bytes: fitBytes(users: train.rows, items: train.columns), what: "EASE on \(train.rows) users × \(train.columns) items")
        let n = train.columns
        let x = AlignedBuffer<Float>(count: max(1, train.rows * n))
        train.densify(rows: 0..<train.rows, into: x.pointer)
        var g = [Float](repeating: 0, count: n * n)
        try g.withUnsafeMutableBufferPointer { (gp) throws(CFError) in
            try algebra.gram(x.pointer, n: n, k: train.rows, transpose: true, into: gp.baseAddress!, upperOnly: true)
        }
        return g
    }

    /// The fit from a precomputed Gram matrix (λ search reuses one Gram matrix).
    public static func fit(gram: [Float], train: InteractionMatrix, users: IDMap, items: IDMap, lambda: Float,
                           algebra: DenseAlgebra) throws(CFError) -> EASEModel {
        guard lambda > 0, lambda.isFinite else { throw .invalidOptions("EASE needs λ > 0 (got \(lambda))") }
        let n = train.columns
        var p = gram
        for i in 0..<n { p[i * n + i] += lambda }
        try p.withUnsafeMutableBufferPointer { (pp) throws(CFError) in try algebra.invertSPD(pp.baseAddress!, n: n) }
        // B_ij = −P_ij / P_jj for i ≠ j, B_ii = 0.
        var inv = [Float](repeating: 0, count: n)
        for j in 0..<n { inv[j] = 1 / p[j * n + j] }
        for i in 0..<n {
            for j in 0..<n { p[i * n + j] = i == j ? 0 : -p[i * n + j] * inv[j] }
        }
        return EASEModel(users: users, items: items, itemCounts: train.columnCounts(), lambda: lambda, weights: p)
    }

    init(users: IDMap, items: IDMap, itemCounts: [Int], lambda: Float, weights: [Float]) {
        self.users = users; self.items = items; self.itemCounts = itemCounts; self.lambda = lambda; self.weights = weights
    }

    public func score(context: InteractionMatrix, rows: Range<Int>, userIndex: [Int32], into out: UnsafeMutablePointer<Float>,
                      algebra: DenseAlgebra, pool: ThreadPool) throws(CFError) {
        let n = items.count
        let x = AlignedBuffer<Float>(count: max(1, rows.count * n))
        context.densify(rows: rows, into: x.pointer)
        try weights.withUnsafeBufferPointer { (w) throws(CFError) in
            try algebra.gemm(x.pointer, w.baseAddress!, into: out, m: rows.count, n: n, k: n)
        }
    }

    public func tensors() -> [CFTensor] { [CFTensor(name: "B", shape: [items.count, items.count], floats: weights)] }
}
