import RecKitCore
@testable import RecKitKernels
import RecKitTestSupport
import Testing

/// Several tables (mixed dims, sizes, boundary forms, weights) looked up for one batch.
struct TableBatchCase {
    var cases: [BagCase]
    var useOffsets: [Bool]
    var columnOffsets: [Int]
    var width: Int

    init(seed: UInt64, dims: [Int], bags: Int, maxLength: Int, weighted: Bool = false, hot: Int? = nil) {
        cases = dims.enumerated().map { i, d in
            BagCase(seed: seed &+ UInt64(i) &* 1000, rows: 40 + 30 * i, dim: d, bags: bags, maxLength: maxLength,
                    weighted: weighted && i % 2 == 0, hot: hot)
        }
        useOffsets = dims.indices.map { $0 % 2 == 0 }
        var col = 2
        columnOffsets = dims.map { d in defer { col += d + 1 }; return col }
        width = col + 3
    }

    /// Calls `body` with a TableBatch over all cases (arrays kept alive for the call).
    func with<R>(_ body: (TableBatch) -> R) -> R {
        func nest(_ i: Int, _ acc: [JaggedBags]) -> R {
            if i == cases.count {
                return body(TableBatch(tables: cases.map(\.view), bags: acc, columnOffsets: columnOffsets))
            }
            return cases[i].withBags(useOffsets: useOffsets[i]) { nest(i + 1, acc + [$0]) }
        }
        return nest(0, [])
    }

    var b: Int { cases[0].lengths.count }
}

@Suite("Table-batched embedding kernels")
struct TableBatchTests {
    static let pool2 = ThreadPool(threads: 2)

    func forward(_ v: KernelVariant, _ c: TableBatchCase, _ mode: PoolingMode, pool: ThreadPool) -> ([Float], KernelError?) {
        let out = AlignedBuffer<Float>(count: max(c.b, 1) * c.width)
        out.fill(-3)
        let err = c.with { KernelRegistry.tableBatchForward.variant(v)($0, mode, MatrixView(base: out.pointer, rows: c.b, columns: c.width), pool) }
        return (out.toArray(), err)
    }

    @Test("forward equals the per-table reference bit for bit, gaps between tables untouched")
    func forwardMatches() {
        for (i, dims) in [[16], [16, 16, 16], [1, 17, 33, 16], [64, 3]].enumerated() {
            for mode in PoolingMode.allCases {
                for maxLength in [0, 1, 5] {
                    let c = TableBatchCase(seed: UInt64(i * 10 + maxLength), dims: dims, bags: 300, maxLength: maxLength, weighted: true)
                    let ref = forward(.reference, c, mode, pool: Self.pool2)
                    for pool in [ThreadPool(threads: 1), Self.pool2] {
                        let opt = forward(.optimized, c, mode, pool: pool)
                        #expect(ref.1 == nil && opt.1 == nil)
                        assertClose(opt.0, ref.0, .exact, "dims \(dims) \(mode) maxLength \(maxLength)")
                    }
                }
            }
        }
    }

    @Test("backward equals the per-table reference for every optimizer", arguments: SparseOptimizerKind.allCases)
    func backwardMatches(opt: SparseOptimizerKind) {
        for (i, dims) in [[16, 16], [1, 17, 33, 16]].enumerated() {
            for mode in PoolingMode.allCases {
                let c = TableBatchCase(seed: UInt64(i), dims: dims, bags: 400, maxLength: 4, weighted: true, hot: 25)
                var data = TestData(seed: 5)
                let grad = data.floats(c.b * c.width)
                let update = SparseUpdate(optimizer: opt, learningRate: 0.1, weightDecay: mode == .mean ? 0.01 : 0)
                var results: [[Float]] = []
                for (v, pool) in [(KernelVariant.reference, Self.pool2), (.optimized, Self.pool2), (.optimized, ThreadPool(threads: 1))] {
                    let tables = c.cases.map { AlignedBuffer($0.table.toArray()) }
                    let states = c.cases.map { AlignedBuffer<Float>(count: opt.stateCount(rows: $0.rows, dim: $0.dim)) }
                    for s in states { s.fill(0.05) }
                    var copy = c
                    for k in copy.cases.indices { copy.cases[k].table = tables[k] }
                    let g = AlignedBuffer(grad)
                    let err = copy.with {
                        KernelRegistry.tableBatchBackward.variant(v)($0, states.map(\.buffer), mode,
                            MatrixView(base: g.pointer, rows: c.b, columns: c.width), update, EmbeddingBackwardWorkspace(), pool)
                    }
                    #expect(err == nil)
                    results.append(tables.flatMap { $0.toArray() } + states.flatMap { $0.toArray() })
                }
                let tol: Tolerance = opt == .rowWiseAdagrad ? .reassociated : .exact
                assertClose(results[1], results[0], tol, "\(opt) dims \(dims) \(mode) t2")
                assertClose(results[2], results[0], tol, "\(opt) dims \(dims) \(mode) t1")
            }
        }
    }

    @Test("errors name the table and match between variants; nothing is updated on error")
    func errors() {
        var c = TableBatchCase(seed: 3, dims: [16, 8, 16], bags: 200, maxLength: 3)
        let bad = c.cases[1].indices.count - 1
        c.cases[1].indices[bad] = Int64(c.cases[1].rows)
        let expected = KernelError.inTable(1, .indexOutOfRange(position: bad, index: c.cases[1].rows, rows: c.cases[1].rows))
        for v in KernelVariant.allCases {
            #expect(forward(v, c, .sum, pool: Self.pool2).1 == expected)
            let before = c.cases.map { $0.table.toArray() }
            let g = AlignedBuffer<Float>(count: c.b * c.width)
            g.fill(1)
            let err = c.with {
                KernelRegistry.tableBatchBackward.variant(v)($0, c.cases.map { _ in UnsafeMutableBufferPointer<Float>(start: nil, count: 0) }, .sum,
                    MatrixView(base: g.pointer, rows: c.b, columns: c.width), SparseUpdate(optimizer: .sgd, learningRate: 1),
                    EmbeddingBackwardWorkspace(), Self.pool2)
            }
            #expect(err == expected)
            #expect(c.cases.map { $0.table.toArray() } == before)
            let noState = c.with {
                KernelRegistry.tableBatchBackward.variant(v)($0, c.cases.map { _ in UnsafeMutableBufferPointer<Float>(start: nil, count: 0) }, .sum,
                    MatrixView(base: g.pointer, rows: c.b, columns: c.width), SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 1),
                    EmbeddingBackwardWorkspace(), Self.pool2)
            }
            #expect(noState == .inTable(0, .optimizerStateMismatch(expected: c.cases[0].rows, got: 0)))
        }
        // Columns that do not fit the output are a layout error.
        var narrow = TableBatchCase(seed: 4, dims: [16, 16], bags: 10, maxLength: 2)
        narrow.width = 20
        #expect(forward(.optimized, narrow, .sum, pool: Self.pool2).1 != nil)
    }
}
