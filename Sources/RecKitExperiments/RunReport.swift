import Foundation
import RecKitCarbon

/// `reckit report`: one self-contained HTML page (inline SVG and CSS, no scripts, no network) for one or more runs —
/// training loss and validation AUC curves overlaid, a calibration plot (mean prediction against observed click
/// rate per decile of prediction, with the diagonal), throughput, energy and carbon, and the configuration keys
/// that differ between the runs (all of them for one run).
public enum RunReport {
    /// At most this many points per curve (longer series are thinned evenly, keeping the last point).
    public static let maxPoints = 1500

    public static func html(_ runs: [RunData], generated: Date = Date()) -> String {
        let colors = runs.indices.map { SVGChart.palette[$0 % SVGChart.palette.count] }
        let loss = SVGChart(title: "Training loss", xLabel: "step", yLabel: "mean batch loss (log loss)",
                            series: zip(runs, colors).map { r, c in
                                .init(name: r.name, color: c, points: thin(r.trainingRows.compactMap { row in row.trainLoss.map { (Double(row.step), $0) } }))
                            })
        let auc = SVGChart(title: "Validation AUC", xLabel: "step", yLabel: "AUC",
                           series: zip(runs, colors).map { r, c in
                               .init(name: r.name, color: c, points: r.validationRows.compactMap { row in row.validationAUC.map { (Double(row.step), $0) } },
                                     markers: true)
                           })
        var calibration = SVGChart(title: "Calibration (deciles of prediction, kept parameters)", xLabel: "mean predicted click rate",
                                   yLabel: "observed click rate",
                                   series: zip(runs, colors).map { r, c in
                                       .init(name: r.name, color: c, points: r.calibration.map { ($0.meanPrediction, $0.observedRate) }, markers: true)
                                   })
        let hi = max(runs.flatMap { $0.calibration.flatMap { [$0.meanPrediction, $0.observedRate] } }.max() ?? 1, 0.01)
        calibration.reference = (0, 0, hi, hi)
        let throughput = SVGChart(title: "Throughput", xLabel: "step", yLabel: "samples/s (per logged interval)",
                                  series: zip(runs, colors).map { r, c in
                                      .init(name: r.name, color: c, points: thin(r.trainingRows.compactMap { row in row.samplesPerSecond.map { (Double(row.step), $0) } }))
                                  })

        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>RecKit runs: \(HTML.escape(runs.map(\.name).joined(separator: ", ")))</title>
        <style>
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1360px}
        h1{font-size:20px} h2{font-size:16px;margin-top:28px}
        table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
        th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
        .charts{display:flex;flex-wrap:wrap;gap:16px} .swatch{display:inline-block;width:10px;height:10px;margin-right:6px}
        .note{color:#666;font-size:12px}
        </style></head><body>
        <h1>RecKit runs</h1>
        <p class="note">Generated \(Provenance.timestamp(generated)) from \(runs.count) run director\(runs.count == 1 ? "y" : "ies"). Validation rows are the last fraction of the data by file order, never trained on.</p>

        """
        h += "<table><tr><th>run</th><th>model</th><th>status</th><th>created</th><th>host</th><th>git commit</th></tr>"
        for (r, c) in zip(runs, colors) {
            h += "<tr><td><span class=\"swatch\" style=\"background:\(c)\"></span>\(HTML.escape(r.name))</td><td>\(HTML.escape(r.config.model))</td>"
            h += "<td>\(r.finished ? "finished" : "incomplete")</td><td>\(HTML.escape(r.config.created))</td><td>\(HTML.escape(r.config.host))</td>"
            h += "<td>\(HTML.escape(r.config.gitCommit.map { String($0.prefix(12)) } ?? "—"))</td></tr>"
        }
        h += "</table>\n<h2>Curves</h2><div class=\"charts\">\(loss.svg)\(auc.svg)\(calibration.svg)\(throughput.svg)</div>\n"
        h += "<h2>Results, throughput, energy and carbon</h2><table><tr><th>run</th><th>rows trained</th><th>steps</th><th>epochs (kept)</th>"
        h += "<th>validation AUC</th><th>logloss</th><th>NE</th><th>calibration</th><th>best AUC</th><th>seconds</th><th>samples/s</th>"
        h += "<th>energy (J)</th><th>J / 1k samples</th><th>operational gCO₂e</th><th>embodied gCO₂e</th><th>energy method</th></tr>"
        for r in runs {
            let s = r.summary, v = s?.validation, e = r.carbon
            h += "<tr><td>\(HTML.escape(r.name))</td>" + [
                s.map { "\($0.rowsTrained)" }, s.map { "\($0.steps)" }, s.map { "\($0.epochs) (\($0.bestEpoch))" },
                fmt(v?.auc, "%.4f"), fmt(v?.logloss, "%.4f"), fmt(v?.ne, "%.4f"), fmt(v?.calibration, "%.3f"), fmt(r.bestValidationAUC, "%.4f"),
                fmt(s?.seconds, "%.1f"), fmt(r.samplesPerSecond, "%.0f"), fmt(e?.energyJoules, "%.1f"), fmt(e?.joulesPer1kSamples, "%.3g"),
                fmt(e?.operationalGrams, "%.3g"), fmt(e?.embodiedGrams, "%.3g"),
            ].map { "<td class=\"num\">\(HTML.escape($0 ?? "—"))</td>" }.joined()
            h += "<td>\(HTML.escape(e.map { $0.method.rawValue } ?? "—"))</td></tr>"
        }
        h += "</table>\n"
        let diffs = configDifferences(runs)
        h += runs.count == 1 ? "<h2>Configuration</h2>" : "<h2>Configuration differences</h2>"
        if diffs.isEmpty {
            h += "<p>The runs have the same configuration (apart from name, time and host).</p>"
        } else {
            h += "<table><tr><th>key</th>" + runs.map { "<th>\(HTML.escape($0.name))</th>" }.joined() + "</tr>"
            for d in diffs { h += "<tr><td>\(HTML.escape(d.key))</td>" + d.values.map { "<td>\(HTML.escape($0))</td>" }.joined() + "</tr>" }
            h += "</table>"
        }
        return h + "\n</body></html>\n"
    }

    static func fmt(_ v: Double?, _ format: String) -> String? { v.map { $0.isFinite ? String(format: format, $0) : "\($0)" } }

    /// Evenly thinned to at most `maxPoints`, keeping the first and last points.
    static func thin(_ p: [(Double, Double)]) -> [(x: Double, y: Double)] {
        guard p.count > maxPoints else { return p.map { (x: $0.0, y: $0.1) } }
        let stride = Double(p.count - 1) / Double(maxPoints - 1)
        return (0..<maxPoints).map { k in let q = p[Int((Double(k) * stride).rounded())]; return (x: q.0, y: q.1) }
    }
}
