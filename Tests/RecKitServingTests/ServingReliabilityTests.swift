import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import RecKitBenchmarks
import RecKitCore
import RecKitData
import RecKitEmbeddings
import RecKitKernels
import RecKitModels
import RecKitServer
import RecKitServing
import RecKitTraining
import Testing

/// A model directory with two checkpoints that preprocess the same raw rows differently: `a` hashes ids modulo 1000,
/// `b` maps them through a vocabulary (first-seen order) into 301 rows.
func twoPreprocessings() throws -> (dir: String, a: String, b: String) {
    let a = try ServingFixtures.checkpoint(seed: 1, name: "a.safetensors")
    let dir = (a as NSString).deletingLastPathComponent
    // Vocabulary of the first 300 distinct hex ids of generated rows, per feature.
    let lines = ServingFixtures.tsvLines(2_000, seed: 11)
    var vocab = Array(repeating: [UInt64](), count: 26)
    for line in lines {
        let f = line.split(separator: "\t", omittingEmptySubsequences: false)
        for j in 0..<26 where vocab[j].count < 300 {
            let key = UInt64(f[13 + j], radix: 16) ?? 0
            if !vocab[j].contains(key) { vocab[j].append(key) }
        }
    }
    let sizes = vocab.map { $0.count + 1 }
    let schema = DatasetSchema(source: "criteo", hasLabel: true, denseNames: (1...13).map { "I\($0)" },
                               sparse: (1...26).map { SparseFeature(name: "C\($0)", cardinality: sizes[$0 - 1]) },
                               preprocessing: PreprocessingSpec(categorical: .vocabulary(minCount: 1, sizes: sizes), rawIDs: "hex"))
    let config = DLRMConfig(denseCount: 13, sparse: (1...26).map { SparseFeatureSpec(name: "C\($0)", rows: sizes[$0 - 1]) },
                            embeddingDim: 8, bottomHidden: [16], topHidden: [16])
    let model = try DLRM(config: config, initialization: .random(seed: 9), sparseOptimizer: nil)
    let b = dir + "/b.safetensors"
    try ServingFixtures.write(model, to: b, step: 2, schema: schema, vocabularies: vocab)
    return (dir, a, b)
}

@Suite("Serving reliability: reload race, admin door, inputs, cost", .serialized)
struct ServingReliabilityTests {
    @Test("reload back and forth between models with different vocabularies and hash sizes under 400 concurrent requests: every score is its model's offline score")
    func reloadRace() async throws {
        let (_, a, b) = try twoPreprocessings()
        let (server, _) = try makeServer(path: a)
        defer { server.finish() }
        let offlineA = try ServedModel.load(a, maxBatch: 64), offlineB = try ServedModel.load(b, maxBatch: 64)
        let lines = ServingFixtures.tsvLines(40, seed: 11)
        func offline(_ m: ServedModel, _ i: Int) throws -> Double {
            Double(try ServingFixtures.score(m, try m.preprocessor.prepareTSV(Array(lines[i].utf8)))[0])
        }
        let expected = [a: try (0..<40).map { try offline(offlineA, $0) }, b: try (0..<40).map { try offline(offlineB, $0) }]
        let app = server.makeApplication()
        // 20 rounds; each sends 20 requests concurrently with a reload to the other model, so requests are
        // preprocessed by one model and batched while the other becomes current (both versions must be seen).
        let results = try await app.test(.router) { client in
            var all = [(Int, String, Double)]()
            for k in 0..<20 {
                let round = try await withThrowingTaskGroup(of: (Int, String, Double)?.self) { g in
                    for r in 0..<20 {
                        g.addTask {
                            let i = (k * 20 + r) % 40
                            let resp = try await client.execute(uri: "/v1/predict", method: .post, headers: [.contentType: "text/tab-separated-values"],
                                                                body: ByteBuffer(string: lines[i]))
                            let o = object(resp)
                            return (i, o["model_version"] as? String ?? "?", (o["scores"] as? [Double])?.first ?? .nan)
                        }
                        if r == 10 {
                            g.addTask { _ = await server.reload(path: k % 2 == 0 ? b : a); return nil }
                        }
                    }
                    return try await g.reduce(into: [(Int, String, Double)]()) { if let x = $1 { $0.append(x) } }
                }
                all += round
            }
            return all
        }
        #expect(results.count == 400)
        var mismatched = 0
        var seen = Set<String>()
        for (i, version, score) in results {
            seen.insert(version)
            let path = version.hasPrefix("a.safetensors") ? a : b
            if abs(score - expected[path]![i]) > 1e-6 { mismatched += 1 }
        }
        print("reload race: 400 requests across 20 reloads between two preprocessings, \(mismatched) mismatched scores, versions \(seen.sorted())")
        #expect(mismatched == 0)
        #expect(seen == ["a.safetensors@step1", "b.safetensors@step2"], "both models must have served requests")
    }

    @Test("the admin door: no token 401, another file 403 (existence not revealed), a 1 GiB junk file refused fast, over-limit body 413")
    func adminDoor() async throws {
        let (dir, a, b) = try twoPreprocessings()
        let (server, _) = try makeServer(path: a)
        defer { server.finish() }
        // A 1 GiB sparse file of zeros inside the model directory, a directory, a symlink out of it.
        let junk = dir + "/junk.safetensors"
        FileManager.default.createFile(atPath: junk, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: junk))
        try h.truncate(atOffset: 1 << 30)
        try h.close()
        try FileManager.default.createDirectory(atPath: dir + "/subdir", withIntermediateDirectories: true)
        try? FileManager.default.createSymbolicLink(atPath: dir + "/escape.safetensors", withDestinationPath: "/etc/passwd")
        let auth: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(adminToken)"]
        let admin = try #require(server.makeAdminApplication())
        try await admin.test(.router) { client in
            for (headers, body, status, fragment) in [
                ([.contentType: "application/json"] as HTTPFields, "{\"model\": \"b.safetensors\"}", 401, "admin token"),
                ([.contentType: "application/json", .authorization: "Bearer wrong-token-0123456789"], "{\"model\": \"b.safetensors\"}", 401, "admin token"),
                (auth, "{\"model\": \"/etc/shadow\"}", 403, "outside the model directory"),
                (auth, "{\"model\": \"/etc/does-not-exist\"}", 403, "outside the model directory"),
                (auth, "{\"model\": \"../../etc/passwd\"}", 403, "outside the model directory"),
                (auth, "{\"model\": \"escape.safetensors\"}", 403, "outside the model directory"),
                (auth, "{\"model\": \"subdir\"}", 422, "not a regular file"),
                (auth, "{\"model\": \"junk.safetensors\"}", 422, "junk.safetensors"),
                (auth, "{\"model\": \"" + String(repeating: "x", count: 70_000) + "\"}", 413, "64 KiB"),
            ] {
                let t0 = Date()
                try await client.execute(uri: "/admin/reload", method: .post, headers: headers, body: ByteBuffer(string: body)) { r in
                    #expect(Int(r.status.code) == status, "\(body.prefix(60)): \(r.status) \(text(r).prefix(200))")
                    let message = (object(r)["error"] as? [String: Any])?["message"] as? String ?? ""
                    #expect(message.contains(fragment), "\(body.prefix(60)): \(message)")
                    #expect(!message.contains("magic") && !message.contains("cannot read"), "the reply must not describe the file")
                }
                #expect(Date().timeIntervalSince(t0) < 2, "\(body.prefix(40)) took too long")
            }
            // A legitimate model with another preprocessing: loaded, and the server keeps serving.
            try await client.execute(uri: "/admin/reload", method: .post, headers: auth, body: ByteBuffer(string: "{\"model\": \"b.safetensors\"}")) { r in
                #expect(r.status == .ok, "\(text(r))")
            }
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #expect(usage.ru_maxrss < 900_000, "the 1 GiB file must not be read into memory (max RSS \(usage.ru_maxrss) KiB)")
        try await server.makeApplication().test(.router) { client in
            let r = try await client.execute(uri: "/v1/predict", method: .post, headers: [.contentType: "text/tab-separated-values"],
                                             body: ByteBuffer(string: ServingFixtures.tsvLines(3).joined(separator: "\n")))
            #expect(r.status == .ok && object(r)["model_version"] as? String == "b.safetensors@step2")
        }
        _ = b
    }

    @Test("a model that scores NaN answers 500 with a message (valid JSON), counted in /metrics")
    func nonFiniteScore() async throws {
        let model = try ServingFixtures.model(seed: 3)
        model.top.layers.last!.bias.pointer[0] = .nan
        let dir = NSTemporaryDirectory() + "reckit-nan-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try ServingFixtures.write(model, to: dir + "/nan.safetensors", step: 1)
        let (server, _) = try makeServer(path: dir + "/nan.safetensors")
        defer { server.finish() }
        try await server.makeApplication().test(.router) { client in
            let r = try await client.execute(uri: "/v1/predict", method: .post, headers: jsonHeaders,
                                             body: ByteBuffer(string: ServingFixtures.jsonRows(ServingFixtures.tsvLines(2))))
            #expect(r.status == .internalServerError)
            let e = try #require(object(r)["error"] as? [String: Any], "the 500 must be valid JSON: \(text(r))")
            #expect((e["message"] as? String)?.contains("non-finite") == true)
            try await client.execute(uri: "/metrics", method: .get) { m in
                #expect(text(m).contains("reckit_request_errors_total{route=\"/v1/predict\",kind=\"internal\"} 1"), "\(text(m).prefix(1500))")
            }
        }
    }

    @Test("multi-hot weighted features are served exactly as training preprocessed them; a list for a one-hot feature is refused")
    func multiHot() throws {
        let schema = DatasetSchema(source: "libfm", hasLabel: true, denseNames: [],
                                   sparse: [SparseFeature(name: "user", cardinality: 40),
                                            SparseFeature(name: "features", cardinality: 100, multiHot: true, weighted: true)],
                                   preprocessing: PreprocessingSpec(categorical: .hash(modulo: 100), rawIDs: "decimal"))
        let config = FMConfig(denseCount: 1, sparse: [SparseFeatureSpec(name: "user", rows: 40), SparseFeatureSpec(name: "features", rows: 100)], embeddingDim: 4)
        let model = try config.makeModel(initialization: .random(seed: 2), sparseOptimizer: nil, quantization: nil)
        let dir = NSTemporaryDirectory() + "reckit-mh-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try ServingFixtures.write(model, to: dir + "/fm.safetensors", step: 1, schema: schema)
        let served = try ServedModel.load(dir + "/fm.safetensors", maxBatch: 8)
        // Hash mode: user 45 → 45 mod 40? No: each feature hashes modulo its own table (100); user ids must fit 40 rows.
        let rows = try served.preprocessor.prepareJSON(Array(#"{"instances": [{"user": 7, "features": ["3:0.5", 12, "250:2"]}, {"user": 1}]}"#.utf8))
        #expect(rows.ids[1] == [3, 12, 50] && rows.weights[1] == [0.5, 1, 2] && rows.offsets[1] == [0, 3, 3])
        let manual = Batch(labels: [], dense: [], sparse: KeyedJaggedTensor(keys: ["user", "features"], values: [[7, 1], [3, 12, 50]],
                                                                            offsets: [[0, 1, 2], [0, 3, 3]], weights: [[], [0.5, 1, 2]]))
        let ws = served.makeWorkspace()
        try served.model.forward(manual, workspace: ws, mode: .inference, pool: ThreadPool(threads: 1))
        let expected = ws.lastLogits.map { 1 / (1 + Float(exp(-Double($0)))) }
        #expect(try ServingFixtures.score(served, rows) == expected)
        for (body, fragment) in [(#"{"instances": [{"user": [1, 2]}]}"#, "one-hot"), (#"{"instances": [{"features": 5}]}"#, "multi-hot"),
                                 (#"{"instances": [{"features": ["3:nan"]}]}"#, "finite")] {
            do { _ = try served.preprocessor.prepareJSON(Array(body.utf8)); Issue.record("accepted \(body)") } catch {
                #expect(error.status == 422 && error.message.contains(fragment), "\(error.message)")
            }
        }
    }

    @Test("cost per request is linear: 200k rows cost about 4× 50k (a quadratic split cost 16×); above --max-rows-per-request: 413")
    func linearCost() throws {
        let p = try Preprocessor(schema: ServingFixtures.schema(), vocabularies: [], maxRows: 300_000)
        let line = ServingFixtures.tsvLines(1)[0]
        func seconds(_ n: Int) throws -> Double {
            let rows = try p.prepareTSV(Array(Array(repeating: line, count: n).joined(separator: "\n").utf8))
            var best = Double.infinity
            for _ in 0..<3 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                var start = 0
                while start < rows.count { let end = min(rows.count, start + 256); _ = rows.slice(start..<end); start = end }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            return best
        }
        let small = try seconds(50_000), large = try seconds(200_000)
        #expect(large / small < 8, "50k rows \(small) s, 200k rows \(large) s: not linear")
        let limited = try Preprocessor(schema: ServingFixtures.schema(), vocabularies: [], maxRows: 100)
        do { _ = try limited.prepareTSV(Array(Array(repeating: line, count: 101).joined(separator: "\n").utf8)); Issue.record("101 rows accepted") } catch {
            #expect(error.status == 413 && error.message.contains("--max-rows-per-request"))
        }
        let empties = "{\"rows\": [" + Array(repeating: "{}", count: 101).joined(separator: ",") + "]}"
        do { _ = try limited.prepareJSON(Array(empties.utf8)); Issue.record("101 rows accepted") } catch { #expect(error.status == 413) }
    }
}

@Suite("Hostile requests", .serialized)
struct HostileRequestTests {
    @Test("≥ 200 malformed bodies: each gets a 4xx with a precise message; the server keeps serving well-formed requests")
    func corpus() async throws {
        let (server, _) = try makeServer(maxBodyBytes: 8 << 20, maxRows: 1_000)
        defer { server.finish() }
        let corpus = HostileRequests.corpus(maxBodyBytes: 8 << 20, maxRows: 1_000)
        #expect(corpus.count >= 200)
        let good = ServingFixtures.jsonRows(ServingFixtures.tsvLines(2))
        let statuses = try await server.makeApplication().test(.router) { client in
            var statuses: [Int: Int] = [:]
            for r in corpus {
                let resp = try await client.execute(uri: "/v1/predict", method: .post, headers: [.contentType: r.contentType], body: ByteBuffer(bytes: r.body))
                let status = Int(resp.status.code)
                statuses[status, default: 0] += 1
                #expect((400..<500).contains(status), "\(r.name): \(status) \(text(resp).prefix(200))")
                let message = (object(resp)["error"] as? [String: Any])?["message"] as? String ?? ""
                #expect(message.count > 10, "\(r.name): no precise message (\(text(resp).prefix(120)))")
                let ok = try await client.execute(uri: "/v1/predict", method: .post, headers: jsonHeaders, body: ByteBuffer(string: good))
                #expect(ok.status == .ok, "after \(r.name) the server no longer serves")
            }
            return statuses
        }
        print("hostile corpus: \(corpus.count) malformed requests, statuses \(statuses.sorted { $0.key < $1.key }), every one followed by a well-formed 200")
    }
}
