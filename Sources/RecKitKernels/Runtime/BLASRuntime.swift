import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Why OpenBLAS could not be used.
public enum BLASLoadError: Error, Sendable, CustomStringConvertible {
    case libraryNotFound(tried: [String], reason: String)
    case symbolMissing(String)

    public var description: String {
        switch self {
        case let .libraryNotFound(tried, reason):
            return "OpenBLAS not found (tried \(tried.joined(separator: ", ")): \(reason). "
                + "Install it with scripts/bootstrap.sh (apt-get install libopenblas-dev)."
        case let .symbolMissing(name):
            return "OpenBLAS library lacks symbol \(name)"
        }
    }
}

/// The process's OpenBLAS, loaded at run time with the right kernel family.
///
/// Debian's OpenBLAS 0.3.21 picks its kernels once, in the library constructor, from `OPENBLAS_CORETYPE` or
/// its own CPU detection, which does not know recent Xeons and falls back to SSE3 (5–7x slower GEMM). So
/// RecKit does not link the library: on first use it
/// 1. keeps `OPENBLAS_CORETYPE` if the user set it (any value, even empty);
/// 2. otherwise sets it to `CPUFeatures.host.openBLASCoreType` (e.g. `Cooperlake` on AVX-512 BF16 CPUs),
/// 3. `dlopen`s `libopenblas.so.0` (the constructor reads the variable now), binds the CBLAS entry points,
/// 4. and removes the variable again if RecKit set it, so child processes see the user's environment.
/// OpenBLAS's own threading is set to 1: RecKit's `ThreadPool` partitions GEMMs itself, so the two pools never
/// compete for the cores (see `GEMM`).
public final class BLASRuntime: @unchecked Sendable {
    public let sgemm: reckit_sgemm_fn
    public let sgemv: reckit_sgemv_fn
    /// `cblas_ssyrk`, `cblas_strsm`, LAPACK `spotrf_`/`spotri_` (Cholesky factor and inverse) for RecKitCF;
    /// nil when the loaded library lacks them (an OpenBLAS built without LAPACK).
    public let ssyrk: reckit_ssyrk_fn?
    public let strsm: reckit_strsm_fn?
    public let spotrf: reckit_spotrf_fn?
    public let spotri: reckit_spotri_fn?
    private let setThreadsFn: reckit_set_num_threads_fn
    private let getThreadsFn: reckit_get_num_threads_fn
    private let getCoreName: reckit_get_string_fn
    private let getConfig: reckit_get_string_fn
    /// The `OPENBLAS_CORETYPE` the library was loaded with (nil: its own detection).
    public let requestedCoreType: String?
    /// True when the user's environment chose the core type, false when RecKit did.
    public let coreTypeFromUser: Bool
    /// The path that was loaded.
    public let libraryPath: String

    /// The loaded library, or why it could not be loaded. Loaded once per process.
    public static let shared: Result<BLASRuntime, BLASLoadError> = {
        do throws(BLASLoadError) { return .success(try BLASRuntime()) } catch { return .failure(error) }
    }()

    /// The loaded library; nil when unavailable (see `shared` for the reason).
    public static var available: BLASRuntime? { try? shared.get() }

    static let candidates = ["libopenblas.so.0", "libopenblas.so", "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
                             "/usr/lib/aarch64-linux-gnu/libopenblas.so.0"]

    private init() throws(BLASLoadError) {
        let userValue = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        var chosen = userValue
        var weSetIt = false
        if userValue == nil, let core = CPUFeatures.host.openBLASCoreType {
            setenv("OPENBLAS_CORETYPE", core, 1)
            chosen = core
            weSetIt = true
        }
        defer { if weSetIt { unsetenv("OPENBLAS_CORETYPE") } }
        var handle: UnsafeMutableRawPointer?
        var lastError = "unknown"
        var path = ""
        for candidate in Self.candidates {
            handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL)
            if handle != nil { path = candidate; break }
            if let e = dlerror() { lastError = String(cString: e) }
        }
        guard let handle else { throw .libraryNotFound(tried: Self.candidates, reason: lastError) }
        func sym<T>(_ name: String, as: T.Type) throws(BLASLoadError) -> T {
            guard let p = dlsym(handle, name) else { throw .symbolMissing(name) }
            return unsafeBitCast(p, to: T.self)
        }
        sgemm = try sym("cblas_sgemm", as: reckit_sgemm_fn.self)
        sgemv = try sym("cblas_sgemv", as: reckit_sgemv_fn.self)
        func optionalSym<T>(_ name: String, as: T.Type) -> T? { dlsym(handle, name).map { unsafeBitCast($0, to: T.self) } }
        ssyrk = optionalSym("cblas_ssyrk", as: reckit_ssyrk_fn.self)
        strsm = optionalSym("cblas_strsm", as: reckit_strsm_fn.self)
        spotrf = optionalSym("spotrf_", as: reckit_spotrf_fn.self)
        spotri = optionalSym("spotri_", as: reckit_spotri_fn.self)
        setThreadsFn = try sym("openblas_set_num_threads", as: reckit_set_num_threads_fn.self)
        getThreadsFn = try sym("openblas_get_num_threads", as: reckit_get_num_threads_fn.self)
        getCoreName = try sym("openblas_get_corename", as: reckit_get_string_fn.self)
        getConfig = try sym("openblas_get_config", as: reckit_get_string_fn.self)
        requestedCoreType = chosen
        coreTypeFromUser = userValue != nil
        libraryPath = path
        setThreadsFn(1)
    }

    /// The kernel family OpenBLAS actually selected (e.g. "Cooperlake", "SkylakeX", "Prescott").
    public var coreName: String { getCoreName().map { String(cString: $0) } ?? "unknown" }
    /// OpenBLAS's build configuration string.
    public var config: String { getConfig().map { String(cString: $0) } ?? "unknown" }
    /// OpenBLAS's own thread count.
    public var threads: Int { Int(getThreadsFn()) }
    /// Sets OpenBLAS's own thread count (benchmarks use it to measure raw `cblas_sgemm` ceilings).
    public func setThreads(_ n: Int) { setThreadsFn(Int32(max(1, n))) }
}
