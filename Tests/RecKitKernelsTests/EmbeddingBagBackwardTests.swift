import RecKitCore
@testable import RecKitKernels
import RecKitTestSupport
import Testing

/// Runs a backward variant on a copy of the table/state; returns (table, state, error).
func runBackward(_ v: KernelVariant, _ c: BagCase, mode: PoolingMode, update: SparseUpdate, grad: [Float],
                 state initialState: [Float]? = nil, pool: ThreadPool, useOffsets: Bool = true)
    -> (table: [Float], state: [Float], error: KernelError?) {
    let table = AlignedBuffer(c.table.toArray())
    let stateCount = update.optimizer.stateCount(rows: c.rows, dim: c.dim)
    let state = AlignedBuffer<Float>(initialState ?? [Float](repeating: 0.1, count: stateCount))
    let g = AlignedBuffer(grad)
    let ws = EmbeddingBackwardWorkspace()
    let err = c.withBags(useOffsets: useOffsets) { bags in
        KernelRegistry.embeddingBagBackward.variant(v)(
            EmbeddingTableView(weights: table.pointer, rows: c.rows, dim: c.dim),
            state.count > 0 ? state.pointer : nil, state.count, bags, mode,
            MatrixView(base: g.pointer, rows: c.lengths.count, columns: c.dim), update, ws, pool)
    }
    return (table.toArray(), state.toArray(), err)
}

@Suite("Embedding bag backward fused with optimizers")
struct EmbeddingBagBackwardTests {
    static let pool2 = ThreadPool(threads: 2)

    @Test("optimized equals reference for every optimizer, mode and dim (duplicates included)",
          arguments: [1, 15, 16, 17, 33, 64])
    func matchesReference(dim: Int) {
        for opt in SparseOptimizerKind.allCases {
            for mode in PoolingMode.allCases {
                for weighted in [false, true] {
                    let c = BagCase(seed: UInt64(dim), rows: 300, dim: dim, bags: 700, maxLength: 5,
                                    weighted: weighted, hot: 40)
                    var data = TestData(seed: 77)
                    let grad = data.floats(c.lengths.count * dim)
                    let update = SparseUpdate(optimizer: opt, learningRate: 0.05, eps: 1e-8, weightDecay: weighted ? 0.01 : 0)
                    let ref = runBackward(.reference, c, mode: mode, update: update, grad: grad, pool: Self.pool2)
                    // SGD and Adagrad do the same operations in the same order; row-wise Adagrad's Σg² is a SIMD tree sum.
                    let tol: Tolerance = opt == .rowWiseAdagrad ? .reassociated : .exact
                    for pool in [ThreadPool(threads: 1), Self.pool2] {
                        let o = runBackward(.optimized, c, mode: mode, update: update, grad: grad, pool: pool, useOffsets: weighted)
                        #expect(o.error == nil && ref.error == nil)
                        assertClose(o.table, ref.table, tol, "\(opt) \(mode) dim \(dim) weights")
                        assertClose(o.state, ref.state, tol, "\(opt) \(mode) dim \(dim) state")
                    }
                }
            }
        }
    }

    @Test("duplicates are aggregated then updated once (row-wise Adagrad by hand)")
    func duplicateAggregation() {
        // One bag holding row 1 twice: g_row = 2·gradOut. h = mean(g²); w ← w − lr·g/(√h + eps).
        var c = BagCase(seed: 1, rows: 3, dim: 2, bags: 1, maxLength: 1)
        c.lengths = [2]
        c.indices = [1, 1]
        c.weights = nil
        let g: [Float] = [0.5, -1.0]
        for v in KernelVariant.allCases {
            let r = runBackward(v, c, mode: .sum, update: SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 0.1),
                                grad: g, state: [0, 0, 0], pool: Self.pool2)
            let agg: [Float] = [1.0, -2.0]
            let h: Float = (1 + 4) / 2
            let w0 = c.table.toArray()
            #expect(r.state == [0, h, 0])
            let m = 0.1 / (h.squareRoot() + 1e-8)
            assertClose([r.table[2], r.table[3]], [w0[2] - m * agg[0], w0[3] - m * agg[1]], .reassociated, "\(v)")
            assertClose(Array(r.table[0..<2]) + Array(r.table[4..<6]), Array(w0[0..<2]) + Array(w0[4..<6]), .exact, "untouched rows")
        }
    }

    @Test("SGD step equals −lr × finite-difference gradient of the pooled loss", arguments: PoolingMode.allCases)
    func finiteDifferences(mode: PoolingMode) {
        let c = BagCase(seed: 5, rows: 12, dim: 17, bags: 9, maxLength: 4, weighted: true, hot: 6)
        var data = TestData(seed: 3)
        let r = data.floats(c.lengths.count * c.dim)
        // L = Σ r ⊙ pooled  ⇒  ∂L/∂pooled = r.
        let step = runBackward(.optimized, c, mode: mode, update: SparseUpdate(optimizer: .sgd, learningRate: 1),
                               grad: r, pool: Self.pool2)
        let w0 = c.table.toArray()
        let analytic = zip(w0, step.table).map { $0 - $1 }
        let loss: () -> Double = {
            let f = runForward(.reference, c, mode: mode, useOffsets: true, pool: Self.pool2).out
            return zip(f, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        var numeric: [Float] = []
        for i in 0..<(c.rows * c.dim) { numeric.append(Float(finiteDifference(c.table.pointer, i, loss))) }
        assertClose(analytic, numeric, .finiteDifference, "embedding backward \(mode)")
    }

    @Test("errors: bad index leaves the table untouched; wrong state size is refused")
    func errors() {
        var c = BagCase(seed: 2, rows: 20, dim: 16, bags: 600, maxLength: 3)
        let grad = [Float](repeating: 1, count: c.lengths.count * 16)
        c.indices[c.indices.count - 1] = 20
        for v in KernelVariant.allCases {
            let r = runBackward(v, c, mode: .sum, update: SparseUpdate(optimizer: .sgd, learningRate: 1), grad: grad, pool: Self.pool2)
            #expect(r.error == .indexOutOfRange(position: c.indices.count - 1, index: 20, rows: 20))
            #expect(r.table == c.table.toArray())
            let s = runBackward(v, c, mode: .sum, update: SparseUpdate(optimizer: .adagrad, learningRate: 1), grad: grad,
                                state: [0, 0], pool: Self.pool2)
            #expect(s.error == .optimizerStateMismatch(expected: 320, got: 2))
        }
    }
}
