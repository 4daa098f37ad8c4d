import Foundation
import RecKitCore
import RecKitData
import RecKitKernels
import RecKitModels
@testable import RecKitTraining
import Testing

@Suite("RecD deduplication in training")
struct DedupTrainingTests {
    @Test("DLRM, DCNv2 and FM on session data: dedup on and off give bit-identical losses, tables and optimizer state",
          arguments: [ModelKind.dlrm, .dcnv2, .fm])
    func identical(kind: ModelKind) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-dedup-\(getpid())-\(kind.rawValue)").path
        try? FileManager.default.removeItem(atPath: dir)
        var so = SynthOptions(rows: 2000, output: dir, seed: 4)
        so.tables = [50, 80, 20, 300, 1000]
        so.userTables = 3
        so.sessionSize = 8
        _ = try Synthesizer.run(so)
        let ds = try ShardDataset(directory: dir)
        func run(dedup: Bool) throws -> ([Double], [[UInt32]], Double) {
            var o = TrainOptions()
            o.epochs = 1
            o.batchSize = 256
            o.threads = 2
            o.dedup = dedup
            o.embeddingDim = 8
            let t = try makeTrainer(kind, ds, o)
            for c in t.model.embeddingCollections { c.dedupPolicy = .always }  // one-hot: `.auto` would not dedup
            let (train, _) = TrainingRun.sources(ds, options: o)
            var losses: [Double] = [], factor = 0.0, n = 0
            let stream = try train.batches(epoch: 0, skip: 0)
            while let b = try stream.next() {
                losses.append(try t.step(b, epoch: 0))
                if let f = b.dedupFactor { factor += f; n += 1 }
            }
            return (losses, t.model.stateTensors().map { Array($0.floats).map(\.bitPattern) }, n == 0 ? 1 : factor / Double(n))
        }
        let off = try run(dedup: false), on = try run(dedup: true)
        #expect(on.2 > 1.5, "session data should deduplicate (factor \(on.2))")
        #expect(off.0.map(\.bitPattern) == on.0.map(\.bitPattern), "losses")
        #expect(off.1 == on.1, "parameters and optimizer state")
    }
}
