import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitData
import RecKitModels
import RecKitTiered
@testable import RecKitTraining
import Testing

@Suite("Tiered tables in training: same trajectory, same checkpoints, resume across storages", .serialized)
struct TieredTrainingTests {
    static let config = #"{"epochs": 2, "batch_size": 128, "embedding_dim": 8, "bottom_hidden": [8], "top_hidden": [8], "early_stopping_patience": 0, "shuffle_buffer": 300}"#

    /// Tiering for a test: every table tiered (no size threshold), caches of 200 rows for 2,000-row tables.
    static func tiering(_ name: String) -> TierOptions {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-tiertrain-\(getpid())-\(name)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var t = TierOptions(directory: dir, cacheBytes: 2 << 20)
        t.minimumTableBytes = 0
        t.minimumSlots = 200
        return t
    }

    static func run(_ kind: ModelKind, _ ds: ShardDataset, output: String, config: String, tiering: TierOptions?, maxSteps: Int? = nil,
                    resume: String? = nil) throws -> TrainingRun.Outcome {
        var run = TrainingRun(model: kind, data: [ds.directory], output: output)
        run.configFile = resume == nil ? config : nil
        run.flags.max_steps = maxSteps
        run.threads = 2
        run.resume = resume
        run.tiering = tiering
        return try run.run()
    }

    @Test("DLRM, DCNv2 and FM trained through 200-row caches write the same checkpoint, byte for byte, as in RAM",
          arguments: [ModelKind.dlrm, .dcnv2, .fm])
    func sameCheckpoint(kind: ModelKind) throws {
        let (ds, _) = try synthDataset("tiered-\(kind.rawValue)", rows: 2000, tables: [2000, 2000, 50, 1500])
        let dir = ds.directory + "/runs"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cfg = dir + "/config.json"
        try Self.config.write(toFile: cfg, atomically: true, encoding: .utf8)
        let ram = try Self.run(kind, ds, output: dir + "/ram.safetensors", config: cfg, tiering: nil)
        let tiered = try Self.run(kind, ds, output: dir + "/tiered.safetensors", config: cfg, tiering: Self.tiering("same-\(kind.rawValue)"))
        let t = try #require(tiered.tiering)
        #expect(t.tables >= 3 && t.misses > 0 && t.writtenBack > 0, "the caches must have evicted dirty rows: \(t)")
        #expect(ram.report.finalLoss == tiered.report.finalLoss)
        #expect(ram.report.validation?.auc == tiered.report.validation?.auc)
        let a = try checkpointTensors(dir + "/ram.safetensors"), b = try checkpointTensors(dir + "/tiered.safetensors")
        #expect(a.keys.sorted() == b.keys.sorted())
        for (name, bytes) in a { #expect(b[name] == bytes, "\(name)") }
        let meta = try Checkpoint.open(dir + "/tiered.safetensors").metadata
        #expect(meta.storage.map { String(decoding: $0, as: UTF8.self).contains("\"tiered\"") } == true)
    }

    @Test("resume moves between storages: tiered → RAM and RAM → tiered, with checkpoints every 3 steps, end on the straight run's bytes")
    func resumeAcrossStorages() throws {
        let (ds, _) = try synthDataset("tiered-resume", rows: 2000, tables: [2000, 2000, 50, 1500])
        let dir = ds.directory + "/runs"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cfg = dir + "/config.json"
        try Self.config.write(toFile: cfg, atomically: true, encoding: .utf8)
        let straight = try Self.run(.dlrm, ds, output: dir + "/straight.safetensors", config: cfg, tiering: nil)
        let expected = try checkpointTensors(dir + "/straight.safetensors")
        for (first, second) in [(true, false), (false, true)] {
            let out = dir + "/mixed-\(first).safetensors"
            var run = TrainingRun(model: .dlrm, data: [ds.directory], output: out)
            run.configFile = cfg
            run.flags.max_steps = 7
            run.threads = 2
            run.tiering = first ? Self.tiering("resume-a-\(first)") : nil
            run.checkpointEvery = 3
            _ = try run.run()
            let rest = try Self.run(.dlrm, ds, output: out, config: cfg, tiering: second ? Self.tiering("resume-b-\(first)") : nil, resume: out)
            #expect(rest.report.steps == straight.report.steps)
            let got = try checkpointTensors(out)
            for (name, bytes) in expected { #expect(got[name] == bytes, "\(name) (tiered first: \(first))") }
        }
    }
}
