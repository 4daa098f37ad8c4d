import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import RecKitCarbon
import RecKitKernels
import RecKitEmbeddings
import RecKitModels
import RecKitTraining
import RecKitServer
import RecKitServing
import Testing

let adminToken = "test-admin-token-0123456789"

/// Builds a server on a fresh fixture checkpoint with a temporary carbon ledger and the admin listener on.
func makeServer(maxBodyBytes: Int = 8 << 20, maxWaitMicros: Int = 2_000, maxRows: Int = 65_536, path: String? = nil) throws -> (PredictionServer, String) {
    let path = try path ?? ServingFixtures.checkpoint()
    let tokenFile = (path as NSString).deletingLastPathComponent + "/admin.token"
    try adminToken.write(toFile: tokenFile, atomically: true, encoding: .utf8)
    var o = PredictionServer.Options()
    o.port = 0
    o.adminPort = 0
    o.adminTokenFile = tokenFile
    o.maxRowsPerRequest = maxRows
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
        let expected = try ServingFixtures.score(server.engine.model,
                                                 try server.engine.model.preprocessor.prepareTSV(Array(lines.joined(separator: "\n").utf8)))
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

    @Test("reload (admin listener, bearer token) swaps the model; a failed reload keeps serving the old one")
    func reload() async throws {
        let (server, path) = try makeServer()
        defer { server.finish() }
        let dir = (path as NSString).deletingLastPathComponent
        try ServingFixtures.write(try ServingFixtures.model(seed: 2), to: dir + "/next.ckpt", step: 2)
        let body = ByteBuffer(string: ServingFixtures.jsonRows(ServingFixtures.tsvLines(1)))
        let auth: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(adminToken)"]
        let before = try await server.makeApplication().test(.router) { client in
            object(try await client.execute(uri: "/v1/predict", method: .post, headers: jsonHeaders, body: body))["scores"] as? [Double] ?? []
        }
        let admin = try #require(server.makeAdminApplication())
        try await admin.test(.router) { client in
            try await client.execute(uri: "/admin/reload", method: .post, headers: auth, body: ByteBuffer(string: "{\"model\": \"missing.ckpt\"}")) { r in
                #expect(r.status == .notFound, "\(r.status) \(text(r))")
            }
            try await client.execute(uri: "/admin/reload", method: .post, headers: auth, body: ByteBuffer(string: "{\"model\": \"next.ckpt\"}")) { r in
                #expect(r.status == .ok, "\(text(r))")
                #expect(object(r)["model_version"] as? String == "next.ckpt@step2")
            }
        }
        try await server.makeApplication().test(.router) { client in
            let after = object(try await client.execute(uri: "/v1/predict", method: .post, headers: jsonHeaders, body: body))
            #expect(after["model_version"] as? String == "next.ckpt@step2")
            #expect(before != after["scores"] as? [Double])
            try await client.execute(uri: "/admin/reload", method: .post, headers: auth, body: ByteBuffer(string: "{}")) { r in
                #expect(r.status == .notFound, "admin routes are not on the public listener")
            }
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
        let q = try #require(QuantizedDType(rawValue: dtype))
        let qPath = path + "." + dtype
        _ = try Quantization.run(model: path, dtype: q, output: qPath, pool: ThreadPool(threads: 1))
        let served = try ServedModel.load(qPath, maxBatch: 64)
        #expect(served.version == "model.ckpt.\(dtype)@step1+\(dtype)")
        #expect(served.model.quantization == q)
        #expect(served.model.embeddingCollections.allSatisfy { $0.storages.allSatisfy { $0 is QuantizedRowStorage } },
                "fp32 tables must not be allocated for a quantized model")
        let rows = try served.preprocessor.prepareTSV(Array(ServingFixtures.tsvLines(20).joined(separator: "\n").utf8))
        let a = try ServingFixtures.score(fp32, rows), b = try ServingFixtures.score(served, rows)
        let tol: Float = dtype == "int4" ? 0.02 : 0.005
        for (x, y) in zip(a, b) { #expect(abs(x - y) < tol, "\(dtype): \(x) vs \(y)") }
        // Inference-only: a training step is refused.
        let ws = served.makeWorkspace()
        try served.model.forward(rows.batch, workspace: ws, mode: .training, pool: .init(threads: 1))
        #expect(throws: ModelError.self) { try served.model.backward(workspace: ws, pool: .init(threads: 1)) }
    }
}
