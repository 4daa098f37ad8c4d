import Foundation
import Logging
import RecKitCarbon
import RecKitCore
import RecKitData
import RecKitModels
import RecKitServer
import RecKitServing
import RecKitTraining

/// `reckit bench serve`: starts the server in this process on a loopback port, drives it with `HTTPLoad` (single-row
/// and 64-row JSON requests over N keep-alive connections, bounded time, 0 errors required), then does the same to
/// the Python peer (benchmarks/pytorch/serve_peer.py: FastAPI + uvicorn + PyTorch, same architecture) and reports
/// the ratios. The model is a Criteo-layout DLRM (hash mode, `hashRows` rows per table, Kaggle MLP sizes) with
/// random weights unless `--model` is given: throughput does not depend on what the weights learned.
public struct ServeBenchmark {
    public struct Config: Sendable {
        public var modelPath: String?
        public var workDir: String
        public var connections = 64
        public var seconds = 10.0
        public var warmup = 2.0
        public var hashRows = 100_000
        public var maxBatch = 256
        public var maxWaitMicros = 1_000
        public var threads = 2
        public var python: String?
        public var peerScript: String
        /// Also measure single-row p99 under hostile load (`HostileLoadReport`), with `hostileConnections` well-formed connections.
        public var hostile = false
        public var hostileConnections = 8
        public init(workDir: String, peerScript: String) { self.workDir = workDir; self.peerScript = peerScript }
    }

    public struct Scenario: Codable, Sendable {
        public var name: String
        public var reckit: HTTPLoad.Result
        public var python: HTTPLoad.Result?
        public var qpsRatio: Double?
        enum CodingKeys: String, CodingKey { case name, reckit, python; case qpsRatio = "qps_ratio" }
    }

    public struct Report: Codable, Sendable {
        /// Headline: single-row requests at `connections` connections.
        public var qps: Double
        public var p50Ms: Double
        public var p99Ms: Double
        public var p999Ms: Double
        public var errors: Int
        public var pythonQPS: Double?
        public var pythonP99Ms: Double?
        public var pythonError: String?
        public var ratio: Double?
        public var scenarios: [Scenario]
        public var connections: Int
        public var seconds: Double
        public var maxBatch: Int
        public var maxWaitMicros: Int
        public var modelVersion: String
        public var machine: MachineInfo
        public var hostile: HostileLoadReport?

        enum CodingKeys: String, CodingKey {
            case qps, errors, ratio, scenarios, connections, seconds, machine
            case p50Ms = "p50_ms", p99Ms = "p99_ms", p999Ms = "p999_ms"
            case pythonQPS = "python_qps", pythonP99Ms = "python_p99_ms", pythonError = "python_error"
            case maxBatch = "max_batch", maxWaitMicros = "max_wait_us", modelVersion = "model_version"
            case hostile
        }

        /// Every key is present; an absent peer result is an explicit null (the JSON contract).
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(qps, forKey: .qps); try c.encode(p50Ms, forKey: .p50Ms); try c.encode(p99Ms, forKey: .p99Ms)
            try c.encode(p999Ms, forKey: .p999Ms); try c.encode(errors, forKey: .errors)
            try c.encode(pythonQPS, forKey: .pythonQPS); try c.encode(pythonP99Ms, forKey: .pythonP99Ms)
            try c.encode(pythonError, forKey: .pythonError); try c.encode(ratio, forKey: .ratio)
            try c.encode(scenarios, forKey: .scenarios); try c.encode(connections, forKey: .connections)
            try c.encode(seconds, forKey: .seconds); try c.encode(maxBatch, forKey: .maxBatch)
            try c.encode(maxWaitMicros, forKey: .maxWaitMicros); try c.encode(modelVersion, forKey: .modelVersion)
            try c.encode(machine, forKey: .machine)
            try c.encode(hostile, forKey: .hostile)
        }
    }

    public let config: Config
    let logger: Logger
    public init(config: Config, logger: Logger) { self.config = config; self.logger = logger }

    public func run() async throws -> Report {
        let c = config
        try FileManager.default.createDirectory(atPath: c.workDir, withIntermediateDirectories: true)
        let modelPath = try c.modelPath ?? Self.makeModel(in: c.workDir, hashRows: c.hashRows)
        var o = PredictionServer.Options()
        o.port = 0
        o.engine.maxBatch = c.maxBatch
        o.engine.maxWaitMicros = c.maxWaitMicros
        o.engine.threads = c.threads
        let server = try PredictionServer(modelPath: modelPath, options: o, carbon: nil, logger: logger)
        let (portStream, portSink) = AsyncStream.makeStream(of: Int.self)
        let serverTask = Task { try await server.run { ch in portSink.yield(ch.localAddress?.port ?? 0) } }
        var it = portStream.makeAsyncIterator()
        guard let port = await it.next(), port > 0 else { throw RequestError(.unavailable, "the server did not start") }
        logger.info("bench serve: RecKit on port \(port), \(c.connections) connections, \(c.seconds) s per scenario")

        var rng = SeededRandom(seed: 7)
        let scenarios = [("single_row", 1), ("rows_64", 64)]
        var results: [Scenario] = []
        for (name, rows) in scenarios {
            let bodies = (0..<16).map { _ in Self.body(rows: rows, rng: &rng) }
            let requests = bodies.map { HTTPLoad.request(path: "/v1/predict", body: $0, contentType: "application/json") }
            let r = await Self.load(port: port, requests: requests, rows: rows, c)
            logger.info("RecKit \(name): \(Int(r.qps)) req/s, p99 \(String(format: "%.2f", r.p99Ms)) ms, \(r.errors) errors")
            results.append(Scenario(name: name, reckit: r))
        }
        var hostile: HostileLoadReport?
        if c.hostile {
            var rng3 = SeededRandom(seed: 8)
            let single = (0..<16).map { _ in HTTPLoad.request(path: "/v1/predict", body: Self.body(rows: 1, rng: &rng3), contentType: "application/json") }
            let h = await Self.hostile(port: port, single: single, connections: c.hostileConnections, seconds: c.seconds, warmup: c.warmup,
                                       maxBodyBytes: o.maxBodyBytes)
            logger.info("hostile: \(h.hostileSent) malformed requests \(h.hostileStatuses), p99 \(String(format: "%.2f", h.p99UnloadedMs)) → \(String(format: "%.2f", h.p99LoadedMs)) ms, server up: \(h.serverUp)")
            hostile = h
        }
        serverTask.cancel()
        _ = try? await serverTask.value

        // The Python peer, same requests.
        var pythonError: String?
        if let python = c.python {
            let peerPort = port + 1 < 65535 ? Self.freePort() : 8090
            let p = Process()
            p.executableURL = URL(fileURLWithPath: python)
            p.arguments = [c.peerScript, "--port", String(peerPort), "--rows", String(c.hashRows), "--threads", String(c.threads)]
            // Output to a file, never an unread pipe: a full pipe would block the peer (and its exit).
            let logPath = c.workDir + "/python-peer.log"
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            let logFile = FileHandle(forWritingAtPath: logPath)
            p.standardOutput = logFile
            p.standardError = logFile
            do {
                try p.run()
                if await Self.waitReady(port: peerPort, seconds: 120) {
                    var rng2 = SeededRandom(seed: 7)
                    for (i, (name, rows)) in scenarios.enumerated() {
                        let bodies = (0..<16).map { _ in Self.body(rows: rows, rng: &rng2) }
                        let requests = bodies.map { HTTPLoad.request(path: "/v1/predict", body: $0, contentType: "application/json") }
                        let r = await Self.load(port: peerPort, requests: requests, rows: rows, c)
                        logger.info("Python \(name): \(Int(r.qps)) req/s, p99 \(String(format: "%.2f", r.p99Ms)) ms, \(r.errors) errors")
                        results[i].python = r
                        results[i].qpsRatio = r.qps > 0 ? results[i].reckit.qps / r.qps : nil
                    }
                } else {
                    let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                    pythonError = "the Python server did not become ready: " + String(log.suffix(400))
                }
                await Self.stop(p)
            } catch {
                pythonError = "cannot start \(python): \(error)"
            }
        } else {
            pythonError = "skipped (no Python interpreter with fastapi/uvicorn/torch; run benchmarks/pytorch/setup.sh)"
        }
        let head = results[0]
        return Report(qps: head.reckit.qps, p50Ms: head.reckit.p50Ms, p99Ms: head.reckit.p99Ms, p999Ms: head.reckit.p999Ms,
                      errors: results.reduce(0) { $0 + $1.reckit.errors }, pythonQPS: head.python?.qps,
                      pythonP99Ms: head.python?.p99Ms, pythonError: pythonError, ratio: head.qpsRatio, scenarios: results,
                      connections: c.connections, seconds: c.seconds, maxBatch: c.maxBatch, maxWaitMicros: c.maxWaitMicros,
                      modelVersion: server.engine.model.version,
                      machine: MachineInfo.current(isa: "", openblasCore: nil), hostile: hostile)
    }

    static func load(port: Int, requests: [[UInt8]], rows: Int, _ c: Config) async -> HTTPLoad.Result {
        await withCheckedContinuation { k in
            DispatchQueue.global().async {
                k.resume(returning: HTTPLoad.run(port: port, requests: requests, rowsPerRequest: rows, connections: c.connections,
                                                 seconds: c.seconds, warmup: c.warmup))
            }
        }
    }

    /// A JSON positional body of `rows` Criteo-like rows (counts, some missing; 8-hex-digit ids, some empty).
    static func body(rows: Int, rng: inout SeededRandom) -> [UInt8] {
        var s = "{\"rows\":["
        for r in 0..<rows {
            if r > 0 { s += "," }
            s += "{\"dense\":["
            for j in 0..<13 {
                if j > 0 { s += "," }
                s += rng.nextBelow(10) == 0 ? "null" : String(rng.nextBelow(1000))
            }
            s += "],\"categorical\":["
            for j in 0..<26 {
                if j > 0 { s += "," }
                s += rng.nextBelow(20) == 0 ? "\"\"" : "\"" + String(UInt32(truncatingIfNeeded: rng.next()), radix: 16) + "\""
            }
            s += "]}"
        }
        return Array((s + "]}").utf8)
    }

    /// A Criteo-layout DLRM checkpoint with random weights: 26 tables of `hashRows` rows (hash mode), Kaggle MLPs.
    public static func makeModel(in dir: String, hashRows: Int) throws -> String {
        let path = dir + "/serve-bench-dlrm.ckpt"
        let tables = [Int](repeating: hashRows, count: 26)
        let config = DLRMConfig.criteoKaggle(tableSizes: tables)
        let model = try DLRM(config: config, initialization: .random(seed: 1), sparseOptimizer: nil)
        let schema = DatasetSchema(source: "criteo", hasLabel: true, denseNames: (1...13).map { "I\($0)" },
                                   sparse: (1...26).map { SparseFeature(name: "C\($0)", cardinality: hashRows) },
                                   preprocessing: PreprocessingSpec(categorical: .hash(modulo: hashRows), rawIDs: "hex"))
        try TrainingCheckpoint.save(model: model, optimizer: nil, options: TrainOptions(), position: nil, schema: schema,
                                    rowsSeen: 0, to: path)
        return path
    }

    /// SIGTERM, then SIGKILL after 5 s; polls instead of `waitUntilExit` (which spins a run loop on Linux).
    static func stop(_ p: Process) async {
        p.terminate()
        for _ in 0..<50 where p.isRunning { try? await Task.sleep(nanoseconds: 100_000_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for _ in 0..<20 where p.isRunning { try? await Task.sleep(nanoseconds: 100_000_000) }
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Polls GET /healthz until 200 (or the time runs out).
    static func waitReady(port: Int, seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        let get = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        while Date() < deadline {
            var conn = HTTPLoad.Connection(port: port)
            var buf = [UInt8](repeating: 0, count: 4096)
            if conn.fd >= 0, conn.exchange(get, buffer: &buf) == 200 { conn.close(); return true }
            conn.close()
            try? await Task.sleep(nanoseconds: 250_000_000)
        }
        return false
    }
}
