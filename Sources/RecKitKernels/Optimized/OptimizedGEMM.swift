import CBLAS

/// GEMM on OpenBLAS, partitioned by RecKit's pool: each task calls single-threaded `cblas_sgemm` on a block
/// of C's rows (or columns when C has fewer rows than columns), so OpenBLAS and the pool never oversubscribe the cores.
/// Without OpenBLAS (not installed) it falls back to the reference loop; `reckit` warns about that at start.
enum OptimizedGEMM {
    /// Below this many multiply-adds a single call beats splitting (pool + packing overhead).
    static let parallelThreshold = 1 << 18

    static func gemm(_ g: GEMMArguments, pool: ThreadPool) {
        if g.m == 0 || g.n == 0 { return }
        guard let blas = BLASRuntime.available else { ReferenceDense.gemm(g, pool: pool); return }
        if g.k == 0 {
            for i in 0..<g.m { for j in 0..<g.n { g.c[i * g.ldc + j] = g.beta == 0 ? 0 : g.beta * g.c[i * g.ldc + j] } }
            return
        }
        let work = g.m * g.n * g.k
        if pool.threadCount == 1 || work < parallelThreshold {
            call(blas, g)
            return
        }
        if splitsRows(m: g.m, n: g.n, threads: pool.threadCount) {
            let parts = ThreadPool.split(g.m, into: pool.threadCount)
            pool.parallelFor(parts.count) { t in
                var sub = g
                let r = parts[t]
                sub.m = r.count
                sub.a = g.transA == .none ? g.a + r.lowerBound * g.lda : g.a + r.lowerBound
                sub.c = g.c + r.lowerBound * g.ldc
                call(blas, sub)
            }
        } else {
            let parts = ThreadPool.split(g.n, into: pool.threadCount)
            pool.parallelFor(parts.count) { t in
                var sub = g
                let r = parts[t]
                sub.n = r.count
                sub.b = g.transB == .none ? g.b + r.lowerBound : g.b + r.lowerBound * g.ldb
                sub.c = g.c + r.lowerBound
                call(blas, sub)
            }
        }
    }

    /// Whether a pool-partitioned GEMM (or linear layer) with an m×n output splits its rows (else its columns). Each
    /// task packs all of the operand it does not split, so rows are split when B (k×n) is the smaller one to repeat
    /// (n ≤ m), columns otherwise (small batches against wide weights), as long as each part stays a few rows tall.
    static func splitsRows(m: Int, n: Int, threads: Int) -> Bool {
        m >= 2 * threads * 8 && (m >= n || n < 2 * threads * 16)
    }

    /// One `cblas_sgemm` call, row-major.
    @inline(__always) static func call(_ blas: BLASRuntime, _ g: GEMMArguments) {
        blas.sgemm(CblasRowMajor, g.transA == .none ? CblasNoTrans : CblasTrans,
                   g.transB == .none ? CblasNoTrans : CblasTrans,
                   Int32(g.m), Int32(g.n), Int32(g.k), g.alpha, g.a, Int32(g.lda), g.b, Int32(g.ldb),
                   g.beta, g.c, Int32(g.ldc))
    }
}
