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
/// * SIGHUP, and `POST /admin/reload` (optional `{"model": "name"}`) on the admin listener: load the checkpoint off the
///   event loop, then swap it in. Every request is scored by the model that preprocessed it.
/// * The admin listener is off unless `adminTokenFile` is set; it binds its own address (loopback by default), wants
///   `Authorization: Bearer <token>`, and loads only regular files inside `modelDirectory`.
/// * SIGTERM/SIGINT: graceful shutdown (swift-service-lifecycle): stop accepting connections, finish the queued
///   requests, write the run's carbon-ledger line.
/// Errors are JSON `{"error": {"status": S, "kind": K, "message": M}}`: 400/401/403/404/413/422/503, and 500 only for a
/// model that produced a non-finite score.
public final class PredictionServer: @unchecked Sendable {
    public struct Options: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        public var engine = InferenceEngine.Options()
        /// Request bodies larger than this get 413.
        public var maxBodyBytes = 8 << 20
        /// Rows one request may hold (413 above).
        public var maxRowsPerRequest = 65_536
        /// Read large tables in place from the checkpoint, hot rows cached in this many bytes (nil: load every table).
        public var cacheBytes: Int?
        /// The admin listener: on only with a token file; loopback by default.
        public var adminTokenFile: String?
        public var adminHost = "127.0.0.1"
        public var adminPort = 8081
        /// Reloads may only name regular files inside this directory (default: the initial model's directory).
        public var modelDirectory: String?
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
    /// The admin bearer token (nil: admin routes off).
    let adminToken: [UInt8]?
    /// The directory reloads are confined to (resolved, without a trailing slash).
    let modelDirectory: String

    public init(modelPath: String, options: Options, carbon: CarbonTracker?, logger: Logger) throws {
        self.options = options
        self.modelPath = modelPath
        self.tracker = carbon
        self.logger = logger
        if let file = options.adminTokenFile {
            guard let data = FileManager.default.contents(atPath: file) else { throw RequestError(.unavailable, "cannot read the admin token file \(file)") }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard token.utf8.count >= 16 else { throw RequestError(.unavailable, "the admin token in \(file) must be at least 16 characters") }
            adminToken = Array(token.utf8)
        } else {
            adminToken = nil
        }
        let dir = options.modelDirectory ?? (modelPath as NSString).deletingLastPathComponent
        guard let real = realpath(dir.isEmpty ? "." : dir, nil) else { throw RequestError(.unavailable, "model directory \(dir) does not exist") }
        modelDirectory = String(cString: real)
        free(real)
        let model = try ServedModel.load(modelPath, maxBatch: max(options.engine.maxBatch, 1), maxRowsPerRequest: options.maxRowsPerRequest,
                                         cacheBytes: options.cacheBytes)
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
        return router
    }

    /// The admin listener's routes: `POST /admin/reload`, behind the bearer token.
    public func makeAdminRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.post("/admin/reload") { [self] request, _ in
            if let refusal = authorize(request) { return refusal }
            return await adminReload(request)
        }
        return router
    }

    /// nil when the request carries the admin token; otherwise the 401 to send. Constant-time comparison.
    func authorize(_ request: Request) -> Response? {
        guard let token = adminToken else { return Self.error(RequestError(.forbidden, "admin routes are off (start with --admin-token-file)")) }
        let header = request.headers[.authorization] ?? ""
        let given = header.hasPrefix("Bearer ") ? Array(header.utf8.dropFirst(7)) : []
        var diff = UInt8(given.count == token.count ? 0 : 1)
        for i in 0..<token.count { diff |= token[i] ^ (i < given.count ? given[i] : 0) }
        if diff != 0 {
            metrics.request(route: "/admin/reload", status: 401, seconds: 0, errorKind: RequestError.Kind.unauthorized.rawValue)
            return Self.error(RequestError(.unauthorized, "missing or wrong admin token (Authorization: Bearer <token from --admin-token-file>)"))
        }
        return nil
    }

    /// The application (for `run` and for tests with HummingbirdTesting).
    public func makeApplication(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(router: makeRouter(), configuration: .init(address: .hostname(options.host, port: options.port), serverName: "reckit"),
                    onServerRunning: onServerRunning, logger: logger)
    }

    /// The admin application (only when an admin token is configured).
    public func makeAdminApplication(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> (some ApplicationProtocol)? {
        guard adminToken != nil else { return nil as Application<RouterResponder<BasicRequestContext>>? }
        return Application(router: makeAdminRouter(), configuration: .init(address: .hostname(options.adminHost, port: options.adminPort),
                                                                           serverName: "reckit-admin"),
                           onServerRunning: onServerRunning, logger: logger)
    }

    /// Serves until SIGTERM/SIGINT; then drains the engine and records the run in the carbon ledger.
    public func run(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in },
                    onAdminRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) async throws {
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        signal(SIGHUP, SIG_IGN)
        hup.setEventHandler { [self] in Task { _ = await reload(path: nil) } }
        hup.resume()
        let app = makeApplication(onServerRunning: onServerRunning)
        var services: [any Service] = [app]
        if let admin = makeAdminApplication(onServerRunning: onAdminRunning) { services.append(admin) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
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
        let model = engine.model  // this request is preprocessed and scored by this model, whatever reloads meanwhile
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
        switch await engine.score(rows, model: model) {
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

    func adminReload(_ request: Request) async -> Response {
        let body: [UInt8]
        do {
            body = Array(try await request.body.collect(upTo: 64 << 10).readableBytesView)
        } catch is NIOTooManyBytesError {
            return Self.error(RequestError(.tooLarge, "reload body over 64 KiB: send {\"model\": \"name\"} or nothing"))
        } catch {
            return Self.error(RequestError(.malformed, "could not read the body: \(error)"))
        }
        var path: String?
        if !body.isEmpty {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
                return Self.error(RequestError(.malformed, "reload body must be a JSON object {\"model\": \"name\"} or empty"))
            }
            if let extra = object.keys.first(where: { $0 != "model" }) {
                return Self.error(RequestError(.invalid, "reload body: unknown key '\(extra.prefix(64))' (only \"model\")"))
            }
            guard let value = object["model"] else { return await reloadResponse(path: nil) }
            guard let name = value as? String else { return Self.error(RequestError(.invalid, "reload body: \"model\" must be a string")) }
            switch resolveModelPath(name) {
            case .success(let p): path = p
            case .failure(let e): return Self.error(e)
            }
        }
        return await reloadResponse(path: path)
    }

    func reloadResponse(path: String?) async -> Response {
        switch await reload(path: path) {
        case .success(let version): return Self.json(200, "{\"status\":\"reloaded\",\"model_version\":\(Self.quote(version))}")
        case .failure(let e): return Self.error(e)
        }
    }

    /// `name` (relative to the model directory, or absolute) as a regular file inside the model directory, symlinks
    /// resolved; anything outside is 403 whether it exists or not.
    func resolveModelPath(_ name: String) -> Result<String, RequestError> {
        guard !name.isEmpty, !name.contains("\0") else { return .failure(RequestError(.invalid, "reload: empty model name")) }
        let candidate = name.hasPrefix("/") ? name : modelDirectory + "/" + name
        let outside = RequestError(.forbidden, "reload: \(name.prefix(200)) is outside the model directory (--model-dir)")
        guard let real = realpath(candidate, nil) else {
            // Only say "not found" for names that would be inside the directory.
            let parent = (candidate as NSString).deletingLastPathComponent
            if let rp = realpath(parent, nil) {
                let inside = String(cString: rp).hasPrefix(modelDirectory + "/") || String(cString: rp) == modelDirectory
                free(rp)
                if inside { return .failure(RequestError(.notFound, "reload: no model named \(name.prefix(200)) in the model directory")) }
            }
            return .failure(outside)
        }
        let resolved = String(cString: real)
        free(real)
        guard resolved.hasPrefix(modelDirectory + "/") else { return .failure(outside) }
        var st = stat()
        guard stat(resolved, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            return .failure(RequestError(.invalid, "reload: \(name.prefix(200)) is not a regular file"))
        }
        return .success(resolved)
    }

    /// Loads `path` (default: the current model's path) on a background thread and swaps it in.
    public func reload(path: String?) async -> Result<String, RequestError> {
        let target: String? = reloadLock.withLock {
            if reloading { return nil }
            reloading = true
            return path ?? modelPath
        }
        guard let target else { return .failure(RequestError(.unavailable, "a reload is already running")) }
        let maxBatch = max(options.engine.maxBatch, 1), rowsLimit = options.maxRowsPerRequest, cacheBytes = options.cacheBytes
        let loaded: Result<ServedModel, RequestError> = await withCheckedContinuation { c in
            DispatchQueue.global().async {
                do throws(RequestError) {
                    c.resume(returning: .success(try ServedModel.load(target, maxBatch: maxBatch, maxRowsPerRequest: rowsLimit, cacheBytes: cacheBytes)))
                } catch {
                    c.resume(returning: .failure(error))
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
