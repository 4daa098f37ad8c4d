import Foundation
import Hummingbird
import Logging
import NIOCore
import RecKitCarbon
import RecKitServing
import ServiceLifecycle

/// `reckit serve`: the HTTP API over an `InferenceEngine` (routes and bodies: docs/openapi.yaml).
///
/// * `POST /v1/predict` — JSON rows (positional or named) or Criteo TSV lines (`Content-Type:
///   text/tab-separated-values`); responds `{"scores": [...], "model_version": "..."}`.
/// * `GET /healthz` (process up), `GET /readyz` (model loaded and accepting), `GET /metrics` (Prometheus).
/// * `POST /admin/reload` (optional `{"model": "path"}`) and SIGHUP: load the checkpoint off the event loop, then
///   swap it in between batches. In-flight requests finish on the model they started on.
/// * SIGTERM/SIGINT: graceful shutdown (swift-service-lifecycle): stop accepting connections, finish the queued
///   requests, write the run's carbon-ledger line.
/// Errors are JSON `{"error": {"status": S, "kind": K, "message": M}}` with 400/413/422/503 — never a 500.
public final class PredictionServer: @unchecked Sendable {
    public struct Options: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        public var engine = InferenceEngine.Options()
        /// Request bodies larger than this get 413.
        public var maxBodyBytes = 8 << 20
        public init() {}
    }

    public let options: Options
    public let engine: InferenceEngine
    public let metrics = ServingMetrics()
    private let tracker: CarbonTracker?
    private let logger: Logger
    private let reloadLock = NSLock()
    private var modelPath: String
    private var reloading = false

    public init(modelPath: String, options: Options, carbon: CarbonTracker?, logger: Logger) throws {
        self.options = options
        self.modelPath = modelPath
        self.tracker = carbon
        self.logger = logger
        let model = try ServedModel.load(modelPath, maxBatch: max(options.engine.maxBatch, 1))
        let m = metrics
        engine = InferenceEngine(model: model, options: options.engine) { e in m.batch(rows: e.rows, seconds: e.seconds) }
        metrics.model(version: model.version, reloaded: false)
        try tracker?.start()
    }

    // MARK: routes

    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/healthz") { _, _ in Self.json(200, "{\"status\":\"ok\"}") }
        router.get("/readyz") { [engine] _, _ in
            Self.json(200, "{\"status\":\"ready\",\"model_version\":\(Self.quote(engine.model.version))}")
        }
        router.get("/metrics") { [self] _, _ in
            if let s = try? tracker?.snapshot() {
                metrics.carbon(joules: s.joules, operationalGrams: s.operationalGrams, embodiedGrams: s.embodiedGrams, method: s.method.rawValue)
            }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
        router.post("/v1/predict") { [self] request, _ in await predict(request) }
        router.post("/admin/reload") { [self] request, _ in await adminReload(request) }
        return router
    }

    /// The application (for `run` and for tests with HummingbirdTesting).
    public func makeApplication(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(router: makeRouter(), configuration: .init(address: .hostname(options.host, port: options.port), serverName: "reckit"),
                    onServerRunning: onServerRunning, logger: logger)
    }

    /// Serves until SIGTERM/SIGINT; then drains the engine and records the run in the carbon ledger.
    public func run(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) async throws {
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        signal(SIGHUP, SIG_IGN)
        hup.setEventHandler { [self] in Task { _ = await reload(path: nil) } }
        hup.resume()
        let app = makeApplication(onServerRunning: onServerRunning)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        defer {
            hup.cancel()
            finish()
        }
        try await group.run()
    }

    /// Stops the engine after the queued requests and writes the ledger line (idempotent enough: called once by `run`).
    public func finish() {
        engine.shutdown()
        if let tracker {
            if let r = try? tracker.finish(samples: engine.rowsScored) { logger.info("\(r.summary)") }
        }
    }

    func predict(_ request: Request) async -> Response {
        let t0 = DispatchTime.now().uptimeNanoseconds
        func done(_ r: Response, _ kind: String?) -> Response {
            metrics.request(route: "/v1/predict", status: Int(r.status.code), seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9, errorKind: kind)
            return r
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: options.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            let e = RequestError(.tooLarge, "body exceeds the limit of \(options.maxBodyBytes) bytes (--max-body-bytes)")
            return done(Self.error(e), e.kind.rawValue)
        } catch {
            let e = RequestError(.malformed, "could not read the body: \(error)")
            return done(Self.error(e), e.kind.rawValue)
        }
        let bytes = Array(body.readableBytesView)
        let model = engine.model
        let contentType = request.headers[.contentType]?.lowercased() ?? "application/json"
        let rows: PreparedRows
        do throws(RequestError) {
            if contentType.hasPrefix("text/tab-separated-values") || contentType.hasPrefix("text/plain") {
                rows = try model.preprocessor.prepareTSV(bytes)
            } else if contentType.hasPrefix("application/json") || contentType.isEmpty {
                rows = try model.preprocessor.prepareJSON(bytes)
            } else {
                throw RequestError(.invalid, "unsupported Content-Type '\(contentType)': use application/json or text/tab-separated-values")
            }
        } catch {
            return done(Self.error(error), error.kind.rawValue)
        }
        switch await engine.score(rows) {
        case .success(let s):
            var out = "{\"scores\":["
            out.reserveCapacity(32 + s.scores.count * 12)
            for (i, v) in s.scores.enumerated() {
                if i > 0 { out += "," }
                out += v.description
            }
            out += "],\"model_version\":" + Self.quote(s.modelVersion) + "}"
            return done(Self.json(200, out), nil)
        case .failure(let e):
            return done(Self.error(e), e.kind.rawValue)
        }
    }

    struct ReloadBody: Decodable { var model: String? }

    func adminReload(_ request: Request) async -> Response {
        let body = (try? await request.body.collect(upTo: 64 << 10)).map { Array($0.readableBytesView) } ?? []
        var path: String?
        if !body.isEmpty {
            guard let b = try? JSONDecoder().decode(ReloadBody.self, from: Data(body)) else {
                return Self.error(RequestError(.malformed, "reload body must be {\"model\": \"path\"} or empty"))
            }
            path = b.model
        }
        switch await reload(path: path) {
        case .success(let version): return Self.json(200, "{\"status\":\"reloaded\",\"model_version\":\(Self.quote(version))}")
        case .failure(let e): return Self.error(e)
        }
    }

    /// Loads `path` (default: the current model's path) on a background thread and swaps it in.
    public func reload(path: String?) async -> Result<String, RequestError> {
        let target: String? = reloadLock.withLock {
            if reloading { return nil }
            reloading = true
            return path ?? modelPath
        }
        guard let target else { return .failure(RequestError(.unavailable, "a reload is already running")) }
        let maxBatch = max(options.engine.maxBatch, 1)
        let loaded: Result<ServedModel, RequestError> = await withCheckedContinuation { c in
            DispatchQueue.global().async {
                do { c.resume(returning: .success(try ServedModel.load(target, maxBatch: maxBatch))) } catch let e as RequestError {
                    c.resume(returning: .failure(e))
                } catch {
                    c.resume(returning: .failure(RequestError(.invalid, "cannot load \(target): \(error)")))
                }
            }
        }
        reloadLock.withLock {
            reloading = false
            if case .success = loaded { modelPath = target }
        }
        switch loaded {
        case .success(let m):
            engine.reload(m)
            metrics.model(version: m.version, reloaded: true)
            logger.info("reloaded model \(m.version) from \(target)")
            return .success(m.version)
        case .failure(let e):
            logger.error("reload of \(target) failed: \(e.message); still serving \(engine.model.version)")
            return .failure(e)
        }
    }

    // MARK: responses

    static func json(_ status: Int, _ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ e: RequestError) -> Response {
        json(e.status, "{\"error\":{\"status\":\(e.status),\"kind\":\"\(e.kind.rawValue)\",\"message\":\(quote(e.message))}}")
    }

    /// A JSON string literal.
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
