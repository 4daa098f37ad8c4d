import Foundation
import RecKitCore

/// Binary-classification quality of predicted probabilities against 0/1 labels.
///
/// - auc: exact ROC AUC, ties counting ½ (`exactAUC`);
/// - logloss: mean −[y log p + (1−y) log(1−p)], p clamped to [1e-7, 1 − 1e-7];
/// - ne: normalized entropy = logloss ÷ the entropy of the mean label (He et al. 2014): < 1 beats predicting the
///   base rate;
/// - calibration: mean prediction ÷ mean label (1 is perfectly calibrated on average);
/// - accuracy at threshold 0.5.
public struct BinaryMetrics: Codable, Sendable, Equatable {
    public var auc: Double?
    public var logloss: Double
    public var ne: Double?
    public var calibration: Double?
    public var accuracy: Double
    public var rows: Int

    public static func compute(logits: [Float], labels: [Float]) -> BinaryMetrics {
        precondition(logits.count == labels.count, "logits and labels differ in length")  // allowed: programmer error
        let n = logits.count
        guard n > 0 else { return BinaryMetrics(auc: nil, logloss: .nan, ne: nil, calibration: nil, accuracy: .nan, rows: 0) }
        var loss = 0.0, sumP = 0.0, sumY = 0.0, correct = 0
        for i in 0..<n {
            let z = Double(logits[i])
            let p = min(max(1 / (1 + exp(-z)), 1e-7), 1 - 1e-7)
            let y = Double(labels[i])
            loss -= y * log(p) + (1 - y) * log(1 - p)
            sumP += p
            sumY += y
            if (p >= 0.5) == (y >= 0.5) { correct += 1 }
        }
        let logloss = loss / Double(n)
        let base = sumY / Double(n)
        let entropy = base > 0 && base < 1 ? -(base * log(base) + (1 - base) * log(1 - base)) : 0
        return BinaryMetrics(auc: exactAUC(scores: logits, labels: labels), logloss: logloss,
                             ne: entropy > 0 ? logloss / entropy : nil, calibration: sumY > 0 ? sumP / sumY : nil,
                             accuracy: Double(correct) / Double(n), rows: n)
    }
}

/// One bin of a reliability (calibration) diagram: the samples whose predicted probability falls in one quantile.
public struct ReliabilityBin: Codable, Sendable, Equatable {
    /// Mean predicted probability σ(z) of the bin's samples.
    public var meanPrediction: Double
    /// Fraction of the bin's samples labelled 1.
    public var observedRate: Double
    public var count: Int

    public init(meanPrediction: Double, observedRate: Double, count: Int) {
        self.meanPrediction = meanPrediction; self.observedRate = observedRate; self.count = count
    }

    enum CodingKeys: String, CodingKey {
        case count
        case meanPrediction = "mean_prediction"
        case observedRate = "observed_rate"
    }

    /// Equal-count bins by predicted probability (deciles for `bins` 10): samples sorted by logit, split into
    /// `bins` runs of ⌊n/bins⌋ or ⌈n/bins⌉; fewer bins when there are fewer samples. A perfectly calibrated model
    /// has meanPrediction ≈ observedRate in every bin.
    public static func quantiles(logits: [Float], labels: [Float], bins: Int = 10) -> [ReliabilityBin] {
        precondition(logits.count == labels.count, "logits and labels differ in length")  // allowed: programmer error
        let n = logits.count
        let k = min(max(bins, 1), n)
        guard k > 0 else { return [] }
        let order = (0..<n).sorted { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        var out: [ReliabilityBin] = []
        out.reserveCapacity(k)
        for b in 0..<k {
            let lo = b * n / k, hi = (b + 1) * n / k
            var p = 0.0, y = 0.0
            for i in order[lo..<hi] {
                p += 1 / (1 + exp(-Double(logits[i])))
                y += Double(labels[i])
            }
            let c = Double(hi - lo)
            out.append(ReliabilityBin(meanPrediction: p / c, observedRate: y / c, count: hi - lo))
        }
        return out
    }
}
