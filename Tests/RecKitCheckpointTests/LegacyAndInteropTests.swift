import CRecKitShims
import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitEmbeddings
import RecKitKernels
import RecKitModels
import RecKitTestSupport
import Testing

/// Writes `model` in RecKit's first checkpoint format ("RKCKPT01", positional tensors), as the old `Checkpoint.save`
/// did, with an Adam optimizer's moments `first`/`second` per dense parameter.
func writeLegacy(_ model: DLRM, first: [[Float]], second: [[Float]], step: Int, to path: String) throws {
    var out = Data("RKCKPT01".utf8)
    func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    let c = model.config
    let header: [String: Any] = [
        "model": "dlrm", "step": step, "rowsSeen": 10, "denseOptimizer": "adam", "sparseOptimizer": "rowwise_adagrad", "seed": 1,
        "dlrm": ["denseCount": c.denseCount, "tableSizes": c.tableSizes, "embeddingDim": c.embeddingDim, "bottomHidden": c.bottomHidden,
                 "topHidden": c.topHidden, "includeDiagonal": false],
        "position": ["step": step, "epoch": 0, "rowInEpoch": 64],
    ]
    let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    u32(1); u32(UInt32(json.count)); u32(json.withUnsafeBytes { reckit_crc32c(0, $0.baseAddress, $0.count) }); out.append(json)
    var tensors: [(String, [Float])] = []
    for (i, p) in model.denseParameters.enumerated() { tensors.append(("dense.\(i)", p.value.toArray())) }
    let storages = model.embeddings.storages.map { $0 as! DenseRowStorage }
    for (i, s) in storages.enumerated() { tensors.append(("table.\(i)", s.weights.toArray())) }
    for (i, s) in storages.enumerated() { tensors.append(("state.\(i)", s.state.toArray())) }
    for (i, m) in first.enumerated() { tensors.append(("opt.first.\(i)", m)) }
    for (i, v) in second.enumerated() { tensors.append(("opt.second.\(i)", v)) }
    u32(UInt32(tensors.count))
    for (name, values) in tensors {
        u32(UInt32(name.utf8.count)); out.append(contentsOf: Array(name.utf8)); u64(UInt64(values.count))
        values.withUnsafeBytes { raw in
            u32(reckit_crc32c(0, raw.baseAddress, raw.count))
            out.append(contentsOf: raw)
        }
    }
    u32(0)  // no vocabularies
    try out.write(to: URL(fileURLWithPath: path))
}

@Suite("Legacy checkpoints and interoperability")
struct LegacyAndInteropTests {
    @Test("a first-format checkpoint is refused with the convert command; converted, it loads with every tensor named")
    func legacyConvert() throws {
        let config = DLRMConfig(denseCount: 3, tableSizes: [6, 9], embeddingDim: 4, bottomHidden: [5], topHidden: [6])
        let model = try DLRM(config: config, initialization: .random(seed: 2), sparseOptimizer: .rowWiseAdagrad)
        for s in model.embeddings.storages { let d = s as! DenseRowStorage; for i in 0..<d.state.count { d.state.pointer[i] = Float(i) + 0.5 } }
        let first = model.denseParameters.map { p in (0..<p.value.count).map { Float($0) * 0.01 } }
        let second = model.denseParameters.map { p in (0..<p.value.count).map { Float($0) * 0.02 } }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-legacy-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let old = dir + "/old.ckpt", new = dir + "/new.safetensors"
        try writeLegacy(model, first: first, second: second, step: 7, to: old)
        do { _ = try Checkpoint.open(old); Issue.record("opened an old-format file") } catch {
            #expect(error == .legacyFormat(path: old))
            #expect(error.description.contains("reckit checkpoint convert"))
        }
        let report = try LegacyCheckpoint.convert(from: old, to: new)
        #expect(report.model == "dlrm")
        let reader = try Checkpoint.open(new)
        #expect(reader.metadata.step == 7 && reader.metadata.denseOptimizer?.kind == "adam")
        let loaded = try reader.loadModel(optimizerState: true)
        for (a, b) in zip(model.stateTensors(), loaded.stateTensors()) { #expect(a.name == b.name && Array(a.data) == Array(b.data), "\(a.name)") }
        let m = try #require(reader.entry("optimizer.top_mlp.1.weight.exp_avg_sq"))
        #expect(m.shape == [1, 6])
    }

    @Test("Python's safetensors reads a RecKit checkpoint: the same names, shapes and values",
          .enabled(if: LegacyAndInteropTests.python != nil, "no Python with the safetensors package (pip install safetensors numpy)"))
    func pythonSafetensors() throws {
        let (path, model) = try smallCheckpoint("python")
        let script = """
        import json, sys
        from safetensors.numpy import load_file
        d = load_file(sys.argv[1])
        print(json.dumps({k: [list(v.shape), str(v.dtype), float(v.astype('float64').sum())] for k, v in d.items()}))
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(Self.python))
        p.arguments = ["-c", script, path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let seen = try #require(try JSONSerialization.jsonObject(with: out) as? [String: [Any]])
        for t in model.stateTensors() {
            let entry = try #require(seen[t.name], "\(t.name) missing in Python")
            #expect(entry[0] as? [Int] == t.shape && entry[1] as? String == "float32", "\(t.name)")
            let sum = Array(t.floats).reduce(0.0) { $0 + Double($1) }
            #expect(abs((entry[2] as? Double ?? .nan) - sum) <= 1e-6 * max(1, abs(sum)), "\(t.name)")
        }
    }

    /// Bytes of a tensor kept "elsewhere": an array read and written in ranges (what a tiered table's source does).
    final class ArraySource: TensorDataSource, @unchecked Sendable {
        var bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        func read(into destination: UnsafeMutableRawBufferPointer, at offset: Int) throws(TensorIOError) {
            bytes.withUnsafeBytes { destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + destination.count)])) }
        }
        func write(_ source: UnsafeRawBufferPointer, at offset: Int) throws(TensorIOError) {
            bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[offset..<(offset + source.count)]).copyMemory(from: source) }
        }
    }

    @Test("streamed tensors (checksummed while copied, header written last) read back exactly, by RecKit and by Python's safetensors")
    func streamedTensors() throws {
        let (path, model) = try smallCheckpoint("streamed")
        var data = TestData(seed: 12)
        // 9 MiB: more than one 8 MiB streaming chunk.
        let big = data.floats(9 << 18)
        let source = ArraySource(big.withUnsafeBytes { Array($0) })
        let streamed = StateTensor(name: "extra.big", dtype: .f32, shape: [9 << 18], role: .parameter, source: source)
        let out = path + ".streamed.safetensors"
        let meta = CheckpointMetadata(model: .dlrm, config: (model.configuration as! DLRMConfig).encodedJSON(), schema: nil, denseOptimizer: nil,
                                      sparseOptimizer: .init(kind: "rowwise_adagrad"), step: 1, seed: 1, rowsSeen: 0)
        try Checkpoint.write(model.stateTensors() + [streamed], metadata: meta, to: out)
        let reader = try Checkpoint.open(out)
        let back = ArraySource([UInt8](repeating: 0, count: big.count * 4))
        try reader.read(into: [StateTensor(name: "extra.big", dtype: .f32, shape: [9 << 18], role: .parameter, source: back)]) { _ in true }
        #expect(back.bytes == source.bytes)
        guard let python = Self.python else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", "import sys; from safetensors.numpy import load_file; d = load_file(sys.argv[1]); print(float(d['extra.big'].astype('float64').sum()), len(d))", out]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let parts = text.split(separator: " ")
        let sum = big.reduce(0.0) { $0 + Double($1) }
        #expect(parts.count == 2 && abs((Double(parts[0]) ?? .nan) - sum) <= 1e-6 * max(1, abs(sum)), "python: \(text)")
        #expect(parts.count == 2 && Int(parts[1].trimmingCharacters(in: .whitespacesAndNewlines)) == model.stateTensors().count + 1)
    }

    /// A Python that can import safetensors: $RECKIT_PYTHON, the repo's .venv-tools, or python3.
    static let python: String? = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let candidates = [ProcessInfo.processInfo.environment["RECKIT_PYTHON"], root + "/.venv-tools/bin/python", "/usr/bin/python3"].compactMap { $0 }
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: c)
            p.arguments = ["-c", "import safetensors, numpy"]
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { continue }
            p.waitUntilExit()
            if p.terminationStatus == 0 { return c }
        }
        return nil
    }()
}
