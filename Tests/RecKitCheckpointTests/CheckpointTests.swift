import CRecKitShims
import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitEmbeddings
import RecKitKernels
import RecKitModels
import RecKitTestSupport
import Testing

/// Builds a small DLRM with row-wise Adagrad state, writes it, returns its path.
func smallCheckpoint(_ name: String, seed: UInt64 = 3, sizes: [Int] = [7, 7, 30]) throws -> (String, any CTRModel) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-ckpt-\(getpid())-\(name)").path
    try? FileManager.default.removeItem(atPath: dir)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let config = DLRMConfig(denseCount: 3, sparse: sizes.enumerated().map { SparseFeatureSpec(name: "f\($0.offset)", rows: $0.element) },
                            embeddingDim: 4, bottomHidden: [5], topHidden: [6])
    let model = try DLRM(config: config, initialization: .random(seed: seed), sparseOptimizer: .rowWiseAdagrad)
    var data = TestData(seed: seed)
    for s in model.embeddingCollections.flatMap(\.storages) { if let d = s as? DenseRowStorage { for i in 0..<d.state.count { d.state.pointer[i] = data.rng.nextUniform() } } }
    let meta = CheckpointMetadata(model: .dlrm, config: config.encodedJSON(), schema: nil, denseOptimizer: .init(kind: "adam", step: 4),
                                  sparseOptimizer: .init(kind: "rowwise_adagrad"), step: 4, seed: seed, rowsSeen: 100)
    let path = dir + "/m.safetensors"
    try Checkpoint.write(model.stateTensors(), metadata: meta, to: path)
    return (path, model)
}

/// Rewrites a safetensors file's JSON header with `edit` (the data buffer unchanged).
func editHeader(_ path: String, to out: String, _ edit: (inout [String: Any]) -> Void) throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let n = Int(data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
    var header = try #require(try JSONSerialization.jsonObject(with: data[8..<(8 + n)]) as? [String: Any])
    edit(&header)
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var bytes = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
    bytes.append(json)
    bytes.append(data[(8 + n)...])
    try bytes.write(to: URL(fileURLWithPath: out))
}

func loadError(_ path: String) -> String? {
    do { _ = try Checkpoint.open(path).loadModel(optimizerState: true); return nil } catch { return error.description }
}

@Suite("Checkpoints: safetensors layout, named tensors, validation")
struct CheckpointTests {
    @Test("round trip: every tensor back by name, bit for bit; the model scores the same")
    func roundTrip() throws {
        let (path, model) = try smallCheckpoint("rt")
        let reader = try Checkpoint.open(path)
        #expect(reader.metadata.model == .dlrm && reader.metadata.step == 4 && reader.headerIntact)
        let loaded = try reader.loadModel(optimizerState: true)
        let a = model.stateTensors(), b = loaded.stateTensors()
        #expect(a.map(\.name) == b.map(\.name))
        for (x, y) in zip(a, b) { #expect(Array(x.data) == Array(y.data), "\(x.name)") }
        let inference = try reader.loadModel(optimizerState: false)
        #expect(inference.sparseOptimizer == nil && !inference.stateTensors().contains { $0.name.hasSuffix("adagrad_sum") })
    }

    @Test("a renamed tensor fails to load, naming it")
    func renamed() throws {
        let (path, _) = try smallCheckpoint("rename")
        let out = path + ".renamed"
        try editHeader(path, to: out) { h in h["bottom_mlp.0.weighX"] = h.removeValue(forKey: "bottom_mlp.0.weight") }
        let e = try #require(loadError(out))
        #expect(e.contains("bottom_mlp.0.weighX"), "\(e)")
    }

    @Test("reordered tensors (names swapped, same shape) fail by checksum, naming the tensor")
    func reorderedSameShape() throws {
        let (path, _) = try smallCheckpoint("reorder", sizes: [7, 7, 30])
        let out = path + ".swapped"
        try editHeader(path, to: out) { h in
            let a = h["embeddings.f0.weight"], b = h["embeddings.f1.weight"]
            h["embeddings.f0.weight"] = b; h["embeddings.f1.weight"] = a
        }
        let e = try #require(loadError(out))
        #expect(e.contains("embeddings.f0.weight") || e.contains("embeddings.f1.weight"), "\(e)")
        #expect(e.contains("checksum"), "\(e)")
    }

    @Test("reordered tensors of different shapes fail, naming the tensor and both shapes")
    func reorderedOtherShape() throws {
        let (path, _) = try smallCheckpoint("reorder2")
        let out = path + ".swapped"
        try editHeader(path, to: out) { h in
            let a = h["top_mlp.0.bias"], b = h["bottom_mlp.0.bias"]
            h["top_mlp.0.bias"] = b; h["bottom_mlp.0.bias"] = a
        }
        let e = try #require(loadError(out))
        #expect(e.contains("bottom_mlp.0.bias") || e.contains("top_mlp.0.bias"), "\(e)")
    }

    @Test("a changed header value (step) fails the header checksum; data corruption fails the tensor's checksum")
    func tampered() throws {
        let (path, _) = try smallCheckpoint("tamper")
        let out = path + ".step"
        try editHeader(path, to: out) { h in
            var m = h["__metadata__"] as! [String: Any]
            m["step"] = "999"
            h["__metadata__"] = m
        }
        #expect(loadError(out)?.contains("header: checksum mismatch") == true)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count - 3] ^= 0x10
        try data.write(to: URL(fileURLWithPath: path + ".bad"))
        let e = try #require(loadError(path + ".bad"))
        #expect(e.contains("checksum mismatch") && e.contains("tensor"), "\(e)")
    }

    @Test("sizes are checked against the file before anything is allocated: a 40M-row table costs nothing")
    func hugeHeaderRefusedEarly() throws {
        let (path, _) = try smallCheckpoint("huge")
        let out = path + ".huge"
        try editHeader(path, to: out) { h in
            var m = h["__metadata__"] as! [String: Any]
            m["config"] = (m["config"] as! String).replacingOccurrences(of: "\"rows\":30", with: "\"rows\":40000000")
            h["__metadata__"] = m
        }
        var before = rusage(), after = rusage()
        getrusage(RUSAGE_SELF.rawValue, &before)
        let t0 = Date()
        let e = try #require(loadError(out))
        getrusage(RUSAGE_SELF.rawValue, &after)
        #expect(e.contains("embeddings.f2.weight") && e.contains("40000000"), "\(e)")
        #expect(Date().timeIntervalSince(t0) < 1)
        #expect(after.ru_maxrss - before.ru_maxrss < 100_000, "max RSS grew by \(after.ru_maxrss - before.ru_maxrss) KiB")
        // A table claiming more bytes than the file holds is refused by the header check itself.
        try editHeader(path, to: out) { h in
            var t = h["embeddings.f2.weight"] as! [String: Any]
            t["shape"] = [40_000_000, 4]
            h["embeddings.f2.weight"] = t
        }
        #expect(loadError(out)?.contains("embeddings.f2.weight") == true)
    }

    @Test("malformed headers: typed errors, never a crash", arguments: [
        "length", "not-json", "negative-shape", "hole", "overlap", "dtype", "overflow",
    ])
    func malformedHeaders(kind: String) throws {
        let (path, _) = try smallCheckpoint("bad-\(kind)")
        let out = path + "." + kind
        switch kind {
        case "length":
            var d = try Data(contentsOf: URL(fileURLWithPath: path))
            d.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1) << 61) { Data($0) })
            try d.write(to: URL(fileURLWithPath: out))
        case "not-json":
            var d = try Data(contentsOf: URL(fileURLWithPath: path))
            d[8] = UInt8(ascii: "[")
            try d.write(to: URL(fileURLWithPath: out))
        default:
            try editHeader(path, to: out) { h in
                var t = h["top_mlp.0.weight"] as! [String: Any]
                let off = t["data_offsets"] as! [Int]
                switch kind {
                case "negative-shape": t["shape"] = [-6, 10]
                case "hole": t["data_offsets"] = [off[0] + 4, off[1] + 4]
                case "overlap": t["data_offsets"] = [off[0] - 4, off[1] - 4]
                case "dtype": t["dtype"] = "F64"
                default: t["shape"] = [Int.max / 2, 4]
                }
                h["top_mlp.0.weight"] = t
            }
        }
        let e = try #require(loadError(out), "accepted a checkpoint with a bad \(kind)")
        #expect(e.contains(out), "\(e)")
    }
}

@Suite("File mutation fuzz: checkpoints")
struct CheckpointMutationTests {
    @Test("every byte of a checkpoint's header (length and JSON), mutated 5 ways: refused (typed, naming the file) or equal")
    func header() throws {
        let (path, model) = try smallCheckpoint("mutate", sizes: [3, 4, 5])
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let n = Int(good.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let out = path + ".m"
        var tried = 0, refused = 0
        let expected = model.stateTensors().map { Array($0.data) }
        for p in 0..<(8 + n) {
            for f in [{ (x: UInt8) in x ^ 0x01 }, { x in x ^ 0x20 }, { _ in UInt8(ascii: "9") }, { _ in 0 }, { x in x ^ 0x80 }] {
                var b = good
                b[p] = f(b[p])
                if b == good { continue }
                try Data(b).write(to: URL(fileURLWithPath: out))
                tried += 1
                do {
                    let m = try Checkpoint.open(out).loadModel(optimizerState: true)
                    #expect(m.stateTensors().map { Array($0.data) } == expected, "mutation at byte \(p) loaded different tensors")
                } catch {
                    refused += 1
                    #expect(error.description.contains(out), "\(error)")
                }
            }
        }
        #expect(tried >= 9_000, "\(tried) mutated headers")
        print("checkpoint mutation fuzz: \(tried) files, \(refused) refused with a typed error, \(tried - refused) equal to the original")
    }
}
