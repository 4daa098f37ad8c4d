/// Energy in joules.
public struct Joules: Sendable, Equatable, Comparable, Codable, CustomStringConvertible {
    public var value: Double
    public init(_ value: Double) { self.value = value }
    public var kilowattHours: KilowattHours { KilowattHours(value / 3_600_000) }
    public static func + (a: Joules, b: Joules) -> Joules { Joules(a.value + b.value) }
    public static func < (a: Joules, b: Joules) -> Bool { a.value < b.value }
    public var description: String { value >= 1000 ? String(format: "%.2f kJ", value / 1000) : String(format: "%.1f J", value) }
}

/// Power in watts.
public struct Watts: Sendable, Equatable, Codable {
    public var value: Double
    public init(_ value: Double) { self.value = value }
    /// Energy used at this power for `seconds`.
    public func over(seconds: Double) -> Joules { Joules(value * seconds) }
}

/// Energy in kilowatt-hours (1 kWh = 3.6 MJ).
public struct KilowattHours: Sendable, Equatable, Codable {
    public var value: Double
    public init(_ value: Double) { self.value = value }
    public var joules: Joules { Joules(value * 3_600_000) }
}

/// Greenhouse-gas mass in grams of CO2-equivalent.
public struct GramsCO2e: Sendable, Equatable, Comparable, Codable, CustomStringConvertible {
    public var value: Double
    public init(_ value: Double) { self.value = value }
    public var kilograms: Double { value / 1000 }
    public static func + (a: GramsCO2e, b: GramsCO2e) -> GramsCO2e { GramsCO2e(a.value + b.value) }
    public static func < (a: GramsCO2e, b: GramsCO2e) -> Bool { a.value < b.value }
    public var description: String {
        value >= 1 ? String(format: "%.2f gCO2e", value) : String(format: "%.3g gCO2e", value)
    }
}

/// How an energy figure was obtained.
public enum EnergyMethod: String, Sendable, Codable {
    /// Read from RAPL counters in /sys/class/powercap.
    case measuredRAPL = "measured-rapl"
    /// CPU time × per-core watts from the CPU table, plus memory watts.
    case estimatedTDP = "estimated-tdp"
    /// CPU time × the user's per-core watts, plus memory watts.
    case userOverride = "user-override"
}
