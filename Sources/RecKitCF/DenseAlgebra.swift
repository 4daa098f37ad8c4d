import CBLAS
import RecKitCore
import RecKitKernels

/// The dense linear algebra the closed-form CF models need, on OpenBLAS/LAPACK (Debian's libopenblas exports
/// LAPACK): Gram matrices (`cblas_ssyrk`), Cholesky factor / inverse / solve (`spotrf_`, `spotri_`,
/// `cblas_strsm`) and GEMM. All matrices are row-major fp32.
///
/// OpenBLAS runs single-threaded inside RecKit (its `ThreadPool` partitions GEMMs); these routines are large,
/// level-3 and not partitioned by RecKit, so each call lets OpenBLAS use `threads` cores and restores 1 after.
public struct DenseAlgebra: Sendable {
    public let threads: Int
    let blas: BLASRuntime

    public init(threads: Int) throws(CFError) {
        switch BLASRuntime.shared {
        case .success(let b): blas = b
        case .failure(let e): throw .linearAlgebraUnavailable("\(e)")
        }
        self.threads = max(1, threads)
    }

    private func withThreads<T>(_ body: () throws(CFError) -> T) throws(CFError) -> T {
        blas.setThreads(threads)
        defer { blas.setThreads(1) }
        return try body()
    }

    /// G = AᵀA when `transpose` (A is k × n, G is n × n), else G = AAᵀ (A is n × k). Both triangles filled, or
    /// only the upper one (row-major) with `upperOnly` — all that `invertSPD`/`solveSPD` read.
    public func gram(_ a: UnsafePointer<Float>, n: Int, k: Int, transpose: Bool, into g: UnsafeMutablePointer<Float>,
                     upperOnly: Bool = false) throws(CFError) {
        guard let ssyrk = blas.ssyrk else { throw .linearAlgebraUnavailable("cblas_ssyrk is missing from OpenBLAS") }
        try withThreads { () throws(CFError) in
            ssyrk(CblasRowMajor, CblasUpper, transpose ? CblasTrans : CblasNoTrans, Int32(n), Int32(k), 1, a,
                  Int32(transpose ? n : k), 0, g, Int32(n))
        }
        if !upperOnly { Self.mirrorUpper(g, n: n) }
    }

    /// C = A·B (or with Aᵀ / Bᵀ): A is m × k, B is k × n, C is m × n.
    public func gemm(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int,
                     transA: Bool = false, transB: Bool = false) throws(CFError) {
        try withThreads { () throws(CFError) in
            blas.sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                       a, Int32(transA ? m : k), b, Int32(transB ? k : n), 0, c, Int32(n))
        }
    }

    /// Overwrites the symmetric positive-definite `a` [n × n] with its inverse (Cholesky: `spotrf_` + `spotri_`);
    /// only the upper triangle (row-major) of `a` is read, both triangles of the inverse are written.
    public func invertSPD(_ a: UnsafeMutablePointer<Float>, n: Int) throws(CFError) {
        guard let potrf = blas.spotrf, let potri = blas.spotri else { throw .linearAlgebraUnavailable("LAPACK spotrf_/spotri_ are missing from OpenBLAS") }
        try factor(a, n: n, potrf)
        var info: Int32 = 0, nn = Int32(n), uplo = UInt8(ascii: "L")
        try withThreads { () throws(CFError) in
            withUnsafePointer(to: &uplo) { u in u.withMemoryRebound(to: CChar.self, capacity: 1) { potri($0, &nn, a, &nn, &info) } }
        }
        guard info == 0 else { throw .numerical("spotri returned \(info)") }
        // Column-major lower = row-major upper: mirror it.
        Self.mirrorUpper(a, n: n)
    }

    /// Solves A·X = B in place of `b` [n × nrhs] for symmetric positive-definite `a` [n × n] (destroyed: it holds
    /// the Cholesky factor afterwards). Only the upper triangle (row-major) of `a` is read.
    public func solveSPD(_ a: UnsafeMutablePointer<Float>, n: Int, _ b: UnsafeMutablePointer<Float>, nrhs: Int) throws(CFError) {
        guard let potrf = blas.spotrf, let trsm = blas.strsm else { throw .linearAlgebraUnavailable("LAPACK spotrf_ / cblas_strsm are missing from OpenBLAS") }
        try factor(a, n: n, potrf)
        // Column-major lower L is row-major upper U = Lᵀ with A = UᵀU: solve Uᵀ·Y = B, then U·X = Y.
        try withThreads { () throws(CFError) in
            trsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, Int32(n), Int32(nrhs), 1, a, Int32(n), b, Int32(nrhs))
            trsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, Int32(n), Int32(nrhs), 1, a, Int32(n), b, Int32(nrhs))
        }
    }

    /// Solves A·X = B in place of `b` with `a` already holding `solveSPD`'s Cholesky factor.
    public func solveFactored(_ a: UnsafePointer<Float>, n: Int, _ b: UnsafeMutablePointer<Float>, nrhs: Int) throws(CFError) {
        guard let trsm = blas.strsm else { throw .linearAlgebraUnavailable("cblas_strsm is missing from OpenBLAS") }
        try withThreads { () throws(CFError) in
            trsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, Int32(n), Int32(nrhs), 1, a, Int32(n), b, Int32(nrhs))
            trsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, Int32(n), Int32(nrhs), 1, a, Int32(n), b, Int32(nrhs))
        }
    }

    private func factor(_ a: UnsafeMutablePointer<Float>, n: Int, _ potrf: reckit_spotrf_fn) throws(CFError) {
        var info: Int32 = 0, nn = Int32(n), uplo = UInt8(ascii: "L")
        try withThreads { () throws(CFError) in
            withUnsafePointer(to: &uplo) { u in u.withMemoryRebound(to: CChar.self, capacity: 1) { potrf($0, &nn, a, &nn, &info) } }
        }
        if info > 0 { throw .numerical("the \(n)×\(n) matrix is not positive definite (leading minor \(info)); raise λ") }
        guard info == 0 else { throw .numerical("spotrf returned \(info)") }
    }

    /// Copies the upper triangle of the row-major `a` [n × n] onto the lower one.
    static func mirrorUpper(_ a: UnsafeMutablePointer<Float>, n: Int) {
        for i in 0..<n { for j in 0..<i { a[i * n + j] = a[j * n + i] } }
    }
}
