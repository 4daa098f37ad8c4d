import Foundation
import RecKitData
import RecKitModels
import RecKitKernels
import RecKitServing
import RecKitTraining

/// A small Criteo-layout DLRM checkpoint (hash mode) and raw rows for the serving tests.
enum ServingFixtures {
    static let hashRows = 1_000

    static func schema(hashRows: Int = hashRows) -> DatasetSchema {
        DatasetSchema(source: "criteo", hasLabel: true, denseNames: (1...13).map { "I\($0)" },
                      sparse: (1...26).map { SparseFeature(name: "C\($0)", cardinality: hashRows) },
                      preprocessing: PreprocessingSpec(categorical: .hash(modulo: hashRows), rawIDs: "hex"))
    }

    /// Writes the checkpoint into a fresh temp directory; returns its path.
    static func checkpoint(seed: UInt64 = 1, name: String = "model.ckpt") throws -> String {
        let dir = NSTemporaryDirectory() + "reckit-serving-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/" + name
        try write(model(seed: seed), to: path, step: Int(seed))
        return path
    }

    /// The fixture DLRM (26 Criteo tables of `hashRows` rows, dim 8, bottom 16, top 16) with random weights.
    static func model(seed: UInt64, hashRows: Int = hashRows, sparseOptimizer: SparseOptimizerKind? = nil) throws -> DLRM {
        let config = DLRMConfig(denseCount: 13, tableSizes: [Int](repeating: hashRows, count: 26), embeddingDim: 8,
                                bottomHidden: [16], topHidden: [16])
        return try DLRM(config: config, initialization: .random(seed: seed), sparseOptimizer: sparseOptimizer)
    }

    /// Writes `model` as a checkpoint with the fixture schema (hash mode, `hashRows`).
    static func write(_ model: any CTRModel, to path: String, step: Int, hashRows: Int = hashRows, schema custom: DatasetSchema? = nil,
                      vocabularies: [[UInt64]] = []) throws {
        var position = TrainPosition()
        position.step = step
        try TrainingCheckpoint.save(model: model, optimizer: nil, options: TrainOptions(), position: position,
                                    schema: custom ?? schema(hashRows: hashRows), vocabularies: vocabularies, rowsSeen: 0, to: path)
    }

    /// Scores `rows` with `model` on a fresh workspace.
    static func score(_ model: ServedModel, _ rows: PreparedRows) throws -> [Float] {
        try model.score(rows, workspace: model.makeWorkspace(), pool: ThreadPool(threads: 1))
    }

    /// Criteo test-format lines (39 columns): counts with some missing/negative, hex ids with some empty.
    static func tsvLines(_ n: Int, seed: UInt64 = 3) -> [String] {
        var state = seed
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 17 }
        return (0..<n).map { _ in
            let dense = (0..<13).map { _ -> String in
                let r = next() % 12
                return r == 0 ? "" : (r == 1 ? "-3" : String(next() % 5000))
            }
            let cats = (0..<26).map { _ -> String in next() % 15 == 0 ? "" : String(next() % 0xFFFF_FFFF, radix: 16) }
            return (dense + cats).joined(separator: "\t")
        }
    }

    /// The same rows as the positional JSON form.
    static func jsonRows(_ lines: [String]) -> String {
        let rows = lines.map { line -> String in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            let dense = f[0..<13].map { $0.isEmpty ? "null" : $0 }.joined(separator: ",")
            let cats = f[13..<39].map { "\"\($0)\"" }.joined(separator: ",")
            return "{\"dense\":[\(dense)],\"categorical\":[\(cats)]}"
        }
        return "{\"rows\":[\(rows.joined(separator: ","))]}"
    }
}
