import ArgumentParser
import Foundation
import RecKitData
import RecKitKernels
import RecKitModels
import RecKitTraining

extension QuantizedDType: ExpressibleByArgument {}

/// `reckit quantize`: row-wise quantized embedding tables for serving, with the size and AUC change measured.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize a DLRM checkpoint's embedding tables (fp16, int8 or int4 rows; per-row scale and bias) for serving.")

    @Option(name: .long, help: "fp32 checkpoint from `reckit train` (DLRM).")
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

    struct Report: Codable {
        var dtype: String
        var fp32Bytes: Int, quantizedBytes: Int, sizeRatio: Double
        var embeddingFP32Bytes: Int, embeddingQuantizedBytes: Int, embeddingRatio: Double
        var aucFP32: Double?, aucQuantized: Double?, deltaAUC: Double?
        var evalRows: Int?
        var output: String
        enum CodingKeys: String, CodingKey {
            case dtype, output
            case fp32Bytes = "fp32_bytes", quantizedBytes = "quantized_bytes", sizeRatio = "size_ratio"
            case embeddingFP32Bytes = "embedding_fp32_bytes", embeddingQuantizedBytes = "embedding_quantized_bytes"
            case embeddingRatio = "embedding_ratio", aucFP32 = "auc_fp32", aucQuantized = "auc_quantized", deltaAUC = "delta_auc"
            case evalRows = "eval_rows"
        }
    }

    func run() throws {
        let run = try CarbonRun(command: "quantize", model: "dlrm", options: carbon, threads: common.resolvedThreads)
        let loaded = try ModelInput.load(model)
        guard let dlrm = loaded.model as? DLRM else {
            throw CLIError(message: "quantize supports DLRM checkpoints; \(model) holds \(loaded.model.kind)", code: 65)
        }
        guard loaded.header.quantization == nil else { throw CLIError(message: "\(model) is already quantized", code: 65) }
        var fp32AUC: Double?, qAUC: Double?, rows: Int?
        let pool = ThreadPool(threads: common.resolvedThreads)
        var evalSet: (ShardDataset, String?)?
        if !eval.isEmpty {
            evalSet = try ModelInput.dataset(eval, format: format, checkpoint: loaded)
            let m = try Trainer.evaluate(dlrm, evalSet!.0, rows: 0..<evalSet!.0.manifest.rows, batchSize: ModelInput.batch, pool: pool)
            fp32AUC = m.auc
            rows = m.rows
        }
        dlrm.quantize(dtype)
        if let (ds, temporary) = evalSet {
            defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
            qAUC = try Trainer.evaluate(dlrm, ds, rows: 0..<ds.manifest.rows, batchSize: ModelInput.batch, pool: pool).auc
        }
        var header = loaded.header
        header.quantization = dtype
        header.position = nil
        do throws(CheckpointError) {
            try Checkpoint.save(dlrm, optimizer: DenseOptimizer(kind: header.denseOptimizer), header: header,
                                vocabularies: loaded.vocabularies, to: output)
        } catch {
            throw CLIError(message: error.description, code: 73)
        }
        func size(_ p: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: p))?[.size] as? Int) ?? 0 }
        let embF = dlrm.config.tableSizes.reduce(0, +) * dlrm.config.embeddingDim * 4
        let embQ = dlrm.quantized.reduce(0) { $0 + $1.byteCount }
        let r = Report(dtype: dtype.rawValue, fp32Bytes: size(model), quantizedBytes: size(output),
                       sizeRatio: Double(size(output)) / Double(max(size(model), 1)), embeddingFP32Bytes: embF,
                       embeddingQuantizedBytes: embQ, embeddingRatio: Double(embQ) / Double(max(embF, 1)),
                       aucFP32: fp32AUC, aucQuantized: qAUC, deltaAUC: fp32AUC.flatMap { a in qAUC.map { $0 - a } },
                       evalRows: rows, output: output)
        run.finish(samples: rows)
        if common.json { try printJSON(r); return }
        print(String(format: "%@: checkpoint %.1f MB → %.1f MB (%.1f%%); embedding tables %.1f MB → %.1f MB (%.1f%%)",
                     dtype.rawValue, Double(r.fp32Bytes) / 1e6, Double(r.quantizedBytes) / 1e6, 100 * r.sizeRatio,
                     Double(embF) / 1e6, Double(embQ) / 1e6, 100 * r.embeddingRatio))
        if let a = fp32AUC, let b = qAUC {
            print(String(format: "AUC fp32 %.5f, %@ %.5f (Δ %+.5f) on %d rows", a, dtype.rawValue, b, b - a, rows ?? 0))
        }
        print("wrote \(output)")
    }
}
