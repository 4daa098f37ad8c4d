import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A closed-loop HTTP/1.1 load generator for `reckit bench serve`: `connections` keep-alive connections, each on
/// its own thread, send a request, read the whole response, and repeat until the time is up. Latency is measured
/// per request after a warm-up; any status other than 200, short read or dropped connection counts as an error.
public enum HTTPLoad {
    public struct Result: Codable, Sendable {
        public var requests: Int
        public var errors: Int
        public var seconds: Double
        public var qps: Double
        public var rowsPerSecond: Double
        public var p50Ms: Double
        public var p99Ms: Double
        public var p999Ms: Double
        public var connections: Int
        public var rowsPerRequest: Int
        /// The first error seen, for the report.
        public var firstError: String?

        enum CodingKeys: String, CodingKey {
            case requests, errors, seconds, qps, connections
            case rowsPerSecond = "rows_per_s"
            case p50Ms = "p50_ms"
            case p99Ms = "p99_ms"
            case p999Ms = "p999_ms"
            case rowsPerRequest = "rows_per_request"
            case firstError = "first_error"
        }
    }

    /// A full request (headers + body) for POST `path`.
    public static func request(path: String, body: [UInt8], contentType: String) -> [UInt8] {
        Array("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
    }

    /// Drives `port` with `requests` (rotated per connection) for `seconds` after `warmup` seconds.
    public static func run(port: Int, requests: [[UInt8]], rowsPerRequest: Int, connections: Int, seconds: Double,
                           warmup: Double) -> Result {
        final class Shared: @unchecked Sendable {
            let lock = NSLock()
            var latencies: [Double] = []
            var ok = 0, errors = 0
            var firstError: String?
        }
        let shared = Shared()
        let start = Date().timeIntervalSince1970
        let measureFrom = start + warmup, stopAt = start + warmup + seconds
        let group = DispatchGroup()
        for c in 0..<connections {
            group.enter()
            let t = Thread {
                var lat: [Double] = []
                var ok = 0, errors = 0
                var firstError: String?
                var conn = Connection(port: port)
                var i = c
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let t0 = Date().timeIntervalSince1970
                    if t0 >= stopAt { break }
                    let status = conn.exchange(requests[i % requests.count], buffer: &buffer)
                    i += 1
                    let t1 = Date().timeIntervalSince1970
                    guard t0 >= measureFrom else { if status == nil { conn = Connection(port: port) }; continue }
                    if status == 200 { ok += 1; lat.append(t1 - t0) } else {
                        errors += 1
                        if firstError == nil { firstError = status.map { "HTTP \($0)" } ?? "connection failed: \(conn.lastError)" }
                        if status == nil { conn = Connection(port: port) }
                    }
                }
                conn.close()
                shared.lock.withLock {
                    shared.latencies += lat; shared.ok += ok; shared.errors += errors
                    if shared.firstError == nil { shared.firstError = firstError }
                }
                group.leave()
            }
            t.stackSize = 1 << 20
            t.start()
        }
        group.wait()
        let s = shared.latencies.sorted()
        func q(_ p: Double) -> Double { s.isEmpty ? .nan : s[min(s.count - 1, Int((p * Double(s.count)).rounded(.up)) - 1)] * 1e3 }
        return Result(requests: shared.ok, errors: shared.errors, seconds: seconds, qps: Double(shared.ok) / seconds,
                      rowsPerSecond: Double(shared.ok * rowsPerRequest) / seconds, p50Ms: q(0.5), p99Ms: q(0.99), p999Ms: q(0.999),
                      connections: connections, rowsPerRequest: rowsPerRequest, firstError: shared.firstError)
    }

    /// One blocking keep-alive connection.
    struct Connection {
        var fd: Int32 = -1
        var lastError = ""
        let port: Int

        init(port: Int) {
            self.port = port
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { lastError = "socket: errno \(errno)"; return }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if rc != 0 { lastError = "connect: errno \(errno)"; Glibc.close(fd); fd = -1 }
        }

        mutating func close() { if fd >= 0 { Glibc.close(fd); fd = -1 } }

        /// Sends `request`, reads one response; returns its status code, or nil when the connection failed.
        mutating func exchange(_ request: [UInt8], buffer: inout [UInt8]) -> Int? {
            guard fd >= 0 else { return nil }
            var sent = 0
            while sent < request.count {
                let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { lastError = "send: errno \(errno)"; close(); return nil }
                sent += n
            }
            var have = 0
            var headerEnd = -1
            var contentLength = 0
            var status = 0
            while true {
                if have == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count) }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + have, $0.count - have, 0) }
                if n <= 0 { lastError = n == 0 ? "closed by server" : "recv: errno \(errno)"; close(); return nil }
                have += n
                if headerEnd < 0, let e = Self.find(buffer, have) {
                    headerEnd = e
                    let head = String(decoding: buffer[0..<e], as: UTF8.self)
                    let lines = head.split(separator: "\r\n")
                    status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
                    for l in lines.dropFirst() where l.lowercased().hasPrefix("content-length:") {
                        contentLength = Int(l.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
                    }
                }
                if headerEnd >= 0 && have >= headerEnd + 4 + contentLength { return status }
            }
        }

        static func find(_ b: [UInt8], _ n: Int) -> Int? {
            guard n >= 4 else { return nil }
            for i in 0...(n - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
            return nil
        }
    }
}
