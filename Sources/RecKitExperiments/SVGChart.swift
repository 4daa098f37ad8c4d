import Foundation

/// A line chart as inline SVG (no scripts, no external resources): axes with "nice" ticks, one `<path
/// class="curve">` per series with at least two points (a single point is a marker), an optional dashed
/// reference line, and a legend.
public struct SVGChart {
    public struct Series {
        public var name: String
        public var color: String
        public var points: [(x: Double, y: Double)]
        public var markers = false
        public init(name: String, color: String, points: [(x: Double, y: Double)], markers: Bool = false) {
            self.name = name; self.color = color; self.points = points.filter { $0.x.isFinite && $0.y.isFinite }; self.markers = markers
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// A dashed reference line from (x0, y0) to (x1, y1), e.g. the diagonal of a calibration plot.
    public var reference: (x0: Double, y0: Double, x1: Double, y1: Double)?
    public var width = 660.0, height = 320.0
    /// Forces the axis ranges (nil: from the data).
    public var xRange: ClosedRange<Double>?, yRange: ClosedRange<Double>?

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    /// Palette for runs (colour-blind friendly: Okabe–Ito).
    public static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

    public var svg: String {
        let left = 64.0, right = 150.0, top = 28.0, bottom = 44.0
        let plotW = width - left - right, plotH = height - top - bottom
        let all = series.flatMap(\.points)
        var xr = xRange ?? Self.range(all.map(\.x)), yr = yRange ?? Self.range(all.map(\.y))
        if let r = reference, xRange == nil, yRange == nil {
            xr = min(xr.lowerBound, r.x0, r.x1)...max(xr.upperBound, r.x0, r.x1)
            yr = min(yr.lowerBound, r.y0, r.y1)...max(yr.upperBound, r.y0, r.y1)
        }
        let xt = Self.ticks(xr), yt = Self.ticks(yr)
        xr = min(xr.lowerBound, xt.first ?? xr.lowerBound)...max(xr.upperBound, xt.last ?? xr.upperBound)
        yr = min(yr.lowerBound, yt.first ?? yr.lowerBound)...max(yr.upperBound, yt.last ?? yr.upperBound)
        func px(_ x: Double) -> Double { left + (x - xr.lowerBound) / max(xr.upperBound - xr.lowerBound, 1e-300) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (y - yr.lowerBound) / max(yr.upperBound - yr.lowerBound, 1e-300) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
        s += "<text x=\"\(f(left))\" y=\"18\" font-size=\"14\" font-weight=\"bold\">\(HTML.escape(title))</text>"
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#999\"/>"
        for t in xt {
            s += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + plotH))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(f(px(t)))\" y=\"\(f(top + plotH + 16))\" font-size=\"11\" text-anchor=\"middle\">\(Self.label(t))</text>"
        }
        for t in yt {
            s += "<line x1=\"\(f(left))\" y1=\"\(f(py(t)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(py(t)))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(py(t) + 4))\" font-size=\"11\" text-anchor=\"end\">\(Self.label(t))</text>"
        }
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 6))\" font-size=\"12\" text-anchor=\"middle\">\(HTML.escape(xLabel))</text>"
        s += "<text transform=\"translate(14 \(f(top + plotH / 2))) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">\(HTML.escape(yLabel))</text>"
        if let r = reference {
            s += "<line class=\"reference\" x1=\"\(f(px(r.x0)))\" y1=\"\(f(py(r.y0)))\" x2=\"\(f(px(r.x1)))\" y2=\"\(f(py(r.y1)))\" stroke=\"#888\" stroke-dasharray=\"4 4\"/>"
        }
        for (i, se) in series.enumerated() {
            if se.points.count >= 2 {
                let d = se.points.enumerated().map { (k, p) in (k == 0 ? "M" : "L") + f(px(p.x)) + " " + f(py(p.y)) }.joined(separator: " ")
                s += "<path class=\"curve\" data-series=\"\(HTML.escape(se.name))\" d=\"\(d)\" fill=\"none\" stroke=\"\(se.color)\" stroke-width=\"1.8\"/>"
            }
            if se.markers || se.points.count == 1 {
                for p in se.points { s += "<circle class=\"marker\" cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(se.color)\"/>" }
            }
            let ly = top + 10 + Double(i) * 15
            s += "<rect x=\"\(f(left + plotW + 10))\" y=\"\(f(ly - 9))\" width=\"10\" height=\"10\" fill=\"\(se.color)\"/>"
            s += "<text x=\"\(f(left + plotW + 24))\" y=\"\(f(ly))\" font-size=\"11\">\(HTML.escape(String(se.name.prefix(20))))</text>"
        }
        if all.isEmpty {
            s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(top + plotH / 2))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#888\">no data</text>"
        }
        return s + "</svg>"
    }

    static func range(_ v: [Double]) -> ClosedRange<Double> {
        guard let lo = v.min(), let hi = v.max() else { return 0...1 }
        if lo == hi { return (lo - max(abs(lo) * 0.05, 1e-3))...(hi + max(abs(hi) * 0.05, 1e-3)) }
        return lo...hi
    }

    /// About five ticks at 1, 2 or 5 × 10^k covering `r`.
    static func ticks(_ r: ClosedRange<Double>) -> [Double] {
        let span = r.upperBound - r.lowerBound
        guard span > 0, span.isFinite else { return [r.lowerBound] }
        let raw = span / 5, mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = floor(r.lowerBound / step) * step, out: [Double] = []
        while t <= r.upperBound + step * 0.999 && out.count < 20 { out.append(t); t += step }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e6 { return String(format: "%gM", (v / 1e5).rounded() / 10) }
        if a >= 1e4 { return String(format: "%gk", (v / 1e2).rounded() / 10) }
        if a < 1e-3 { return String(format: "%.1e", v) }
        if a >= 100 { return String(format: "%.0f", v) }
        return String(format: "%.4g", v)
    }
}

enum HTML {
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
