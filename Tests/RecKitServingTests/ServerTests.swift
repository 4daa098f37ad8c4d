import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import RecKitCarbon
import RecKitKernels
import RecKitModels
import RecKitTraining
import RecKitServer
import RecKitServing
import Testing

/// Builds a server on a fresh fixture checkpoint with a temporary carbon ledger.
func makeServer(maxBodyBytes: Int = 8 << 20, maxWaitMicros: Int = 2_000) throws -> (PredictionServer, String) {
    let path = try ServingFixtures.checkpoint()
    var o = PredictionServer.Options()
    o.port = 0
    o.maxBodyBytes = maxBodyBytes
    o.engine.maxBatch = 64
    o.engine.maxWaitMicros = maxWaitMicros
    o.engine.threads = 2
    let ledger = NSTemporaryDirectory() + "reckit-ledger-\(UUID().uuidString)"
    let tracker = try CarbonTracker(command: "serve", settings: CarbonSettings(ledgerDirectory: ledger), coresUsed: 2)
    return (try PredictionServer(modelPath: path, options: o, carbon: tracker, logger: Logger(label: "test")), path)
}

func text(_ r: TestResponse) -> String { String(buffer: r.body) }
func object(_ r: TestResponse) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text(r).utf8))) as? [String: Any] ?? [:]
}
let jsonHeaders: HTTPFields = [.contentType: "application/json"]

@Suite("HTTP server: routes, errors, batching, metrics, reload", .serialized)
struct ServerTests {
    @Test("predict: JSON and TSV give the scores the model gives to the preprocessed rows; health, ready")
    func predict() async throws {
        let (server, _) = try makeServer()
        defer { server.finish() }
        let lines = ServingFixtures.tsvLines(5)
        let expected = try server.engine.model.score(try server.engine.model.preprocessor.prepareTSV(Array(lines.joined(separator: "\n").utf8)),
                                                     pool: .init(threads: 1))
        try await server.makeApplication().test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { r in
                #expect(r.status == .ok)
                #expect(object(r)["model_version"] as? String == "model.ckpt@step1")
            }
            let json = try await client.execute(uri: "/v1/predict", method: .post, headers: jsonHeaders,
                                                body: ByteBuffer(string: ServingFixtures.jsonRows(lines)))
            #expect(json.status == .ok)
            let scores = try #require(object(json)["scores"] as? [Double])
            #expect(scores.count == 5)
            for (s, e) in zip(scores, expected) { #expect(abs(s - Double(e)) < 1e-6 && s > 0 && s < 1) }
            let tsv = try await client.execute(uri: "/v1/predict", method: .post, headers: [.contentType: "text/tab-separated-values"],
                                               body: ByteBuffer(string: lines.joined(separator: "\n")))
            #expect(tsv.status == .ok)
            #expect(object(tsv)["scores"] as? [Double] == scores)
        }
    }

    @Test("bad input: 400 / 413 / 422 with JSON errors, counted in /metrics; never a 500")
    func errors() async throws {
        let (server, _) = try makeServer(maxBodyBytes: 4_096)
        defer { server.finish() }
        try await server.makeApplication().test(.router) { client in
            let cases: [(String, String, HTTPResponse.Status)] = [
                ("application/json", "{\"rows\": [", .badRequest),
                ("application/json", "{\"rows\": []}", .unprocessableContent),
                ("application/json", "{\"instances\": [{\"I1\": 1, \"Z9\": 2}]}", .unprocessableContent),
                ("application/json", "{\"rows\": [{\"dense\": [\"inf\",0,0,0,0,0,0,0,0,0,0,0,0], \"categorical\": []}]}", .unprocessableContent),
                ("application/json", "", .unprocessableContent),
                ("text/tab-separated-values", "1\t2\t3", .unprocessableContent),
                ("application/json", String(repeating: " ", count: 5_000), .contentTooLarge),
                ("image/png", "xx", .unprocessableContent),
            ]
            for (type, body, status) in cases {
                try await client.execute(uri: "/v1/predict", method: .post, headers: [.contentType: type], body: ByteBuffer(string: body)) { r in
                    #expect(r.status == status, "\(type) \(body.prefix(40)): \(r.status) \(text(r))")
                    let e = object(r)["error"] as? [String: Any]
                    #expect(e?["status"] as? Int == Int(status.code))
                    #expect((e?["message"] as? String)?.isEmpty == false)
                }
            }
            try await client.execute(uri: "/metrics", method: .get) { r in
                let m = text(r)
                #expect(m.contains("reckit_requests_total{route=\"/v1/predict\",status=\"422\"} 6"), "\(m.prefix(2000))")
                #expect(m.contains("reckit_request_errors_total{route=\"/v1/predict\",kind=\"tooLarge\"} 1"))
                #expect(m.contains("reckit_request_errors_total{route=\"/v1/predict\",kind=\"malformed\"} 1"))
            }
        }
    }

    @Test("concurrent requests are batched on the inference thread; metrics show batches, model and carbon")
    func batching() async throws {
        let (server, _) = try makeServer(maxWaitMicros: 20_000)
        defer { server.finish() }
        let lines = ServingFixtures.tsvLines(64)
        try await server.makeApplication().test(.router) { client in
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { g in
                for i in 0..<64 {
                    g.addTask {
                        try await client.execute(uri: "/v1/predict", method: .post, headers: jsonHeaders,
                                                 body: ByteBuffer(string: ServingFixtures.jsonRows([lines[i]]))).status
                    }
                }
                return try await g.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.count == 64 && statuses.allSatisfy { $0 == .ok })
            #expect(server.engine.batchesRun < 64, "batches \(server.engine.batchesRun) for 64 concurrent requests")
            #expect(server.engine.rowsScored == 64)
            try await client.execute(uri: "/metrics", method: .get) { r in
                let m = text(r)
                #expect(m.contains("reckit_rows_scored_total 64"))
                #expect(m.contains("reckit_batch_rows_bucket"))
                #expect(m.contains("reckit_request_duration_seconds_bucket"))
                #expect(m.contains("reckit_model_info{version=\"model.ckpt@step1\"} 1"))
                #expect(m.contains("reckit_energy_joules"))
                #expect(m.contains("reckit_carbon_operational_grams") && m.contains("reckit_carbon_embodied_grams"))
            }
        }
    }

    @Test("reload swaps the model between batches; a failed reload keeps serving the old one")
    func reload() async throws {
        let (server, _) = try makeServer()
        defer { server.finish() }
        let other = try ServingFixtures.checkpoint(seed: 2, name: "next.ckpt")
        let body = ByteBuffer(string: ServingFixtures.jsonRows(ServingFixtures.tsvLines(1)))
        try await server.makeApplication().test(.router) { client in
            let before = object(try await client.execute(uri: "/v1/predict", method: .post, headers: jsonHeaders, body: body))
            try await client.execute(uri: "/admin/reload", method: .post, headers: jsonHeaders,
                                     body: ByteBuffer(string: "{\"model\": \"/nonexistent/x.ckpt\"}")) { r in
                #expect(r.status.code >= 400 && r.status.code < 500 || r.status.code == 503, "\(r.status)")
            }
            try await client.execute(uri: "/readyz", method: .get) { #expect(object($0)["model_version"] as? String == "model.ckpt@step1") }
            try await client.execute(uri: "/admin/reload", method: .post, headers: jsonHeaders,
                                     body: ByteBuffer(string: "{\"model\": \"\(other)\"}")) { r in
                #expect(r.status == .ok)
                #expect(object(r)["model_version"] as? String == "next.ckpt@step2")
            }
            let after = object(try await client.execute(uri: "/v1/predict", method: .post, headers: jsonHeaders, body: body))
            #expect(after["model_version"] as? String == "next.ckpt@step2")
            #expect(before["scores"] as? [Double] != after["scores"] as? [Double])
            try await client.execute(uri: "/metrics", method: .get) { r in
                #expect(text(r).contains("reckit_model_reloads_total 1"))
                #expect(text(r).contains("reckit_model_info{version=\"model.ckpt@step1\"} 0"))
            }
        }
    }
}

@Suite("Quantized checkpoints serve")
struct QuantizedServingTests {
    @Test("int8/int4/fp16 checkpoints load inference-only, report their dtype, and score close to fp32", arguments: ["fp16", "int8", "int4"])
    func quantized(dtype: String) throws {
        let path = try ServingFixtures.checkpoint()
        let fp32 = try ServedModel.load(path, maxBatch: 64)
        let (m, _, header, vocab) = try Checkpoint.loadWithVocabularies(path, maxBatch: 64, maxIndicesPerTable: 64)
        let dlrm = try #require(m as? DLRM)
        let q = try #require(QuantizedDType(rawValue: dtype))
        dlrm.quantize(q)
        var h = header
        h.quantization = q
        let qPath = path + "." + dtype
        try Checkpoint.save(dlrm, optimizer: DenseOptimizer(kind: .adam), header: h, vocabularies: vocab, to: qPath)
        let served = try ServedModel.load(qPath, maxBatch: 64)
        #expect(served.version == "model.ckpt.\(dtype)@step1+\(dtype)")
        let loadedDLRM = try #require(served.model as? DLRM)
        #expect(loadedDLRM.tables.allSatisfy { $0.count == 0 }, "fp32 tables must not be allocated for a quantized model")
        let rows = try served.preprocessor.prepareTSV(Array(ServingFixtures.tsvLines(20).joined(separator: "\n").utf8))
        let a = try fp32.score(rows, pool: .init(threads: 1)), b = try served.score(rows, pool: .init(threads: 1))
        let tol: Float = dtype == "int4" ? 0.02 : 0.005
        for (x, y) in zip(a, b) { #expect(abs(x - y) < tol, "\(dtype): \(x) vs \(y)") }
        // Same scores as the in-memory quantized model: the checkpoint round-trips the bytes.
        let inMemory = ServedModel(model: dlrm, preprocessor: served.preprocessor, version: "", path: "", maxBatch: 64)
        #expect(try inMemory.score(rows, pool: .init(threads: 1)) == b)
        // Inference-only.
        #expect(throws: KernelError.self) { try loadedDLRM.backward(dense: [], update: SparseUpdate(optimizer: .sgd, learningRate: 0.1), pool: .init(threads: 1)) }
    }
}
