import Dispatch
import RecKitCore

/// Initial values of a model's embedding tables, shared by DLRM, DCNv2 and FM.
///
/// Table t holds `rows[t] × dim` floats (row-major) drawn from U(−b_t, b_t), element after element, from its own
/// stream `SeededRandom.stream(seed: seed, index: firstStream + t)`:
///
///     table[t][e] = (2·u_e − 1) · b_t,   u_e = the stream's e-th `nextUniform()`,   b_t = bound(rows[t])
///
/// The tables are filled in parallel, one task per table, largest first. Each table depends only on its own
/// stream, so the values are the same for any core count or scheduling order (and the same as the earlier
/// one-table-at-a-time loops). Why parallel: the Kaggle-sized tables are 33.8M rows × 16 = 2.16 GB, mapped fresh
/// (`AlignedBuffer` huge pages), and writing them on one thread spent seconds on the random numbers and on the
/// kernel zeroing each page at first touch, with the other core idle; the zeroing happens in the touching thread, so
/// it is split as well.
enum EmbeddingTables {
    /// The DLRM reference's bound for a table of R rows, √(1/R) (DLRM and DCNv2 tables).
    static func reciprocalSqrtBound(_ rows: Int) -> Float { (1 / Float(rows)).squareRoot() }

    static func uniform(rows: [Int], dim: Int, seed: UInt64, firstStream: UInt64,
                        bound: (_ rows: Int) -> Float) -> [AlignedBuffer<Float>] {
        let tables = rows.map { AlignedBuffer<Float>(count: $0 * dim) }
        let bounds = rows.map(bound)
        let largestFirst = rows.indices.sorted { rows[$0] > rows[$1] }
        DispatchQueue.concurrentPerform(iterations: largestFirst.count) { i in
            let t = largestFirst[i]
            var r = SeededRandom.stream(seed: seed, index: firstStream + UInt64(t))
            let p = tables[t].pointer, b = bounds[t]
            for e in 0..<tables[t].count { p[e] = (r.nextUniform() * 2 - 1) * b }
        }
        return tables
    }
}
