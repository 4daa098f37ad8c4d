import Foundation
import RecKitCore
import RecKitModels

/// A value a tuning trial sets: a `--config` field (number, string, list of widths) or `min_count`.
public enum ParameterValue: Codable, Sendable, Hashable, CustomStringConvertible {
    case int(Int), double(Double), string(String), ints([Int])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Int.self) { self = .int(v) }
        else if let v = try? c.decode(Double.self) { self = .double(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else { self = .ints(try c.decode([Int].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .ints(let v): try c.encode(v)
        }
    }

    public var description: String {
        switch self {
        case .int(let v): return "\(v)"
        case .double(let v): return String(format: "%.4g", v)
        case .string(let v): return v
        case .ints(let v): return "[" + v.map(String.init).joined(separator: ",") + "]"
        }
    }
}

/// Where a tuner searches: per parameter, a list of choices or a (log-)uniform range.
///
/// JSON (`--space space.json`): `{"learning_rate": {"log_uniform": [1e-4, 1e-2]}, "batch_size": {"choice": [256, 1024]},
/// "dropout": …}` — keys are `reckit train --config` fields, plus `min_count` (raw input only); unknown keys are refused.
public struct SearchSpace: Codable, Sendable, Equatable {
    public enum Domain: Codable, Sendable, Equatable {
        case choice([ParameterValue])
        case logUniform(Double, Double)
        case uniform(Double, Double)

        enum Keys: String, CodingKey { case choice, log_uniform, uniform }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            if let v = try c.decodeIfPresent([ParameterValue].self, forKey: .choice) {
                guard !v.isEmpty else { throw DecodingError.dataCorruptedError(forKey: .choice, in: c, debugDescription: "an empty choice") }
                self = .choice(v)
            } else if let r = try c.decodeIfPresent([Double].self, forKey: .log_uniform) {
                guard r.count == 2, r[0] > 0, r[0] <= r[1] else {
                    throw DecodingError.dataCorruptedError(forKey: .log_uniform, in: c, debugDescription: "log_uniform takes [low, high] with 0 < low ≤ high")
                }
                self = .logUniform(r[0], r[1])
            } else if let r = try c.decodeIfPresent([Double].self, forKey: .uniform) {
                guard r.count == 2, r[0] <= r[1] else {
                    throw DecodingError.dataCorruptedError(forKey: .uniform, in: c, debugDescription: "uniform takes [low, high] with low ≤ high")
                }
                self = .uniform(r[0], r[1])
            } else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected {\"choice\": […]}, {\"log_uniform\": [lo, hi]} or {\"uniform\": [lo, hi]}"))
            }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            switch self {
            case .choice(let v): try c.encode(v, forKey: .choice)
            case .logUniform(let a, let b): try c.encode([a, b], forKey: .log_uniform)
            case .uniform(let a, let b): try c.encode([a, b], forKey: .uniform)
            }
        }

        func sample(_ rng: inout SeededRandom) -> ParameterValue {
            switch self {
            case .choice(let v): return v[rng.nextBelow(v.count)]
            case .logUniform(let a, let b): return .double(exp(log(a) + rng.nextDouble() * (log(b) - log(a))))
            case .uniform(let a, let b): return .double(a + rng.nextDouble() * (b - a))
            }
        }
    }

    public var parameters: [String: Domain]

    public init(parameters: [String: Domain]) { self.parameters = parameters }

    public init(from decoder: Decoder) throws { parameters = try [String: Domain](from: decoder) }
    public func encode(to encoder: Encoder) throws { try parameters.encode(to: encoder) }

    /// The default space for `model`: learning rates (dense and sparse), optimizers, embedding L2, batch size,
    /// embedding width and network widths where the model has them, and `min_count` when the input is raw.
    public static func standard(for model: ModelKind, rawInput: Bool) -> SearchSpace {
        var p: [String: Domain] = [
            "learning_rate": .logUniform(2e-4, 1e-2),
            "sparse_learning_rate": .logUniform(0.005, 0.3),
            "dense_optimizer": .choice([.string("adam"), .string("adagrad")]),
            "sparse_optimizer": .choice([.string("rowwise_adagrad"), .string("adagrad")]),
            "embedding_l2": .choice([.double(0), .double(1e-6), .double(1e-5), .double(1e-4)]),
            "batch_size": .choice([.int(128), .int(256), .int(512), .int(1024)]),
        ]
        if model != .lr { p["embedding_dim"] = .choice([.int(8), .int(16), .int(32)]) }
        if model == .dlrm || model == .dcnv2 { p["top_hidden"] = .choice([.ints([64, 32]), .ints([128, 64]), .ints([256, 128]), .ints([512, 256])]) }
        if model == .dlrm { p["bottom_hidden"] = .choice([.ints([32]), .ints([64, 32]), .ints([128, 64])]) }
        if model == .dcnv2 { p["cross_layers"] = .choice([.int(1), .int(2), .int(3), .int(4)]) }
        if rawInput { p["min_count"] = .choice([.int(1), .int(2), .int(3), .int(5)]) }
        return SearchSpace(parameters: p)
    }

    /// `count` configurations drawn with `seed` (parameters in name order, so a seed gives the same trials).
    public func sample(_ count: Int, seed: UInt64) -> [[String: ParameterValue]] {
        var rng = SeededRandom(seed: seed)
        let names = parameters.keys.sorted()
        return (0..<count).map { _ in Dictionary(uniqueKeysWithValues: names.map { ($0, parameters[$0]!.sample(&rng)) }) }
    }
}
