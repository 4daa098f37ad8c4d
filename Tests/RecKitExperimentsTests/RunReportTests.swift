import Foundation
@testable import RecKitExperiments
import RecKitTraining
import Testing

@Suite("Run report: self-contained HTML with the curves, checked in headless Chromium where installed")
struct RunReportTests {
    static func twoRuns(_ tag: String) throws -> [RunData] {
        let data = try synthetic("report-\(tag)")
        let root = temporary("runs-report-\(tag)")
        _ = try recordedRun(root, name: "dlrm", data: data, model: .dlrm)
        _ = try recordedRun(root, name: "fm", data: data, model: .fm)
        return try ["dlrm", "fm"].map { try RunData.load(root + "/" + $0) }
    }

    @Test("two runs: a curve per run on loss, AUC, calibration and throughput; differing config keys; nothing fetched")
    func html() throws {
        let runs = try Self.twoRuns("html")
        let h = RunReport.html(runs)
        #expect(h.components(separatedBy: "<path class=\"curve\"").count - 1 == 8)
        #expect(h.contains("class=\"reference\""))  // the calibration diagonal
        let diffs = configDifferences(runs)
        #expect(diffs.map(\.key).contains("model") && !diffs.map(\.key).contains("seed"))
        #expect(h.contains("<td>model</td><td>dlrm</td><td>fm</td>"))
        // Self-contained: no scripts, no links or sources other than the SVG namespace.
        #expect(!h.contains("<script") && !h.contains("src=") && !h.contains("href="))
        #expect(h.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http") == false)
        // Names are escaped.
        var evil = runs[0]
        evil.config.model = "<b>x</b>"
        #expect(!RunReport.html([evil]).contains("<b>x</b>"))
        // One run: all config keys, one curve per chart.
        let one = RunReport.html([runs[0]])
        #expect(one.components(separatedBy: "<path class=\"curve\"").count - 1 == 4 && one.contains("<td>embedding_dim</td>"))
    }

    @Test("headless Chromium renders the page with every curve (skipped where chromium-headless-shell is not installed)")
    func browser() throws {
        let chrome = ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let chrome else {
            print("SKIPPED: no headless Chromium (scripts/bootstrap.sh installs chromium-headless-shell)")
            return
        }
        let runs = try Self.twoRuns("browser")
        let dir = temporary("report-browser")
        let page = dir + "/report.html"
        try RunReport.html(runs).write(toFile: page, atomically: true, encoding: .utf8)
        let r = shell(chrome, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "file://" + page])
        #expect(r.status == 0)
        // The DOM Chromium built from the page: the curves survived parsing as SVG paths.
        #expect(r.out.components(separatedBy: "<path class=\"curve\"").count - 1 == 8, "\(r.out.prefix(400))")
        let shot = dir + "/shot.png"
        let s = shell(chrome, ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800", "--screenshot=" + shot, "file://" + page])
        #expect(s.status == 0 && ((try? FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0) > 10_000)
    }
}
