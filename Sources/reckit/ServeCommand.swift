import ArgumentParser
import Foundation
import Logging
import RecKitCarbon
import RecKitServer
import RecKitServing

/// `reckit serve`: the HTTP inference server (see docs/openapi.yaml).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a checkpoint over HTTP: /v1/predict with dynamic batching, /healthz, /readyz, /metrics.",
        discussion: """
            SIGHUP reloads the model file without dropping requests; SIGTERM/SIGINT drain and stop. With \
            --admin-token-file, a second listener (loopback by default) takes POST /admin/reload (empty, or {"model": NAME}) with the \
            bearer token, for checkpoints inside --model-dir.
            """)

    @Option(name: .long, help: "Checkpoint from `reckit train` or `reckit quantize`.")
    var model: String

    @Option(name: .long, help: "Address to bind (default 127.0.0.1).")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port (default 8080; 0 = any free port, printed at start).")
    var port = 8080

    @Option(name: .customLong("max-batch"), help: "Rows per inference batch (default 256).")
    var maxBatch = 256

    @Option(name: .customLong("max-wait-us"), help: "Longest a request waits for others to batch with, µs (default 1000).")
    var maxWaitMicros = 1_000

    @Option(name: .customLong("max-body-bytes"), help: "Larger request bodies get 413 (default 8 MiB).")
    var maxBodyBytes = 8 << 20

    @Option(name: .long, help: "Threads for the model's kernels (default: all online cores).")
    var threads: Int?

    @Option(name: .customLong("cache-mb"), help: "Read large tables in place from the checkpoint, hot rows cached in this many MiB (tables larger than RAM).")
    var cacheMB: Int?

    @Option(name: .customLong("max-rows-per-request"), help: "Rows one request may hold; more get 413 (default 65,536).")
    var maxRowsPerRequest = 65_536

    @Option(name: .customLong("admin-token-file"), help: "Turns on the admin listener (POST /admin/reload), which wants 'Authorization: Bearer <this file's token>'.")
    var adminTokenFile: String?

    @Option(name: .customLong("admin-host"), help: "Admin listener address (default 127.0.0.1: loopback only).")
    var adminHost = "127.0.0.1"

    @Option(name: .customLong("admin-port"), help: "Admin listener port (default 8081; 0 = any free port).")
    var adminPort = 8081

    @Option(name: .customLong("model-dir"), help: "Reloads may only load regular files inside this directory (default: the model's directory).")
    var modelDir: String?

    @OptionGroup var carbon: CarbonOptions

    func run() async throws {
        let log = CLILog.logger("reckit.serve")
        try CLILog.checkEnvironment(log)
        var o = PredictionServer.Options()
        o.host = host
        o.port = port
        o.maxBodyBytes = max(1, maxBodyBytes)
        o.maxRowsPerRequest = max(1, maxRowsPerRequest)
        if let cacheMB { guard cacheMB > 0 else { throw ValidationError("--cache-mb must be positive") }; o.cacheBytes = cacheMB << 20 }
        o.adminTokenFile = adminTokenFile
        o.adminHost = adminHost
        o.adminPort = adminPort
        o.modelDirectory = modelDir
        o.engine.maxBatch = max(1, maxBatch)
        o.engine.maxWaitMicros = max(0, maxWaitMicros)
        o.engine.threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let tracker: CarbonTracker
        do throws(CarbonError) {
            tracker = try CarbonTracker(command: "serve", model: nil, settings: carbon.settings, coresUsed: o.engine.threads)
        } catch {
            throw ValidationError(error.description)
        }
        let server: PredictionServer
        do { server = try PredictionServer(modelPath: model, options: o, carbon: tracker, logger: log) } catch {
            throw CLIError(message: "cannot serve \(model): \(error)", code: 65)
        }
        let version = server.engine.model.version
        let opts = o
        try await server.run(onServerRunning: { channel in
            let p = channel.localAddress?.port ?? opts.port
            log.info("serving \(version) on http://\(opts.host):\(p) (max batch \(opts.engine.maxBatch), max wait \(opts.engine.maxWaitMicros) µs)")
        }, onAdminRunning: { channel in
            let p = channel.localAddress?.port ?? opts.adminPort
            log.info("admin listener on http://\(opts.adminHost):\(p) (POST /admin/reload with the bearer token)")
        })
    }
}
