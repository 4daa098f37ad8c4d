import Foundation
import RecKitData
import RecKitKernels

/// `reckit bench data`: convert throughput on Criteo-format text against a straightforward pandas script on the
/// same file in the same run.
public struct DataBenchmark {
    public struct Config: Sendable {
        /// Size of the generated Criteo text (ignored with `input`).
        public var sizeMB = 1024
        /// An existing Criteo TSV to use instead of generated text.
        public var input: String?
        public var maxIndRange = 10_000_000
        /// Python interpreter for the baseline; nil: benchmarks/python/.venv/bin/python, else python3.
        public var python: String?
        public var skipPython = false
        public var workDirectory: String
        public init(workDirectory: String) { self.workDirectory = workDirectory }
    }

    public struct Report: Codable, Sendable {
        public var inputMB: Double
        public var rows: Int
        public var convertSeconds: Double
        public var convertMBPerS: Double
        public var pythonMBPerS: Double?
        public var pythonSeconds: Double?
        public var pythonError: String?
        public var ratio: Double?
        public var peakRSSMiB: Double
        public var machine: MachineInfo

        enum CodingKeys: String, CodingKey {
            case rows, ratio, machine
            case inputMB = "input_mb"
            case convertSeconds = "convert_seconds"
            case convertMBPerS = "convert_mb_per_s"
            case pythonMBPerS = "python_mb_per_s"
            case pythonSeconds = "python_seconds"
            case pythonError = "python_error"
            case peakRSSMiB = "peak_rss_mb"
        }
    }

    public let config: Config
    let log: (String) -> Void
    public init(config: Config, log: @escaping (String) -> Void) { self.config = config; self.log = log }

    public func run() throws -> Report {
        let fm = FileManager.default
        try fm.createDirectory(atPath: config.workDirectory, withIntermediateDirectories: true)
        let input: String
        if let given = config.input {
            input = given
        } else {
            input = config.workDirectory + "/criteo-\(config.sizeMB)mb.tsv"
            let have = (try? fm.attributesOfItem(atPath: input))?[.size] as? Int ?? 0
            if have < config.sizeMB * 1_000_000 {
                log("generating \(config.sizeMB) MB of Criteo-format text in \(input)")
                try CriteoTextWriter.write(to: input, bytes: config.sizeMB * 1_000_000, seed: 11)
            }
        }
        let size = Double((try fm.attributesOfItem(atPath: input))[.size] as? Int ?? 0)
        var o = ConvertOptions(format: .criteo, inputs: [input], output: config.workDirectory + "/reckit-shards")
        o.overwrite = true
        o.maxIndRange = config.maxIndRange
        log("reckit data convert (hash mode, max-ind-range \(config.maxIndRange)) …")
        let rss0 = BenchTiming.peakRSSMiB()
        let rep = try Converter.run(o)
        let rss = max(rss0, BenchTiming.peakRSSMiB())
        log(String(format: "reckit: %.1f MB/s (%d rows, %.1f s)", rep.mbPerSecond, rep.rows, rep.seconds))
        var report = Report(inputMB: size / 1e6, rows: rep.rows, convertSeconds: rep.seconds, convertMBPerS: rep.mbPerSecond,
                            pythonMBPerS: nil, pythonSeconds: nil, pythonError: nil, ratio: nil, peakRSSMiB: rss,
                            machine: MachineInfo.current(isa: CPUFeatures.host.summary, openblasCore: nil))
        if config.skipPython { report.pythonError = "skipped (--skip-python)"; return report }
        let script = Self.repoFile("benchmarks/python/criteo_preprocess.py")
        let venv = Self.repoFile("benchmarks/python/.venv/bin/python")
        let python = config.python ?? (fm.isExecutableFile(atPath: venv) ? venv : "/usr/bin/env")
        let args = (python == "/usr/bin/env" ? ["python3"] : []) + [script, "--input", input, "--output",
                    config.workDirectory + "/python-out", "--max-ind-range", String(config.maxIndRange)]
        log("python/pandas baseline (\(python == "/usr/bin/env" ? "python3" : python)) …")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let t0 = Date()
        do { try p.run() } catch { report.pythonError = "cannot start \(python): \(error)"; return report }
        let o1 = out.fileHandleForReading.readDataToEndOfFile()
        let e1 = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let secs = Date().timeIntervalSince(t0)
        guard p.terminationStatus == 0 else {
            report.pythonError = "python exited \(p.terminationStatus): \(String(decoding: e1.suffix(400), as: UTF8.self)) (run benchmarks/python/setup.sh)"
            return report
        }
        _ = o1
        report.pythonSeconds = secs
        report.pythonMBPerS = size / 1e6 / secs
        report.ratio = rep.mbPerSecond / (size / 1e6 / secs)
        log(String(format: "python: %.1f MB/s (%.1f s); reckit/python = %.1f×", size / 1e6 / secs, secs, report.ratio ?? 0))
        return report
    }

    /// A file of this repository (located from this source file; benchmarks run from a checkout).
    static func repoFile(_ relative: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(relative).path
    }
}
