import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels
@testable import RecKitTraining
import Testing

/// Every tensor of a checkpoint (model, sparse and dense optimizer state), by name, as raw bytes.
func checkpointTensors(_ path: String) throws -> [String: [UInt8]] {
    let reader = try Checkpoint.open(path)
    var out: [String: [UInt8]] = [:]
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let n = Int(data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
    for e in reader.entries { out[e.name] = [UInt8](data[(8 + n + e.begin)..<(8 + n + e.end)]) }
    return out
}

@Suite("Checkpoint and resume", .serialized)
struct ResumeTests {
    static let config = #"{"epochs": 2, "batch_size": 128, "embedding_dim": 4, "bottom_hidden": [8], "top_hidden": [8], "early_stopping_patience": 0, "warmup_steps": 3}"#

    /// Trains through `TrainingRun` (what `reckit train` runs).
    static func train(_ ds: ShardDataset, output: String, config: String?, dense: DenseOptimizerKind?, sparse: SparseOptimizerKind?,
                      maxSteps: Int?, resume: String?) throws -> TrainReport {
        var run = TrainingRun(model: .dlrm, data: [ds.directory], output: output)
        run.configFile = config
        run.flags.dense_optimizer = dense
        run.flags.sparse_optimizer = sparse
        run.flags.max_steps = maxSteps
        run.threads = 2
        run.resume = resume
        return try run.run().report
    }

    @Test("every dense × sparse optimizer: straight = three resumes in a row, with and without optimizer flags, bit for bit",
          arguments: DenseOptimizerKind.allCases)
    func resumeMatrix(dense: DenseOptimizerKind) throws {
        let (ds, _) = try synthDataset("resume-\(dense.rawValue)", rows: 1100, tables: [20, 20, 30, 200])
        let dir = ds.directory + "/runs"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cfg = dir + "/config.json"
        try Self.config.write(toFile: cfg, atomically: true, encoding: .utf8)
        for sparse in SparseOptimizerKind.allCases {
            let straight = dir + "/straight-\(sparse.rawValue).safetensors"
            let full = try Self.train(ds, output: straight, config: cfg, dense: dense, sparse: sparse, maxSteps: nil, resume: nil)
            #expect(full.steps == 16, "990 training rows, batch 128, 2 epochs")
            let expected = try checkpointTensors(straight)
            for withFlags in [false, true] {
                var previous: String?
                for (i, stop) in [3, 7, 12, 16].enumerated() {
                    let out = dir + "/part-\(sparse.rawValue)-\(withFlags)-\(i).safetensors"
                    let first = previous == nil
                    let r = try Self.train(ds, output: out, config: first ? cfg : nil, dense: first || withFlags ? dense : nil,
                                           sparse: first || withFlags ? sparse : nil, maxSteps: stop == 16 ? nil : stop, resume: previous)
                    #expect(r.steps == stop)
                    previous = out
                }
                let got = try checkpointTensors(previous!)
                #expect(Set(got.keys) == Set(expected.keys), "\(dense)/\(sparse) flags=\(withFlags): tensor names differ")
                let differing = expected.keys.filter { got[$0] != expected[$0] }.sorted()
                #expect(differing.isEmpty, "\(dense)/\(sparse) flags=\(withFlags): \(differing.prefix(4)) differ after 3 resumes")
                let meta = try Checkpoint.open(previous!).metadata
                #expect(meta.denseOptimizer?.kind == dense.rawValue && meta.sparseOptimizer?.kind == (sparse == .sgd ? "sgd" : sparse.rawValue))
            }
        }
    }

    @Test("a resume with another optimizer is refused (its moments are in the checkpoint); the effective seed is recorded")
    func resumeRefusesOtherOptimizer() throws {
        let (ds, _) = try synthDataset("resume-refuse", rows: 1100, tables: [20, 20, 30, 200])
        let cfg = ds.directory + "/seed.json"
        try #"{"epochs": 1, "batch_size": 128, "embedding_dim": 4, "bottom_hidden": [8], "top_hidden": [8], "seed": 7}"#
            .write(toFile: cfg, atomically: true, encoding: .utf8)
        let first = ds.directory + "/a.safetensors"
        _ = try Self.train(ds, output: first, config: cfg, dense: .adam, sparse: nil, maxSteps: 3, resume: nil)
        #expect(try Checkpoint.open(first).metadata.seed == 7, "the seed from --config, not the CLI default")
        do {
            _ = try Self.train(ds, output: ds.directory + "/b.safetensors", config: nil, dense: .sgd, sparse: nil, maxSteps: nil, resume: first)
            Issue.record("resumed Adam moments with SGD")
        } catch { #expect("\(error)".contains("adam"), "\(error)") }
        do {
            _ = try Self.train(ds, output: ds.directory + "/c.safetensors", config: nil, dense: nil, sparse: .adagrad, maxSteps: nil, resume: first)
            Issue.record("resumed row-wise Adagrad state with Adagrad")
        } catch { #expect("\(error)".contains("rowwise_adagrad"), "\(error)") }
    }
}
