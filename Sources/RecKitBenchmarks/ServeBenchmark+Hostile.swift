import Foundation
import RecKitCore
#if canImport(Glibc)
import Glibc
#endif

/// `reckit bench serve --hostile`: well-formed single-row requests measured alone, then again while other connections
/// send the `HostileRequests` corpus in a loop (rate-limited) and slow clients trickle requests a byte at a time.
public struct HostileLoadReport: Codable, Sendable {
    /// Malformed requests sent, and how the server answered them (status → count; 0 = connection closed).
    public var hostileSent: Int
    public var hostileStatuses: [String: Int]
    public var slowClients: Int
    public var connections: Int
    public var p99UnloadedMs: Double
    public var p99LoadedMs: Double
    public var p99Ratio: Double
    /// Well-formed requests that did not get 200 while under hostile load.
    public var errors: Int
    /// GET /healthz answered 200 after everything.
    public var serverUp: Bool

    enum CodingKeys: String, CodingKey {
        case connections, errors
        case hostileSent = "hostile_sent", hostileStatuses = "hostile_statuses", slowClients = "slow_clients"
        case p99UnloadedMs = "p99_unloaded_ms", p99LoadedMs = "p99_loaded_ms", p99Ratio = "p99_ratio", serverUp = "server_up"
    }
}

extension ServeBenchmark {
    /// Measures single-row p99 over `connections` connections alone and under hostile load on `port`.
    static func hostile(port: Int, single: [[UInt8]], connections: Int, seconds: Double, warmup: Double,
                        maxBodyBytes: Int) async -> HostileLoadReport {
        let unloaded = await Task.detached {
            HTTPLoad.run(port: port, requests: single, rowsPerRequest: 1, connections: connections, seconds: seconds, warmup: warmup)
        }.value
        final class Counts: @unchecked Sendable {
            let lock = NSLock()
            var statuses: [String: Int] = [:]
            var sent = 0
            var stop = false
        }
        let counts = Counts()
        let corpus = HostileRequests.corpus(maxBodyBytes: maxBodyBytes).map {
            HTTPLoad.request(path: "/v1/predict", body: $0.body, contentType: $0.contentType)
        }
        let done = DispatchGroup()
        // Four hostile senders, each at most one request per 10 ms.
        for h in 0..<4 {
            done.enter()
            Thread.detachNewThread {
                var conn = HTTPLoad.Connection(port: port)
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                var i = h
                while !counts.lock.withLock({ counts.stop }) {
                    let status = conn.exchange(corpus[i % corpus.count], buffer: &buffer)
                    i += 1
                    counts.lock.withLock { counts.sent += 1; counts.statuses[String(status ?? 0), default: 0] += 1 }
                    if status == nil { conn = HTTPLoad.Connection(port: port) }
                    usleep(10_000)
                }
                conn.close()
                done.leave()
            }
        }
        // Eight slow clients: a request header one byte every 100 ms, reconnecting when the server hangs up.
        let slow = Array("POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"rows\":[".utf8)
        for _ in 0..<8 {
            done.enter()
            Thread.detachNewThread {
                var conn = HTTPLoad.Connection(port: port)
                var k = 0
                while !counts.lock.withLock({ counts.stop }) {
                    let byte = slow[k % slow.count]
                    if conn.fd < 0 || withUnsafeBytes(of: byte, { send(conn.fd, $0.baseAddress!, 1, Int32(MSG_NOSIGNAL)) }) <= 0 {
                        conn.close()
                        conn = HTTPLoad.Connection(port: port)
                    }
                    k += 1
                    usleep(100_000)
                }
                conn.close()
                done.leave()
            }
        }
        let loaded = await Task.detached {
            HTTPLoad.run(port: port, requests: single, rowsPerRequest: 1, connections: connections, seconds: seconds, warmup: warmup)
        }.value
        counts.lock.withLock { counts.stop = true }
        await withCheckedContinuation { (k: CheckedContinuation<Void, Never>) in DispatchQueue.global().async { done.wait(); k.resume() } }
        var health = HTTPLoad.Connection(port: port)
        var buffer = [UInt8](repeating: 0, count: 4096)
        let up = health.exchange(Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8), buffer: &buffer) == 200
        health.close()
        return HostileLoadReport(hostileSent: counts.sent, hostileStatuses: counts.statuses, slowClients: 8, connections: connections,
                                 p99UnloadedMs: unloaded.p99Ms, p99LoadedMs: loaded.p99Ms,
                                 p99Ratio: unloaded.p99Ms > 0 ? loaded.p99Ms / unloaded.p99Ms : .nan, errors: loaded.errors, serverUp: up)
    }
}
