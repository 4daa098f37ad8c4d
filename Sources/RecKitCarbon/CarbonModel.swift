import Foundation

/// A grid region's carbon intensity with where the figure comes from.
public struct GridRegion: Sendable, Codable, Equatable {
    public var code: String
    public var name: String
    /// gCO2e per kWh of electricity consumed.
    public var gramsPerKWh: Double
    public var source: String
    public var year: Int
}

/// Operational and embodied carbon of a run.
///
/// operational = energy (kWh) × PUE × grid intensity (gCO2e/kWh)
/// embodied    = server embodied carbon × run time ÷ (lifetime × utilization)
///   (a server busy a fraction u of its life T carries its embodied carbon over u·T busy seconds).
/// Defaults from Wu et al. 2022, "Sustainable AI: Environmental Implications, Challenges and Opportunities":
/// 1,000 kgCO2e embodied for a CPU-only server, 4-year life, utilization in 30–60% (0.45 here), PUE 1.1 for a
/// hyperscale data centre (`industryAveragePUE` = 1.55 is the Uptime Institute survey average).
public struct CarbonModel: Sendable, Codable, Equatable {
    public var region: GridRegion
    public var pue: Double
    public var serverEmbodiedKg: Double
    public var lifetimeYears: Double
    public var utilization: Double
    /// Cores of the server the embodied carbon is shared among (the run is charged for the cores it uses).
    public var serverCores: Int
    public var coresUsed: Int

    public static let hyperscalePUE = 1.1
    public static let industryAveragePUE = 1.55

    public init(region: GridRegion = GridRegions.defaultRegion, pue: Double = hyperscalePUE, serverEmbodiedKg: Double = 1000,
                lifetimeYears: Double = 4, utilization: Double = 0.45, serverCores: Int = 1, coresUsed: Int = 1) {
        self.region = region; self.pue = pue; self.serverEmbodiedKg = serverEmbodiedKg
        self.lifetimeYears = lifetimeYears; self.utilization = utilization
        self.serverCores = max(1, serverCores); self.coresUsed = max(1, min(coresUsed, serverCores))
    }

    public func operational(_ energy: Joules) -> GramsCO2e {
        GramsCO2e(energy.kilowattHours.value * pue * region.gramsPerKWh)
    }

    public func embodied(seconds: Double) -> GramsCO2e {
        let lifetimeSeconds = lifetimeYears * 365.25 * 86400
        let share = Double(coresUsed) / Double(serverCores)
        return GramsCO2e(serverEmbodiedKg * 1000 * share * max(0, seconds) / (lifetimeSeconds * utilization))
    }
}

/// Grid intensities by region: annual averages of electricity generation, rounded, as the named publications
/// report them for the year given. They were entered by hand from those sources: check the source before relying
/// on a region's figure, and pass `--grid-intensity` (or RECKIT_GRID_INTENSITY) for your provider's own number.
public enum GridRegions {
    public static let all: [GridRegion] = [
        GridRegion(code: "world", name: "World average", gramsPerKWh: 436, source: "Ember, Global Electricity Review 2023", year: 2022),
        GridRegion(code: "us", name: "United States", gramsPerKWh: 388, source: "U.S. EIA FAQ 'How much CO2 per kWh' (0.855 lb/kWh)", year: 2022),
        GridRegion(code: "eu", name: "European Union", gramsPerKWh: 251, source: "European Environment Agency, GHG intensity of electricity", year: 2022),
        GridRegion(code: "fr", name: "France", gramsPerKWh: 56, source: "Ember, European Electricity Review 2023", year: 2022),
        GridRegion(code: "de", name: "Germany", gramsPerKWh: 385, source: "Ember, European Electricity Review 2023", year: 2022),
        GridRegion(code: "se", name: "Sweden", gramsPerKWh: 9, source: "Ember, European Electricity Review 2023", year: 2022),
        GridRegion(code: "cn", name: "China", gramsPerKWh: 531, source: "Ember, Global Electricity Review 2023", year: 2022),
        GridRegion(code: "in", name: "India", gramsPerKWh: 632, source: "Ember, Global Electricity Review 2023", year: 2022),
    ]

    public static var defaultRegion: GridRegion { all[0] }

    public static func find(_ code: String) -> GridRegion? { all.first { $0.code == code.lowercased() } }
}
