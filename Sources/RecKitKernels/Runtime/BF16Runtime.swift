import CDNNL
import Synchronization

/// oneDNN's bf16 matmul (AMX tiles or AVX512-BF16 dot products, fp32 accumulation), loaded on first use.
///
/// Why oneDNN 2.6 (Debian `libdnnl-dev`) rather than RecKit's own AMX kernels: measured on this machine
/// (`/tmp`-free C probe, 2 OpenMP threads, 2048×512×512) it reaches 290–380 GFLOP/s on the AMX path — 1.4–1.8×
/// OpenBLAS's fp32 sgemm in the same conditions — for every shape and transpose the MLPs need. Debian's OpenBLAS
/// exports no `sbgemm`. A first hand-written AMX kernel (branch `wip/amx`) did not beat it once packing was counted
/// (see README, "Against PyTorch and TorchRec").
///
/// The library is `dlopen`ed (not linked): RecKit runs without it (fp32 only). oneDNN is pinned to one thread per
/// call (libgomp's team size forced to 1) and RecKit's pool splits each GEMM across its threads, exactly as it does
/// with OpenBLAS: no second thread team competes for the cores, and a block's bf16 conversion, GEMM and epilogue run
/// back to back on one core. Each calling thread keeps its own cached primitives and scratchpad (see CDNNL).
public enum BF16Runtime {
    /// True when bf16 matmul runs natively (oneDNN found, CPU with AMX or AVX512-BF16).
    public static var isAvailable: Bool { reckit_dnnl_load() == 1 }
    /// "oneDNN 2.6.3, avx512_core_amx", or why bf16 is unavailable.
    public static var status: String { String(cString: reckit_dnnl_status()) }

    /// bf16 GEMMs that ran on the reference loops because oneDNN was missing or refused them (slow: reported, never
    /// silent). `reckit` warns with this count after a run; benchmarks report it.
    public static var fallbackGEMMs: Int { fallbacks.load(ordering: .relaxed) }
    static let fallbacks = Atomic<Int>(0)
    static func countFallback() { fallbacks.add(1, ordering: .relaxed) }

    /// C (m×n, fp32) = op(A)·op(B) (+ C), bf16 inputs. Returns a oneDNN status (0 = success).
    @inline(__always)
    static func gemm(_ g: BF16GEMMArguments) -> Int32 {
        reckit_dnnl_bf16_gemm(g.transA == .transposed ? 1 : 0, g.transB == .transposed ? 1 : 0,
                              Int64(g.m), Int64(g.n), Int64(g.k), g.a, Int64(g.lda), g.b, Int64(g.ldb),
                              g.accumulate ? 1 : 0, g.c, Int64(g.ldc))
    }
}
