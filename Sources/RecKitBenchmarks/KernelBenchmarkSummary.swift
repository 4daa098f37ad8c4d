import Foundation

/// Human-readable rendering of a `KernelBenchmarkReport`, with the issue's targets beside each ratio.
public enum KernelBenchmarkSummary {
    public static func text(_ r: KernelBenchmarkReport) -> String {
        func f(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }
        func mark(_ x: Double, _ target: Double) -> String { x >= target ? "ok" : "below target" }
        var lines = [
            "RecKit kernel benchmark — \(r.machine.cpu), \(r.machine.cores) cores, \(r.machine.isa), OpenBLAS \(r.machine.openblasCore ?? "?"), native build: \(r.machine.nativeBuild)",
            "threads \(r.threads), batch \(r.batchSize), kernels: \(r.kernelVariant)",
            "",
            "sgemm ceiling (large square)      \(f(r.sgemmPeakGflops, 1)) GFLOP/s",
            "raw sgemm, MLP shapes             \(f(r.rawGemmGflops, 1)) GFLOP/s  (\(f(r.rawGemmMsPerIter)) ms/iter)",
            "MLP forward+backward              \(f(r.mlpGflops, 1)) GFLOP/s  (\(f(r.mlpMsPerIter)) ms/iter)",
            "  mlp_vs_raw_gemm                 \(f(r.mlpVsRawGemm))   target ≥ 0.85  \(mark(r.mlpVsRawGemm, 0.85))",
            "  mlp_vs_peak                     \(f(r.mlpVsPeak))   target ≥ 0.50  \(mark(r.mlpVsPeak, 0.5))",
            "random-row gather ceiling         \(f(r.gatherCeilingGBps)) GB/s",
        ]
        for e in r.embedding {
            lines.append("embedding \(e.distribution.padding(toLength: 7, withPad: " ", startingAt: 0)) P=\(e.pooling)".padding(toLength: 24, withPad: " ", startingAt: 0)
                + "fwd \(f(e.forwardMs)) ms \(f(e.forwardGBps)) GB/s (×\(f(e.forwardRatio)))   bwd \(f(e.backwardMs)) ms \(f(e.backwardGBps)) GB/s (×\(f(e.backwardRatio)))"
                + "   per-table calls \(f(e.perTableForwardMs)) / \(f(e.perTableBackwardMs)) ms")
        }
        lines += [
            "  embedding_forward_ratio         \(f(r.embeddingForwardRatio))   target ≥ 0.60  \(mark(r.embeddingForwardRatio, 0.6))",
            "  embedding_backward_ratio        \(f(r.embeddingBackwardRatio))   target ≥ 0.40  \(mark(r.embeddingBackwardRatio, 0.4))",
            "  (uniform, largest pooling = the ceiling's rows; worst uniform config: fwd \(f(r.embeddingForwardRatioMin)), bwd \(f(r.embeddingBackwardRatioMin)))",
            "peak RSS \(f(r.peakRSSMiB, 0)) MiB, \(f(r.seconds, 1)) s",
        ]
        return lines.joined(separator: "\n")
    }
}
