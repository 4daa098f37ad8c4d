import Foundation
import RecKitCore
#if canImport(Glibc)
import Glibc
#endif

/// Decides per linear layer whether bf16 mixed precision is faster than fp32 on this CPU, from a start-up probe:
/// the layer's forward (and, for training, backward) at its batch size, timed in both precisions on the caller's
/// pool (best of a few runs). bf16 wins only when it is at least 5% faster; the decision is cached in memory and in
/// `~/.cache/reckit/bf16-probe.json`, keyed by the CPU model, oneDNN's status, the shape and the mode.
///
/// Why: on CPUs without AMX (AVX512-BF16 dot products only), oneDNN's bf16 matmul plus the conversions can be slower
/// than OpenBLAS's fp32 sgemm (measured on an Intel Xeon without AMX exposed: DLRM training 47k samples/s in bf16
/// against 78k in fp32), so `--precision bf16` must not simply mean "every layer in bf16".
public final class BF16Probe: @unchecked Sendable {
    /// A probe with the registered kernels (`KernelRegistry`), caching to the user's cache directory.
    public static let shared = BF16Probe()

    /// One timing: forward (+ backward) of X (m×k) · Wᵀ (n×k) in the given precision, seconds.
    public typealias Timer = @Sendable (_ bf16: Bool, _ m: Int, _ k: Int, _ n: Int, _ training: Bool, _ pool: ThreadPool) -> Double

    let timer: Timer
    let cacheFile: String?
    let lock = NSLock()
    var decisions: [String: Bool] = [:]
    var loaded = false

    /// `timer` replaces the real kernels (tests force a slow bf16 kernel); `cacheFile` nil keeps decisions in memory.
    public init(timer: Timer? = nil, cacheFile: String? = BF16Probe.defaultCacheFile) {
        self.timer = timer ?? BF16Probe.kernelTimer
        self.cacheFile = cacheFile
    }

    public static var defaultCacheFile: String? {
        let env = ProcessInfo.processInfo.environment
        if env["RECKIT_BF16_PROBE_CACHE"] == "off" { return nil }
        guard let home = env["XDG_CACHE_HOME"] ?? env["HOME"].map({ $0 + "/.cache" }) else { return nil }
        return home + "/reckit/bf16-probe.json"
    }

    /// The CPU model (from /proc/cpuinfo) and oneDNN's status: what the decisions depend on.
    public static let machineKey: String = {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }.map { String($0.split(separator: ":").last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
        return model + " | " + CPUFeatures.host.summary + " | " + BF16Runtime.status
    }()

    /// True when bf16 is the faster precision for a layer of K inputs and N outputs at batch `m`.
    public func prefersBF16(m: Int, k: Int, n: Int, training: Bool, pool: ThreadPool) -> Bool {
        guard BF16Runtime.isAvailable, BF16Policy.usesBF16(inFeatures: k, outFeatures: n), m > 0 else { return false }
        let bucket = BF16Probe.bucket(m)
        let key = "\(Self.machineKey) | m\(bucket) k\(k) n\(n) \(training ? "train" : "infer") t\(pool.threadCount)"
        lock.lock()
        loadIfNeeded()
        if let d = decisions[key] { lock.unlock(); return d }
        lock.unlock()
        var fp32 = Double.infinity, bf16 = Double.infinity
        for _ in 0..<3 {
            fp32 = min(fp32, timer(false, m, k, n, training, pool))
            bf16 = min(bf16, timer(true, m, k, n, training, pool))
        }
        let decision = bf16 < fp32 * 0.95
        lock.lock()
        decisions[key] = decision
        save()
        lock.unlock()
        return decision
    }

    func loadIfNeeded() {
        guard !loaded else { return }
        loaded = true
        guard let f = cacheFile, let d = FileManager.default.contents(atPath: f),
              let stored = try? JSONDecoder().decode([String: Bool].self, from: d) else { return }
        decisions.merge(stored) { a, _ in a }
    }

    func save() {
        guard let f = cacheFile, let d = try? JSONEncoder().encode(decisions) else { return }
        try? FileManager.default.createDirectory(atPath: (f as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? d.write(to: URL(fileURLWithPath: f), options: .atomic)
    }

    /// The real timing: the registered fp32 and bf16 linear kernels on random inputs.
    static let kernelTimer: Timer = { bf16, m, k, n, training, pool in
        var rng = SeededRandom(seed: 1)
        let x = AlignedBuffer<Float>((0..<(m * k)).map { _ in rng.nextUniform() - 0.5 })
        let w = AlignedBuffer<Float>((0..<(n * k)).map { _ in rng.nextUniform() - 0.5 })
        let b = AlignedBuffer<Float>(count: n), y = AlignedBuffer<Float>(count: m * n), gy = AlignedBuffer<Float>(count: m * n)
        let gw = AlignedBuffer<Float>(count: n * k), gb = AlignedBuffer<Float>(count: n), gx = AlignedBuffer<Float>(count: m * k)
        let scratch = BF16Scratch()
        let fwd = LinearForwardArguments(input: MatrixView(base: x.pointer, rows: m, columns: k), weight: w.pointer, bias: b.pointer,
                                         output: MatrixView(base: y.pointer, rows: m, columns: n), activation: .relu)
        let bwd = LinearBackwardArguments(input: fwd.input, weight: w.pointer, output: fwd.output,
                                          gradOutput: MatrixView(base: gy.pointer, rows: m, columns: n),
                                          gradInput: MatrixView(base: gx.pointer, rows: m, columns: k), gradWeight: gw.pointer,
                                          gradBias: gb.pointer, activation: .relu, accumulate: true)
        func once() {
            if bf16 { KernelRegistry.bf16LinearForward.active(fwd, scratch, pool) } else { KernelRegistry.linearForward.active(fwd, pool) }
            if training {
                gy.fill(0.01)
                if bf16 { KernelRegistry.bf16LinearBackward.active(bwd, scratch, pool) } else { KernelRegistry.linearBackward.active(bwd, pool) }
            }
        }
        once()  // warm-up: caches, oneDNN primitives
        var ts = timespec(), te = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        for _ in 0..<3 { once() }
        clock_gettime(CLOCK_MONOTONIC, &te)
        return Double(te.tv_sec - ts.tv_sec) + Double(te.tv_nsec - ts.tv_nsec) / 1e9
    }
}

extension BF16Probe {
    /// Batch sizes are probed by power-of-two bucket (m rounded up): 2048 and 1500 share a decision, 16 does not.
    public static func bucket(_ m: Int) -> Int { m <= 1 ? 1 : 1 << (Int.bitWidth - (m - 1).leadingZeroBitCount) }
}
