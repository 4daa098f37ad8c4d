import RecKitCore
@testable import RecKitKernels
import RecKitTestSupport
import Testing

/// A jagged batch with its backing arrays kept alive.
struct BagCase {
    var rows: Int
    var dim: Int
    var table: AlignedBuffer<Float>
    var indices: [Int64]
    var lengths: [Int32]
    var weights: [Float]?

    init(seed: UInt64, rows: Int, dim: Int, bags: Int, maxLength: Int, weighted: Bool = false, hot: Int? = nil) {
        var data = TestData(seed: seed)
        self.rows = rows
        self.dim = dim
        table = data.buffer(rows * dim)
        lengths = data.lengths(bags, maxLength: maxLength)
        let n = Int(lengths.reduce(0, +))
        indices = data.ids(n, rows: hot.map { min($0, rows) } ?? rows)  // `hot` forces duplicates
        weights = weighted ? data.floats(n, 0.1, 2) : nil
    }

    /// Calls `body` with the batch in the offsets or lengths form.
    func withBags<R>(useOffsets: Bool, _ body: (JaggedBags) throws -> R) rethrows -> R {
        let offs = offsets(fromLengths: lengths)
        return try indices.withUnsafeBufferPointer { ip in
            try (useOffsets ? offs : lengths).withUnsafeBufferPointer { bp in
                try (weights ?? []).withUnsafeBufferPointer { wp in
                    let bags = JaggedBags(indices: ip.baseAddress ?? UnsafePointer(bitPattern: 64)!, count: indices.count,
                                          bagCount: lengths.count,
                                          boundaries: useOffsets ? .offsets(bp.baseAddress!) : .lengths(bp.baseAddress ?? UnsafePointer(bitPattern: 64)!),
                                          weights: weights == nil ? nil : wp.baseAddress)
                    return try body(bags)
                }
            }
        }
    }

    var view: EmbeddingTableView { EmbeddingTableView(weights: table.pointer, rows: rows, dim: dim) }
}

/// Runs the forward variant into a wider strided output (columns `left ..< left+D` of a `width`-wide buffer,
/// sentinel-filled) and returns (the D columns, whether the sentinel elsewhere survived, error).
func runForward(_ v: KernelVariant, _ c: BagCase, mode: PoolingMode, useOffsets: Bool, pool: ThreadPool)
    -> (out: [Float], untouched: Bool, error: KernelError?) {
    let left = 3, width = c.dim + 7, b = c.lengths.count
    let out = AlignedBuffer<Float>(count: max(b, 1) * width)
    out.fill(-777)
    let err = c.withBags(useOffsets: useOffsets) { bags in
        KernelRegistry.embeddingBagForward.variant(v)(c.view, bags, mode,
            MatrixView(base: out.pointer + left, rows: b, columns: c.dim, rowStride: width), pool)
    }
    var cols: [Float] = []
    var untouched = true
    for r in 0..<b {
        for j in 0..<width {
            let x = out.pointer[r * width + j]
            if j >= left && j < left + c.dim { cols.append(x) } else if x != -777 { untouched = false }
        }
    }
    return (cols, untouched, err)
}

@Suite("Embedding bag forward: optimized vs reference")
struct EmbeddingBagForwardTests {
    static let pool2 = ThreadPool(threads: 2)

    @Test("equal bit for bit across dims, modes, weights and boundary forms",
          arguments: [1, 3, 15, 16, 17, 31, 32, 33, 64, 100])
    func matchesReference(dim: Int) {
        for (i, mode) in PoolingMode.allCases.enumerated() {
            for weighted in [false, true] {
                for useOffsets in [true, false] {
                    let c = BagCase(seed: UInt64(dim * 100 + i * 10 + (weighted ? 1 : 0)), rows: 50, dim: dim,
                                    bags: 37, maxLength: 6, weighted: weighted)
                    let ref = runForward(.reference, c, mode: mode, useOffsets: useOffsets, pool: Self.pool2)
                    for pool in [ThreadPool(threads: 1), Self.pool2] {
                        let opt = runForward(.optimized, c, mode: mode, useOffsets: useOffsets, pool: pool)
                        #expect(ref.error == nil && opt.error == nil)
                        #expect(opt.untouched, "optimized wrote outside its columns")
                        assertClose(opt.out, ref.out, .exact, "dim \(dim) \(mode) weighted=\(weighted)")
                    }
                    #expect(ref.untouched)
                }
            }
        }
    }

    @Test("edge shapes: empty batch, empty bags, one-row table, all duplicates, many bags")
    func edges() {
        let cases = [
            BagCase(seed: 1, rows: 5, dim: 16, bags: 0, maxLength: 3),
            BagCase(seed: 2, rows: 5, dim: 17, bags: 9, maxLength: 0),
            BagCase(seed: 3, rows: 1, dim: 15, bags: 20, maxLength: 5),
            BagCase(seed: 4, rows: 1000, dim: 16, bags: 4000, maxLength: 3, hot: 3),
            BagCase(seed: 5, rows: 100_000, dim: 32, bags: 3000, maxLength: 40),
        ]
        for c in cases {
            for mode in PoolingMode.allCases {
                let ref = runForward(.reference, c, mode: mode, useOffsets: true, pool: Self.pool2)
                let opt = runForward(.optimized, c, mode: mode, useOffsets: true, pool: Self.pool2)
                #expect(opt.error == nil)
                #expect(opt.untouched)
                assertClose(opt.out, ref.out, .exact, "rows \(c.rows) bags \(c.lengths.count) \(mode)")
            }
        }
        // Mean of an empty bag is zero, not NaN.
        let empty = runForward(.optimized, cases[1], mode: .mean, useOffsets: false, pool: Self.pool2)
        #expect(empty.out.allSatisfy { $0 == 0 })
    }

    @Test("bad input gives the same typed error in both variants")
    func errors() {
        var c = BagCase(seed: 9, rows: 10, dim: 16, bags: 600, maxLength: 4)
        let n = c.indices.count
        func both(_ c: BagCase, offsets: Bool = true) -> (KernelError?, KernelError?) {
            (runForward(.reference, c, mode: .sum, useOffsets: offsets, pool: Self.pool2).error,
             runForward(.optimized, c, mode: .sum, useOffsets: offsets, pool: Self.pool2).error)
        }
        var bad = c
        bad.indices[n - 5] = 10
        bad.indices[n - 2] = -1
        var (r, o) = both(bad)
        #expect(r == .indexOutOfRange(position: n - 5, index: 10, rows: 10))
        #expect(o == r)
        bad = c
        bad.indices[0] = Int64.min
        (r, o) = both(bad)
        #expect(r == .indexOutOfRange(position: 0, index: Int(Int64.min), rows: 10))
        #expect(o == r)
        bad = c
        bad.lengths[7] = -1
        (r, o) = both(bad, offsets: false)
        #expect(r == .negativeLength(bag: 7, length: -1))
        #expect(o == r)
        bad = c
        bad.lengths[7] += 1  // sums to N + 1
        (r, o) = both(bad, offsets: false)
        #expect(r == .lengthsSumMismatch(sum: n + 1, count: n))
        #expect(o == r)
        // Offsets that decrease: lengths [.., +3, −3, ..] keep the total but make offsets non-monotone.
        c.lengths[3] += c.lengths[4] + 2
        c.lengths[4] = -2
        (r, o) = both(c)
        if case .offsetsMismatch(bag: 4, _)? = r {} else { Issue.record("expected offsetsMismatch at bag 4, got \(String(describing: r))") }
        #expect(o == r)
    }
}
