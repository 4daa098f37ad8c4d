import RecKitCore
import RecKitKernels

/// ∞-AE (Sachdeva, Dhaliwal, Wu, McAuley: "Infinite Recommendation Networks", NeurIPS 2022): kernel ridge
/// regression from a user's item vector to itself, with the NTK Θ of an infinitely wide one-hidden-layer
/// autoencoder (`NeuralTangentKernel`), in the paper's dual form over the U training users:
///
///     K = Θ(X, X)  [U × U],   α = (K + λ·tr(K)/U · I)⁻¹ X  [U × I],   scores(x) = Θ(x, X) · α
///
/// λ is scaled by the mean diagonal of K as in the paper's code. Fitting costs O(U²·I + U³) and holds K and its
/// Cholesky factor in place (4·U² bytes), the dense X and α (4·U·I bytes each): `fitBytes`.
public struct InfiniteAEModel: CFModel {
    public let kind = CFModelKind.infae
    public let users: IDMap
    public let items: IDMap
    public let itemCounts: [Int]
    public let lambda: Float
    /// The training matrix (its rows are the kernel's support).
    public let train: InteractionMatrix
    /// α [U × I], row-major.
    public let alpha: [Float]
    let kernel: NeuralTangentKernel
    /// The training matrix as dense 0/1 rows [U × I] and its row norms ‖x‖² [U], built once: every scored batch
    /// multiplies by it.
    let trainDense: AlignedBuffer<Float>
    let trainNorms: [Float]
    public var hyperparameters: [String: Double] { ["lambda": Double(lambda)] }

    public static func fitBytes(users: Int, items: Int) -> Int { 4 * (users * users + 2 * users * items) }

    /// Θ(X, X) [U × U] for the training matrix, upper triangle only (row-major; the Cholesky solve reads no
    /// more): λ search reuses it.
    public static func kernelMatrix(_ train: InteractionMatrix, algebra: DenseAlgebra, pool: ThreadPool) throws(CFError) -> [Float] {
        try MemoryBudget.check(bytes: fitBytes(users: train.rows, items: train.columns), what: "∞-AE on \(train.rows) users × \(train.columns) items")
        let u = train.rows, n = train.columns
        let x = AlignedBuffer<Float>(count: max(1, u * n))
        train.densify(rows: 0..<u, into: x.pointer)
        var k = [Float](repeating: 0, count: u * u)
        let norms = (0..<u).map { train.rowNorm($0) }
        try k.withUnsafeMutableBufferPointer { (kp) throws(CFError) in
            try algebra.gram(x.pointer, n: u, k: n, transpose: false, into: kp.baseAddress!, upperOnly: true)
            NeuralTangentKernel(inputDimension: n).apply(kp.baseAddress!, rows: u, cols: u, rowNorms: norms, colNorms: norms, pool: pool, upperOnly: true)
        }
        return k
    }

    public static func fit(train: InteractionMatrix, users: IDMap, items: IDMap, lambda: Float, algebra: DenseAlgebra,
                           pool: ThreadPool) throws(CFError) -> InfiniteAEModel {
        let k = try kernelMatrix(train, algebra: algebra, pool: pool)
        return try fit(kernel: consume k, train: train, users: users, items: items, lambda: lambda, algebra: algebra)
    }

    /// The fit from a precomputed kernel matrix (factored in place when the caller gives it up, copied otherwise).
    public static func fit(kernel: consuming [Float], train: InteractionMatrix, users: IDMap, items: IDMap, lambda: Float,
                           algebra: DenseAlgebra) throws(CFError) -> InfiniteAEModel {
        guard lambda >= 0, lambda.isFinite else { throw .invalidOptions("∞-AE needs λ ≥ 0 (got \(lambda))") }
        let u = train.rows, n = train.columns
        var a = consume kernel
        var trace: Double = 0
        for i in 0..<u { trace += Double(a[i * u + i]) }
        let ridge = Float(Double(lambda) * trace / Double(max(u, 1)))
        for i in 0..<u { a[i * u + i] += ridge }
        var alpha = [Float](repeating: 0, count: u * n)
        alpha.withUnsafeMutableBufferPointer { train.densify(rows: 0..<u, into: $0.baseAddress!) }
        try a.withUnsafeMutableBufferPointer { (ap) throws(CFError) in
            try alpha.withUnsafeMutableBufferPointer { (bp) throws(CFError) in
                try algebra.solveSPD(ap.baseAddress!, n: u, bp.baseAddress!, nrhs: n)
            }
        }
        return InfiniteAEModel(users: users, items: items, itemCounts: train.columnCounts(), lambda: lambda, train: train, alpha: alpha)
    }

    init(users: IDMap, items: IDMap, itemCounts: [Int], lambda: Float, train: InteractionMatrix, alpha: [Float]) {
        self.users = users; self.items = items; self.itemCounts = itemCounts; self.lambda = lambda; self.train = train; self.alpha = alpha
        kernel = NeuralTangentKernel(inputDimension: items.count)
        trainDense = AlignedBuffer<Float>(count: max(1, train.rows * items.count))
        train.densify(rows: 0..<train.rows, into: trainDense.pointer)
        trainNorms = (0..<train.rows).map { train.rowNorm($0) }
    }

    public func score(context: InteractionMatrix, rows: Range<Int>, userIndex: [Int32], into out: UnsafeMutablePointer<Float>,
                      algebra: DenseAlgebra, pool: ThreadPool) throws(CFError) {
        let u = train.rows, n = items.count, b = rows.count
        let xc = AlignedBuffer<Float>(count: max(1, b * n))
        context.densify(rows: rows, into: xc.pointer)
        let k = AlignedBuffer<Float>(count: max(1, b * u))
        try algebra.gemm(xc.pointer, trainDense.pointer, into: k.pointer, m: b, n: u, k: n, transB: true)
        kernel.apply(k.pointer, rows: b, cols: u, rowNorms: rows.map { context.rowNorm($0) }, colNorms: trainNorms, pool: pool)
        try alpha.withUnsafeBufferPointer { (ap) throws(CFError) in
            try algebra.gemm(k.pointer, ap.baseAddress!, into: out, m: b, n: n, k: u)
        }
    }

    public func tensors() -> [CFTensor] {
        [CFTensor(name: "alpha", shape: [users.count, items.count], floats: alpha),
         CFTensor(name: "train.row_start", shape: [train.rowStart.count], int64s: train.rowStart.map(Int64.init)),
         CFTensor(name: "train.columns", shape: [train.columnIndices.count], int64s: train.columnIndices.map(Int64.init))]
            + (train.values.map { [CFTensor(name: "train.values", shape: [$0.count], floats: $0)] } ?? [])
    }
}
