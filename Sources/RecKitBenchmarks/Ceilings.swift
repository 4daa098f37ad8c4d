import CBLAS
import RecKitCore
import RecKitKernels

/// This machine's ceilings, measured inside a benchmark run so ratios compare like with like.
enum Ceilings {
    /// Large-square `cblas_sgemm` (size³, OpenBLAS's own threading with `threads`) in GFLOP/s, median of `blocks`.
    /// Leaves OpenBLAS single-threaded again (RecKit's pool partitions GEMMs itself).
    static func sgemm(_ blas: BLASRuntime, size s: Int, threads: Int, blocks: Int, rng: inout SeededRandom) -> Double {
        let a = AlignedBuffer((0..<(s * s)).map { _ in rng.nextUniform() })
        let c = AlignedBuffer<Float>(count: s * s)
        blas.setThreads(threads)
        defer { blas.setThreads(1) }
        let times = BenchTiming.measure(blocks: blocks) {
            blas.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(s), Int32(s), Int32(s), 1, a.pointer, Int32(s),
                       a.pointer, Int32(s), 0, c.pointer, Int32(s))
        }
        return 2 * Double(s) * Double(s) * Double(s) / BenchTiming.median(times) / 1e9
    }
}
