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
        uniform(tables, rows: rows, seed: seed, streams: tables.indices.map { firstStream + UInt64($0) }, bound: bound)
    }

    /// The same, table i drawn from stream `streams[i]` (a collection whose other tables live elsewhere).
    public static func uniform(_ tables: [AlignedBuffer<Float>], rows: [Int], seed: UInt64, streams: [UInt64],
                               bound: (_ rows: Int) -> Float) {
        let bounds = rows.map(bound)
        let largestFirst = rows.indices.sorted { rows[$0] > rows[$1] }
        DispatchQueue.concurrentPerform(iterations: largestFirst.count) { i in
            let t = largestFirst[i]
            var s = Stream(seed: seed, stream: streams[t], bound: bounds[t])
            s.fill(tables[t].pointer, count: tables[t].count)
        }
    }

    /// One table's values in order, for storages that write their rows in chunks (a tiered table's file): the e-th
    /// call position gives the same value as element e of an in-RAM table filled from the same stream.
    public struct Stream {
        var random: SeededRandom
        let bound: Float
        public init(seed: UInt64, stream: UInt64, bound: Float) {
            random = SeededRandom.stream(seed: seed, index: stream)
            self.bound = bound
        }
        /// Writes the next `count` values to `p`.
        public mutating func fill(_ p: UnsafeMutablePointer<Float>, count: Int) {
            for e in 0..<count { p[e] = (random.nextUniform() * 2 - 1) * bound }
        }
    }
}
