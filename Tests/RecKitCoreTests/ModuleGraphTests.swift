import Foundation
import Testing

/// The module graph of Package.swift: the README's map is generated from it, the layering holds, and every module
/// imports only RecKit modules it declares.
@Suite("Module graph")
struct ModuleGraphTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `modules` table of Package.swift: (name, RecKit dependencies, external products), in order.
    static func modules() throws -> [(String, [String], [String])] {
        let text = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let start = try #require(text.range(of: "let modules:"))
        let end = try #require(text.range(of: "\n]\n", range: start.upperBound..<text.endIndex))
        let table = String(text[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "\n", with: " ")
        let row = try Regex(#"\("(\w+)",\s*\[([^\]]*)\],\s*\[([^\]]*)\]\)"#)
        return table.matches(of: row).map { m in
            func names(_ s: Substring?) -> [String] {
                (s.map(String.init) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
                    .filter { !$0.isEmpty }
            }
            return (String(m.output[1].substring!), names(m.output[2].substring), names(m.output[3].substring))
        }
    }

    static func render(_ modules: [(String, [String], [String])]) -> String {
        let width = (modules.map(\.0.count).max() ?? 0) + 2
        var lines = ["```"]
        for (name, deps, external) in modules {
            let all = deps + external.map { "\($0)*" }
            lines.append(name.padding(toLength: width, withPad: " ", startingAt: 0) + (all.isEmpty ? "(none)" : "→ " + all.joined(separator: ", ")))
        }
        lines.append("```")
        return lines.joined(separator: "\n")
    }

    static let begin = "<!-- module-graph:begin (generated from Package.swift: RECKIT_WRITE_MODULE_GRAPH=1 swift test --filter ModuleGraphTests) -->"
    static let end = "<!-- module-graph:end -->"

    @Test("README's module map is the one Package.swift declares")
    func readmeMatchesPackage() throws {
        let rendered = Self.render(try Self.modules())
        let readmeURL = Self.root.appendingPathComponent("README.md")
        var readme = try String(contentsOf: readmeURL, encoding: .utf8)
        let b = try #require(readme.range(of: Self.begin), "README.md has no module-graph markers")
        let e = try #require(readme.range(of: Self.end, range: b.upperBound..<readme.endIndex))
        let current = readme[b.upperBound..<e.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
        if ProcessInfo.processInfo.environment["RECKIT_WRITE_MODULE_GRAPH"] != nil && current != rendered {
            readme.replaceSubrange(b.upperBound..<e.lowerBound, with: "\n" + rendered + "\n")
            try readme.write(to: readmeURL, atomically: true, encoding: .utf8)
            return
        }
        #expect(current == rendered, "README.md's module map differs from Package.swift; regenerate it:\n\(rendered)")
    }

    @Test("one-way layering: each module depends only on modules listed before it; Kernels on Core and C only; Serving never on Training")
    func layering() throws {
        let modules = try Self.modules()
        #expect(modules.count >= 10)
        var seen: Set<String> = ["CRecKitShims", "CBLAS", "CDNNL", "CLibURing", "CMPI"]
        for (name, deps, _) in modules {
            for d in deps { #expect(seen.contains(d), "\(name) depends on \(d), which is not below it") }
            seen.insert(name)
        }
        let table = Dictionary(uniqueKeysWithValues: modules.map { ($0.0, $0.1) })
        #expect(Set(table["RecKitKernels"] ?? []).isSubset(of: ["RecKitCore", "CRecKitShims", "CBLAS", "CDNNL"]))
        func closure(_ m: String) -> Set<String> {
            var out = Set<String>(), stack = table[m] ?? []
            while let x = stack.popLast() { if out.insert(x).inserted { stack += table[x] ?? [] } }
            return out
        }
        #expect(!closure("RecKitServing").contains("RecKitTraining") && !closure("RecKitServer").contains("RecKitTraining"))
        #expect(!closure("RecKitModels").contains("RecKitTraining") && !closure("RecKitEmbeddings").contains("RecKitModels"))
    }

    @Test("every module imports only the RecKit modules it declares (no reaching through transitive dependencies)")
    func importsMatchDeclarations() throws {
        for (name, deps, _) in try Self.modules() {
            let dir = Self.root.appendingPathComponent("Sources/\(name)")
            let files = try #require(FileManager.default.enumerator(atPath: dir.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
            for f in files {
                let text = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                    let module = String(line.split(separator: " ").last!)
                    if module.hasPrefix("RecKit") || module.hasPrefix("CRecKit") || module == "CBLAS" || module == "CDNNL" {
                        #expect(deps.contains(module), "\(name)/\(f) imports \(module), which Package.swift does not list for it")
                    }
                }
            }
        }
    }
}
