import CRecKitShims

/// The vector ISA this CPU (and its OS) supports, read with `cpuid`/`xgetbv`.
///
/// Used to choose OpenBLAS's kernel family before the library loads and to report what the machine can do.
public struct CPUFeatures: Sendable, Equatable {
    public var avx2 = false
    public var fma = false
    public var avx512f = false
    public var avx512bw = false
    public var avx512dq = false
    public var avx512vl = false
    public var avx512bf16 = false
    public var avx512fp16 = false
    public var amxTile = false
    public var amxBF16 = false

    public init() {}

    /// Features of the CPU this process runs on (OS support for the register state included).
    public static let host: CPUFeatures = detect()

    private static func detect() -> CPUFeatures {
        var f = CPUFeatures()
        var a: UInt32 = 0, b: UInt32 = 0, c: UInt32 = 0, d: UInt32 = 0
        guard reckit_cpuid(1, 0, &a, &b, &c, &d) != 0 else { return f }
        let osxsave = c & (1 << 27) != 0
        let xcr0 = osxsave ? reckit_xgetbv0() : 0
        let ymmOS = xcr0 & 0x6 == 0x6
        let zmmOS = xcr0 & 0xE6 == 0xE6
        let amxOS = xcr0 & 0x60000 == 0x60000
        f.fma = c & (1 << 12) != 0 && ymmOS
        guard reckit_cpuid(7, 0, &a, &b, &c, &d) != 0 else { return f }
        f.avx2 = b & (1 << 5) != 0 && ymmOS
        f.avx512f = b & (1 << 16) != 0 && zmmOS
        f.avx512dq = b & (1 << 17) != 0 && zmmOS
        f.avx512bw = b & (1 << 30) != 0 && zmmOS
        f.avx512vl = b & (1 << 31) != 0 && zmmOS
        f.avx512fp16 = d & (1 << 23) != 0 && zmmOS
        f.amxBF16 = d & (1 << 22) != 0 && amxOS
        f.amxTile = d & (1 << 24) != 0 && amxOS
        if reckit_cpuid(7, 1, &a, &b, &c, &d) != 0 { f.avx512bf16 = a & (1 << 5) != 0 && zmmOS }
        return f
    }

    /// AVX-512 F/BW/DQ/VL: the Skylake-server baseline.
    public var hasAVX512Core: Bool { avx512f && avx512bw && avx512dq && avx512vl }

    /// The OpenBLAS 0.3.21 DYNAMIC_ARCH core type that runs correctly and fastest on these features,
    /// or nil when OpenBLAS's own detection is fine (no AVX2).
    ///
    /// 0.3.21 does not know Sapphire/Emerald Rapids and falls back to Prescott (SSE3, ~5x slower); its newest
    /// AVX-512 kernels are `Cooperlake` (SkylakeX sgemm plus bf16 routines) and `SkylakeX`.
    public var openBLASCoreType: String? {
        if hasAVX512Core { return avx512bf16 ? "Cooperlake" : "SkylakeX" }
        if avx2 && fma { return "Haswell" }
        return nil
    }

    /// Short human-readable ISA summary, e.g. "avx512(bf16,fp16,amx)".
    public var summary: String {
        if hasAVX512Core {
            let extras = [avx512bf16 ? "bf16" : nil, avx512fp16 ? "fp16" : nil, amxTile ? "amx" : nil].compactMap { $0 }
            return extras.isEmpty ? "avx512" : "avx512(\(extras.joined(separator: ",")))"
        }
        if avx2 && fma { return "avx2" }
        return "baseline"
    }
}
