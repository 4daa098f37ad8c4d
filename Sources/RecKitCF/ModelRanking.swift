import Foundation
import Logging
import RecKitKernels

/// Fits several CF models on the full and on a sampled training set, evaluates each on the same test events
/// with the same context (the full training set: sampling cuts the cost of fitting, not what is known about a
/// user when scoring, and both settings then rank the same candidates), ranks the models by nDCG@10 in both settings, and measures how
/// well the sample keeps the ranking with Kendall's τ-b.
public enum ModelRanking {
    public struct Report: Sendable, Encodable {
        public var models: [String]
        /// nDCG@10 per model on full and sampled training data.
        public var full: [String: Double]
        public var sampled: [String: Double]
        /// Models best first.
        public var rankingFull: [String]
        public var rankingSampled: [String]
        public var kendallTau: Double
        public var seconds: Double
        enum CodingKeys: String, CodingKey {
            case models, full, sampled, seconds
            case rankingFull = "ranking_full"
            case rankingSampled = "ranking_sampled"
            case kendallTau = "kendall_tau"
        }
    }

    public static func run(train: Interactions, sampled: Interactions, test: Interactions, models: [CFModelKind], options: CFFit.Options,
                           algebra: DenseAlgebra, pool: ThreadPool, logger: Logger) throws(CFError) -> Report {
        guard models.count >= 2 else { throw .invalidOptions("--models needs at least two models to rank") }
        let clock = ContinuousClock.now
        var full: [String: Double] = [:], small: [String: Double] = [:]
        for kind in models {
            var o = options
            o.kind = kind; o.autoLambda = false; o.lambda = nil
            for (name, data) in [("full", train), ("sampled", sampled)] {
                let (model, _) = try CFFit.fit(train: data, valid: nil, options: o, algebra: algebra, pool: pool, logger: logger)
                let r = try RankingEvaluation.evaluate(model: model, context: train, test: test, ks: [10], algebra: algebra, pool: pool)
                let v = r.metrics["ndcg@10"] ?? .nan
                if name == "full" { full[kind.rawValue] = v } else { small[kind.rawValue] = v }
                logger.info("\(kind.rawValue) on \(name) data: nDCG@10 \(String(format: "%.4f", v))")
            }
        }
        let names = models.map(\.rawValue)
        func ranking(_ m: [String: Double]) -> [String] { names.sorted { m[$0]! != m[$1]! ? m[$0]! > m[$1]! : $0 < $1 } }
        return Report(models: names, full: full, sampled: small, rankingFull: ranking(full), rankingSampled: ranking(small),
                      kendallTau: kendallTau(names.map { full[$0]! }, names.map { small[$0]! }), seconds: (ContinuousClock.now - clock).seconds)
    }

    /// Kendall's τ-b between two score lists over the same items (ties handled; 1 = same order, −1 = reversed).
    public static func kendallTau(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count == b.count else { return .nan }
        var concordant = 0.0, discordant = 0.0, tiesA = 0.0, tiesB = 0.0
        for i in 0..<a.count {
            for j in (i + 1)..<max(i + 1, a.count) {
                let da = a[i] - a[j], db = b[i] - b[j]
                if da == 0 && db == 0 { continue }
                if da == 0 { tiesA += 1 } else if db == 0 { tiesB += 1 } else if (da > 0) == (db > 0) { concordant += 1 } else { discordant += 1 }
            }
        }
        let denom = ((concordant + discordant + tiesA) * (concordant + discordant + tiesB)).squareRoot()
        return denom > 0 ? (concordant - discordant) / denom : .nan
    }
}
