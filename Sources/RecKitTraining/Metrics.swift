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
