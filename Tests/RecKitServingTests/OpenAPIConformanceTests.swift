import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// docs/openapi.json against the live router: every documented path answers; every example request gets a
/// documented status, and each response carries the schema's required fields.
@Suite("OpenAPI description matches the server", .serialized)
struct OpenAPIConformanceTests {
    static var spec: [String: Any] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = (try? Data(contentsOf: root.appendingPathComponent("docs/openapi.json"))) ?? Data()
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    /// The required top-level keys of the response schema for `status` (following $ref one level).
    static func required(_ op: [String: Any], _ status: Int, _ spec: [String: Any]) -> [String]? {
        guard let responses = op["responses"] as? [String: Any], var r = responses[String(status)] as? [String: Any] else { return nil }
        func resolve(_ x: [String: Any]) -> [String: Any] {
            guard let ref = x["$ref"] as? String else { return x }
            var node: Any = spec
            for part in ref.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(part)] ?? [:] }
            return node as? [String: Any] ?? [:]
        }
        r = resolve(r)
        guard let content = r["content"] as? [String: Any], let json = content["application/json"] as? [String: Any],
              let schema = json["schema"] as? [String: Any] else { return [] }
        return resolve(schema)["required"] as? [String] ?? []
    }

    @Test("every path and example in docs/openapi.json behaves as documented")
    func conformance() async throws {
        let spec = Self.spec
        let paths = try #require(spec["paths"] as? [String: [String: Any]], "docs/openapi.json missing or unreadable")
        #expect(Set(paths.keys) == ["/v1/predict", "/healthz", "/readyz", "/metrics", "/admin/reload"])
        struct Case: Sendable {
            var path: String, method: String, type: String?, body: String, expected: Int?
            var required: [Int: [String]]
            var admin = false, withToken = true
        }
        var cases: [Case] = []
        for (path, ops) in paths.sorted(by: { $0.key < $1.key }) {
            for (method, opAny) in ops {
                let op = opAny as? [String: Any] ?? [:]
                var required: [Int: [String]] = [:]
                for code in ((op["responses"] as? [String: Any]) ?? [:]).keys.compactMap({ Int($0) }) {
                    required[code] = Self.required(op, code, spec) ?? []
                }
                var requests: [(String?, String, Int?, Bool)] = []  // content type, body, expected status, with the admin token
                if let content = (op["requestBody"] as? [String: Any])?["content"] as? [String: Any] {
                    for (type, media) in content {
                        for (_, ex) in (media as? [String: Any])?["examples"] as? [String: Any] ?? [:] {
                            let v = (ex as? [String: Any])?["value"]
                            let body = v is String ? v as! String
                                : String(decoding: try JSONSerialization.data(withJSONObject: v ?? [:]), as: UTF8.self)
                            requests.append((type, body, 200, true))
                        }
                    }
                }
                for bad in op["x-bad-examples"] as? [[String: Any]] ?? [] {
                    requests.append((bad["contentType"] as? String, bad["body"] as? String ?? "", bad["status"] as? Int, bad["x-no-token"] == nil))
                }
                if requests.isEmpty { requests.append((nil, "", 200, true)) }
                for (type, body, expected, token) in requests {
                    cases.append(Case(path: path, method: method, type: type, body: body, expected: expected, required: required,
                                      admin: op["x-listener"] as? String == "admin", withToken: token))
                }
            }
        }
        #expect(cases.count >= 12)
        let allCases = cases
        let (server, _) = try makeServer()
        defer { server.finish() }
        @Sendable func check(_ client: some TestClientProtocol, _ c: Case) async throws {
            var headers = HTTPFields()
            if let type = c.type { headers[.contentType] = type }
            if c.admin && c.withToken { headers[.authorization] = "Bearer \(adminToken)" }
            let r = try await client.execute(uri: c.path, method: c.method == "get" ? .get : .post, headers: headers,
                                             body: c.body.isEmpty ? nil : ByteBuffer(string: c.body))
            let status = Int(r.status.code)
            if let expected = c.expected {
                #expect(status == expected, "\(c.method) \(c.path) \(c.body.prefix(50)): \(status) \(String(buffer: r.body).prefix(200))")
            }
            let required = c.required[status]
            #expect(required != nil, "\(c.method) \(c.path) answered \(status), which the spec does not document")
            if let required, !required.isEmpty {
                let obj = (try? JSONSerialization.jsonObject(with: Data(String(buffer: r.body).utf8))) as? [String: Any] ?? [:]
                for key in required { #expect(obj[key] != nil, "\(c.method) \(c.path) \(status): missing '\(key)'") }
            }
        }
        try await server.makeApplication().test(.router) { client in
            for c in allCases where !c.admin { try await check(client, c) }
        }
        try await #require(server.makeAdminApplication()).test(.router) { client in
            for c in allCases where c.admin { try await check(client, c) }
        }
    }
}
