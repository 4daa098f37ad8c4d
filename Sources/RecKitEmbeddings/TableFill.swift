import Dispatch
import RecKitCore

/// Initial values of fp32 tables (DLRM, DCNv2 and FM).
///
/// Table t holds `rows[t] × dim` floats drawn from U(−b_t, b_t), element after element, from its own stream
/// `SeededRandom.stream(seed: seed, index: firstStream + t)`:
///
///     table[t][e] = (2·u_e − 1) · b_t,   u_e = the stream's e-th `nextUniform()`,   b_t = bound(rows[t])
///
/// The tables are filled in parallel, one task per table, largest first. Each table depends only on its own
/// stream, so the values are the same for any core count or scheduling order. Why parallel: the Kaggle-sized
/// tables are 33.8M rows × 16 = 2.16 GB, mapped fresh (huge pages), and writing them on one thread spent seconds on
/// the random numbers and on the kernel zeroing each page at first touch, with the other core idle.
public enum TableFill {
    public static func uniform(_ tables: [AlignedBuffer<Float>], rows: [Int], seed: UInt64, firstStream: UInt64,
                               bound: (_ rows: Int) -> Float) {
        let bounds = rows.map(bound)
        let largestFirst = rows.indices.sorted { rows[$0] > rows[$1] }
        DispatchQueue.concurrentPerform(iterations: largestFirst.count) { i in
            let t = largestFirst[i]
            var r = SeededRandom.stream(seed: seed, index: firstStream + UInt64(t))
            let p = tables[t].pointer, b = bounds[t]
            for e in 0..<tables[t].count { p[e] = (r.nextUniform() * 2 - 1) * b }
        }
    }
}
