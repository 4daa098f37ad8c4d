import ArgumentParser
import Foundation
import RecKitData
import RecKitKernels
import RecKitTraining

extension QuantizedDType: ExpressibleByArgument {}

/// `reckit quantize`: row-wise quantized embedding tables for serving, with the size and AUC change measured.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize a checkpoint's embedding tables (fp16, int8 or int4 rows; per-row scale and bias) for serving.")

    @Option(name: .long, help: "fp32 checkpoint from `reckit train`.")
    var model: String

    @Option(name: .long, help: "Row storage: fp16, int8 or int4.")
    var dtype: QuantizedDType

    @Option(name: .long, help: "Quantized checkpoint to write (inference-only; `reckit serve`/`eval`/`predict` read it).")
    var output: String

    @Option(name: .long, parsing: .upToNextOption, help: "Evaluate fp32 and quantized AUC on this data (shards, or raw files with --format).")
    var eval: [String] = []

    @Option(name: .long, help: "Raw format of --eval files.")
    var format: InputFormat?

    @OptionGroup var common: CommonOptions
    @OptionGroup var carbon: CarbonOptions

    func run() throws {
        let run = try CarbonRun(command: "quantize", model: nil, options: carbon, threads: common.resolvedThreads)
        let r = try CLIError.onTrainingError { () throws(TrainingError) in
            try Quantization.run(model: model, dtype: dtype, output: output, eval: eval, format: format, pool: ThreadPool(threads: common.resolvedThreads))
        }
        run.finish(samples: r.evalRows)
        if common.json { try printJSON(r); return }
        print(String(format: "%@: checkpoint %.1f MB → %.1f MB (%.1f%%); embedding tables %.1f MB → %.1f MB (%.1f%%)",
                     r.dtype, Double(r.fp32Bytes) / 1e6, Double(r.quantizedBytes) / 1e6, 100 * r.sizeRatio,
                     Double(r.embeddingFP32Bytes) / 1e6, Double(r.embeddingQuantizedBytes) / 1e6, 100 * r.embeddingRatio))
        if let a = r.aucFP32, let b = r.aucQuantized {
            print(String(format: "AUC fp32 %.5f, %@ %.5f (Δ %+.5f) on %d rows", a, r.dtype, b, b - a, r.evalRows ?? 0))
        }
        print("wrote \(output)")
    }
}
