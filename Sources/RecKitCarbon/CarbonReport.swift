import Foundation

/// Totals per command and model over a ledger, and a self-contained HTML page with an inline SVG bar chart.
public struct CarbonReport: Codable, Sendable {
    public struct Group: Codable, Sendable {
        public var command: String
        public var model: String?
        public var runs: Int
        public var seconds: Double
        public var energyJoules: Double
        public var operationalGrams: Double
        public var embodiedGrams: Double
        public var methods: [String]

        enum CodingKeys: String, CodingKey {
            case command, model, runs, seconds, methods
            case energyJoules = "energy_joules"
            case operationalGrams = "operational_gco2e"
            case embodiedGrams = "embodied_gco2e"
        }
    }

    public var groups: [Group]
    public var totalEnergyJoules: Double
    public var totalOperationalGrams: Double
    public var totalEmbodiedGrams: Double

    enum CodingKeys: String, CodingKey {
        case groups
        case totalEnergyJoules = "total_energy_joules"
        case totalOperationalGrams = "total_operational_gco2e"
        case totalEmbodiedGrams = "total_embodied_gco2e"
    }

    public init(records: [RunRecord]) {
        var byKey: [String: Group] = [:]
        var order: [String] = []
        for r in records {
            let key = r.command + "\u{1}" + (r.model ?? "")
            if byKey[key] == nil {
                byKey[key] = Group(command: r.command, model: r.model, runs: 0, seconds: 0, energyJoules: 0,
                                   operationalGrams: 0, embodiedGrams: 0, methods: [])
                order.append(key)
            }
            byKey[key]!.runs += 1
            byKey[key]!.seconds += r.seconds
            byKey[key]!.energyJoules += r.energyJoules
            byKey[key]!.operationalGrams += r.operationalGrams
            byKey[key]!.embodiedGrams += r.embodiedGrams
            if !byKey[key]!.methods.contains(r.method.rawValue) { byKey[key]!.methods.append(r.method.rawValue) }
        }
        groups = order.map { byKey[$0]! }
        totalEnergyJoules = groups.reduce(0) { $0 + $1.energyJoules }
        totalOperationalGrams = groups.reduce(0) { $0 + $1.operationalGrams }
        totalEmbodiedGrams = groups.reduce(0) { $0 + $1.embodiedGrams }
    }

    public var text: String {
        var lines = ["command                     model        runs    energy      operational   embodied     method"]
        for g in groups {
            lines.append(String(format: "%-27@ %-12@ %4d  %10@  %12@  %11@  %@", g.command, g.model ?? "-", g.runs,
                                Joules(g.energyJoules).description, GramsCO2e(g.operationalGrams).description,
                                GramsCO2e(g.embodiedGrams).description, g.methods.joined(separator: ",")))
        }
        lines.append("total: \(Joules(totalEnergyJoules)), operational \(GramsCO2e(totalOperationalGrams)), embodied \(GramsCO2e(totalEmbodiedGrams))")
        return lines.joined(separator: "\n")
    }

    /// A self-contained page (no scripts, no network): a table and a stacked bar chart of gCO2e per group.
    public var html: String {
        let maxG = max(groups.map { $0.operationalGrams + $0.embodiedGrams }.max() ?? 0, 1e-12)
        let barH = 26, left = 260, width = 460
        var bars = ""
        for (i, g) in groups.enumerated() {
            let y = 30 + i * (barH + 10)
            let wo = Double(width) * g.operationalGrams / maxG, we = Double(width) * g.embodiedGrams / maxG
            let label = esc(g.command + (g.model.map { " · " + $0 } ?? ""))
            bars += """
            <text x="\(left - 8)" y="\(y + 18)" text-anchor="end" font-size="13">\(label)</text>
            <rect x="\(left)" y="\(y)" width="\(String(format: "%.1f", wo))" height="\(barH)" fill="#2f7d4f"><title>operational \(GramsCO2e(g.operationalGrams))</title></rect>
            <rect x="\(String(format: "%.1f", Double(left) + wo))" y="\(y)" width="\(String(format: "%.1f", we))" height="\(barH)" fill="#9cc9a9"><title>embodied \(GramsCO2e(g.embodiedGrams))</title></rect>
            <text x="\(String(format: "%.1f", Double(left) + wo + we + 6))" y="\(y + 18)" font-size="12">\(esc(GramsCO2e(g.operationalGrams + g.embodiedGrams).description))</text>

            """
        }
        let h = 40 + groups.count * (barH + 10) + 30
        let rows = groups.map { g in
            "<tr><td>\(esc(g.command))</td><td>\(esc(g.model ?? "–"))</td><td>\(g.runs)</td><td>\(esc(Joules(g.energyJoules).description))</td><td>\(esc(GramsCO2e(g.operationalGrams).description))</td><td>\(esc(GramsCO2e(g.embodiedGrams).description))</td><td>\(esc(g.methods.joined(separator: ", ")))</td></tr>"
        }.joined(separator: "\n")
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>RecKit carbon report</title>
        <style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}</style></head>
        <body><h1>RecKit energy and carbon</h1>
        <p>Total: \(esc(Joules(totalEnergyJoules).description)), operational \(esc(GramsCO2e(totalOperationalGrams).description)), embodied \(esc(GramsCO2e(totalEmbodiedGrams).description)).
        Methods say how each figure was obtained (measured-rapl, estimated-tdp, user-override).</p>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(left + width + 120)" height="\(h)" role="img" aria-label="gCO2e per command">
        <text x="\(left)" y="18" font-size="13" font-weight="bold">gCO2e per command (dark: operational, light: embodied)</text>
        \(bars)</svg>
        <table><tr><th>command</th><th>model</th><th>runs</th><th>energy</th><th>operational</th><th>embodied</th><th>method</th></tr>
        \(rows)
        </table></body></html>
        """
    }

    private func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
