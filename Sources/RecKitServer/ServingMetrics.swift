import CoreMetrics
import Foundation
import Prometheus
import RecKitCarbon

/// The server's Prometheus metrics, recorded through swift-metrics into this server's own registry (no global
/// bootstrap, so tests can run several servers in one process):
/// * `reckit_requests_total{route,status}`, `reckit_request_errors_total{route,kind}`
/// * `reckit_request_duration_seconds{route}` (histogram), `reckit_batch_rows` and `reckit_batch_duration_seconds`
///   (histograms), `reckit_rows_scored_total`
/// * `reckit_model_info{version}` (1 for the serving model), `reckit_model_reloads_total`
/// * the carbon ledger's running totals since start: `reckit_energy_joules`, `reckit_carbon_operational_grams`,
///   `reckit_carbon_embodied_grams`, with `reckit_energy_method_info{method}`.
public final class ServingMetrics: @unchecked Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let lock = NSLock()
    private var requestCounters: [String: CoreMetrics.Counter] = [:]
    private var errorCounters: [String: CoreMetrics.Counter] = [:]
    private var durationTimers: [String: CoreMetrics.Timer] = [:]
    private let batchRows: CoreMetrics.Recorder
    private let batchDuration: CoreMetrics.Timer
    private let rowsScored: CoreMetrics.Counter
    private let reloads: CoreMetrics.Counter
    private var versionGauges: [String: CoreMetrics.Gauge] = [:]
    private let energy: CoreMetrics.Gauge, operational: CoreMetrics.Gauge, embodied: CoreMetrics.Gauge
    private var methodGauges: [String: CoreMetrics.Gauge] = [:]

    public init() {
        var f = PrometheusMetricsFactory(registry: registry)
        f.defaultDurationHistogramBuckets = [50, 100, 250, 500].map { Duration.microseconds($0) }
            + [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500].map { Duration.milliseconds($0) }
        f.valueHistogramBuckets["reckit_batch_rows"] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
        factory = f
        batchRows = CoreMetrics.Recorder(label: "reckit_batch_rows", dimensions: [], aggregate: true, factory: f)
        batchDuration = CoreMetrics.Timer(label: "reckit_batch_duration_seconds", dimensions: [], factory: f)
        rowsScored = CoreMetrics.Counter(label: "reckit_rows_scored_total", dimensions: [], factory: f)
        reloads = CoreMetrics.Counter(label: "reckit_model_reloads_total", dimensions: [], factory: f)
        energy = CoreMetrics.Gauge(label: "reckit_energy_joules", dimensions: [], factory: f)
        operational = CoreMetrics.Gauge(label: "reckit_carbon_operational_grams", dimensions: [], factory: f)
        embodied = CoreMetrics.Gauge(label: "reckit_carbon_embodied_grams", dimensions: [], factory: f)
    }

    /// One finished request.
    public func request(route: String, status: Int, seconds: Double, errorKind: String? = nil) {
        lock.lock()
        let key = "\(route) \(status)"
        let c = requestCounters[key] ?? {
            let c = CoreMetrics.Counter(label: "reckit_requests_total", dimensions: [("route", route), ("status", String(status))], factory: factory)
            requestCounters[key] = c
            return c
        }()
        let t = durationTimers[route] ?? {
            let t = CoreMetrics.Timer(label: "reckit_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            durationTimers[route] = t
            return t
        }()
        var e: CoreMetrics.Counter?
        if let errorKind {
            let ek = "\(route) \(errorKind)"
            e = errorCounters[ek] ?? {
                let c = CoreMetrics.Counter(label: "reckit_request_errors_total", dimensions: [("route", route), ("kind", errorKind)], factory: factory)
                errorCounters[ek] = c
                return c
            }()
        }
        lock.unlock()
        c.increment()
        e?.increment()
        t.recordNanoseconds(Int64(seconds * 1e9))
    }

    /// One executed inference batch.
    public func batch(rows: Int, seconds: Double) {
        batchRows.record(rows)
        batchDuration.recordNanoseconds(Int64(seconds * 1e9))
        rowsScored.increment(by: rows)
    }

    /// The serving model changed (or was loaded first): its gauge is 1, the previous one's 0.
    public func model(version: String, reloaded: Bool) {
        lock.lock()
        for (v, g) in versionGauges where v != version { g.record(0) }
        let g = versionGauges[version] ?? CoreMetrics.Gauge(label: "reckit_model_info", dimensions: [("version", version)], factory: factory)
        versionGauges[version] = g
        lock.unlock()
        g.record(1)
        if reloaded { reloads.increment() }
    }

    /// The carbon ledger's running totals (set at each scrape).
    public func carbon(joules: Double, operationalGrams: Double, embodiedGrams: Double, method: String) {
        energy.record(joules)
        operational.record(operationalGrams)
        embodied.record(embodiedGrams)
        lock.lock()
        let g = methodGauges[method] ?? CoreMetrics.Gauge(label: "reckit_energy_method_info", dimensions: [("method", method)], factory: factory)
        methodGauges[method] = g
        lock.unlock()
        g.record(1)
    }

    /// The Prometheus text exposition of everything above.
    public func render() -> [UInt8] { registry.emitToBuffer() }
}
