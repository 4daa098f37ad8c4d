import Foundation
import RecKitKernels
import RecKitServing
import RecKitTiered
import RecKitTraining
import Testing

@Suite("Serving tables in place from the checkpoint, behind a cache")
struct TieredServingTests {
    @Test("fp32 and quantized checkpoints served in place through a 300-row cache score exactly as loaded in RAM",
          arguments: ["fp32", "int8", "int4"])
    func inPlace(dtype: String) throws {
        var path = try ServingFixtures.checkpoint()
        if let q = QuantizedDType(rawValue: dtype) {
            let qPath = path + "." + dtype
            _ = try Quantization.run(model: path, dtype: q, output: qPath, pool: ThreadPool(threads: 1))
            path = qPath
        }
        let ram = try ServedModel.load(path, maxBatch: 64)
        // 26 tables of 1,000 rows; 300 slots each (64 rows per batch): rows come and go every batch.
        let rowBytes = QuantizedDType(rawValue: dtype)?.rowBytes(dim: 8) ?? 32
        let cache = 26 * 300 * (rowBytes + TieredStorageProvider.slotOverheadBytes)
        let tiered = try ServedModel.load(path, maxBatch: 64, cacheBytes: cache, minimumTieredTableBytes: 0)
        let storages = tiered.model.embeddingCollections.flatMap(\.storages)
        #expect(storages.count == 26 && storages.allSatisfy { ($0 as? TieredRowStorage)?.capacity == 300 }, "\(storages.map(\.storageDescription))")
        let lines = ServingFixtures.tsvLines(600, seed: 5)
        let rows = try ram.preprocessor.prepareTSV(Array(lines.joined(separator: "\n").utf8))
        let a = try ServingFixtures.score(ram, rows), b = try ServingFixtures.score(tiered, rows)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(zip(a, b).filter { $0 != $1 }.count) of \(a.count) scores differ")
        let stats = try #require(tiered.tierStats)
        #expect(stats.misses > 26 * 300, "rows must have been evicted and read again: \(stats)")
    }
}
