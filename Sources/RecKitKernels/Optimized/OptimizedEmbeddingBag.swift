import CRecKitShims
import Synchronization

/// SIMD/threaded embedding-bag forward: bags are split across the pool; each bag's rows are summed with
/// SIMD16 over D in position order (bit-identical to the reference). Indices are range-checked inline; on
/// any failure the shared validator re-derives the canonical (first) error.
enum OptimizedEmbeddingBag {
    static func forward(table: EmbeddingTableView, bags: JaggedBags, mode: PoolingMode, output: MatrixView,
                        pool: ThreadPool) throws(KernelError) {
        try BagValidation.validateBoundaries(bags)
        guard table.dim >= 1, output.columns == table.dim, output.rows >= bags.bagCount else {
            throw .shapeMismatch("embedding output must be \(bags.bagCount)×\(table.dim)")
        }
        let flag = FailureFlag()
        let starts = chunkStarts(bags, parts: taskCount(bags, pool))
        pool.parallelFor(starts.count) { t in
            let (b0, b1, p0) = starts[t]
            if !forwardBags(table: table, bags: bags, mode: mode, output: output, bags: b0..<b1, firstPosition: p0) {
                flag.set()
            }
        }
        if flag.isSet { try BagValidation.validate(bags, rows: table.rows) }
    }

    /// Pools bags `range` whose first index is at `firstPosition`; false if an index was out of range.
    @inline(__always)
    private static func forwardBags(table: EmbeddingTableView, bags: JaggedBags, mode: PoolingMode,
                                    output: MatrixView, bags range: Range<Int>, firstPosition: Int) -> Bool {
        let d = table.dim, w = table.weights, idx = bags.indices
        let lastRow = UInt64(truncatingIfNeeded: table.rows &- 1)
        var start = firstPosition
        let n = bags.count
        for b in range {
            let end = bagEnd(bags, b, start)
            // Rows are random: prefetch the rows `prefetchDistance` lookups ahead so more misses overlap
            // (prefetch never faults, so a not-yet-validated index is harmless here).
            var ahead = start + prefetchDistance
            let aheadEnd = min(end + prefetchDistance, n)
            while ahead < aheadEnd {
                reckit_prefetch(w + Int(truncatingIfNeeded: min(UInt64(bitPattern: idx[ahead]), lastRow)) * d)
                ahead += 1
            }
            // Output rows are strided too (per-table columns of a [B, T·D] buffer): claim them ahead.
            if b + outputPrefetchBags < range.upperBound { reckit_prefetch_write(output.row(b + outputPrefetchBags)) }
            if !poolBag(table, bags, mode, start: start, end: end, out: output.row(b)) { return false }
            start = end
        }
        return true
    }

    /// out[0..<D] = scale · Σ_p w_p · row(idx[p]) over positions start..<end, summed in position order (the
    /// reference's order, so results match it bit for bit); false on an out-of-range index.
    @inline(__always)
    static func poolBag(_ table: EmbeddingTableView, _ bags: JaggedBags, _ mode: PoolingMode, start: Int, end: Int,
                        out: UnsafeMutablePointer<Float>) -> Bool {
        let d = table.dim, chunks = d / 16, w = table.weights, idx = bags.indices
        let rows = UInt64(truncatingIfNeeded: table.rows)
        for p in start..<end where UInt64(bitPattern: idx[p]) >= rows { return false }
        let s = BagValidation.scale(mode, length: end - start)
        for c in 0..<chunks {
            var acc = F16x.zero
            if let wt = bags.weights {
                for p in start..<end { acc += F16x(repeating: wt[p]) * load16(w + Int(idx[p]) * d + c * 16) }
            } else {
                for p in start..<end { acc += load16(w + Int(idx[p]) * d + c * 16) }
            }
            store16(mode == .sum ? acc : acc * F16x(repeating: s), out + c * 16)
        }
        for j in (chunks * 16)..<d {
            var acc: Float = 0
            for p in start..<end { acc += (bags.weights?[p] ?? 1) * w[Int(idx[p]) * d + j] }
            out[j] = mode == .sum ? acc : acc * s
        }
        return true
    }

    /// Bags to look ahead when claiming output rows.
    static let outputPrefetchBags = 8

    /// Lookups to prefetch ahead.
    static let prefetchDistance = 16

    @inline(__always) static func bagEnd(_ bags: JaggedBags, _ b: Int, _ start: Int) -> Int {
        switch bags.boundaries {
        case .offsets(let o): return Int(o[b + 1])
        case .lengths(let l): return start + Int(l[b])
        }
    }

    /// Enough tasks for dynamic balance, few enough that each covers ≥ 256 lookups.
    static func taskCount(_ bags: JaggedBags, _ pool: ThreadPool) -> Int {
        if pool.threadCount == 1 { return 1 }
        return max(1, min(pool.threadCount * 4, bags.bagCount, bags.count / 256))
    }

    /// Task t covers bags `b0..<b1` whose first index is at position p0 (boundaries already validated).
    static func chunkStarts(_ bags: JaggedBags, parts: Int) -> [(Int, Int, Int)] {
        let ranges = ThreadPool.split(bags.bagCount, into: parts)
        var result: [(Int, Int, Int)] = []
        result.reserveCapacity(ranges.count)
        switch bags.boundaries {
        case .offsets(let o):
            for r in ranges { result.append((r.lowerBound, r.upperBound, Int(o[r.lowerBound]))) }
        case .lengths(let l):
            var pos = 0, b = 0
            for r in ranges {
                while b < r.lowerBound { pos += Int(l[b]); b += 1 }
                result.append((r.lowerBound, r.upperBound, pos))
            }
        }
        return result
    }
}

/// A sticky "something failed" bit shared by pool tasks.
final class FailureFlag: Sendable {
    private let failed = Atomic<Bool>(false)
    func set() { failed.store(true, ordering: .relaxed) }
    var isSet: Bool { failed.load(ordering: .relaxed) }
}
