/// Exact ROC AUC: the probability that a random positive scores above a random negative, ties counting one
/// half (Mann–Whitney U over sorted scores, tie groups given their average rank). O(n log n).
///
/// Returns nil when the labels hold only one class (AUC is undefined).
public func exactAUC(scores: [Float], labels: [Float]) -> Double? {
    precondition(scores.count == labels.count, "scores and labels differ in length")  // allowed: programmer error
    let order = scores.indices.sorted { scores[$0] < scores[$1] }
    var positives = 0.0, rankSum = 0.0
    var i = 0
    while i < order.count {
        var j = i
        while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
        let averageRank = Double(i + j) / 2 + 1
        for k in i...j where labels[order[k]] > 0.5 {
            positives += 1
            rankSum += averageRank
        }
        i = j + 1
    }
    let negatives = Double(order.count) - positives
    guard positives > 0, negatives > 0 else { return nil }
    return (rankSum - positives * (positives + 1) / 2) / (positives * negatives)
}
