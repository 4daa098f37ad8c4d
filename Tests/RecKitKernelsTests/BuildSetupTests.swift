import Foundation
@testable import RecKitKernels
import Testing

/// Proves the set-up handles the "baseline x86-64" trap: the build script picks a `-target-cpu` for this host,
/// and with it the Swift compiler emits AVX-512 for SIMD16<Float> code, which it does not do by default.
@Suite("Build set-up: host CPU targeting")
struct BuildSetupTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func run(_ args: [String], cwd: URL = root) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        p.currentDirectoryURL = cwd
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("scripts/target-cpu.sh names an AVX-512 CPU on AVX-512 hosts, and build.sh passes it to swiftc")
    func scriptChoosesCPU() throws {
        let cpu = try Self.run(["bash", "scripts/target-cpu.sh"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        if CPUFeatures.host.hasAVX512Core {
            #expect(["skylake-avx512", "sapphirerapids"].contains(cpu), "got '\(cpu)'")
        } else if CPUFeatures.host.avx2 {
            #expect(cpu == "haswell")
        }
        let flags = try Self.run(["bash", "scripts/build.sh", "--print-flags"]).out
        if !cpu.isEmpty { #expect(flags.contains("-Xswiftc -target-cpu -Xswiftc \(cpu)")) }
    }

    @Test("with the chosen -target-cpu, SIMD16<Float> code compiles to zmm instructions; without it, it does not",
          .enabled(if: CPUFeatures.host.hasAVX512Core, "this CPU has no AVX-512: nothing to compare"))
    func targetCPUChangesCodegen() throws {
        let cpu = try Self.run(["bash", "scripts/target-cpu.sh"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(!cpu.isEmpty, "scripts/target-cpu.sh chose no CPU on an AVX-512 host")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-cpu-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("k.swift")
        try """
        @inline(never) public func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
            let v = UnsafeRawPointer(x).loadUnaligned(as: SIMD16<Float>.self)
            let w = UnsafeRawPointer(y).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(y).storeBytes(of: w + SIMD16(repeating: a) * v, as: SIMD16<Float>.self)
        }
        """.write(to: src, atomically: true, encoding: .utf8)
        func asm(_ extra: [String]) throws -> String {
            let out = dir.appendingPathComponent("k\(extra.count).s")
            let r = try Self.run(["swiftc", "-O", "-parse-as-library", "-emit-assembly"] + extra + [src.path, "-o", out.path], cwd: dir)
            #expect(r.status == 0, "swiftc failed: \(r.out)")
            return (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        }
        let native = try asm(["-target-cpu", cpu])
        let baseline = try asm([])
        #expect(native.contains("zmm"), "no AVX-512 registers with -target-cpu \(cpu)")
        #expect(!baseline.contains("zmm") && !baseline.contains("ymm"), "baseline build unexpectedly used wide registers")
    }
}
