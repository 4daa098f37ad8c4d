/// Samples ranks `k ∈ 1...n` with probability ∝ k^(-s): the long-tailed id popularity of real click logs.
///
/// Rejection-inversion (Hörmann & Derflinger 1996, "Rejection-inversion to generate variates from monotone
/// discrete distributions"): O(1) expected time per sample and O(1) memory for any `n`, no table of
/// probabilities. Valid for any exponent `s > 0` (the `s → 1` limit is handled by the helper functions).
///
/// For n ≤ `aliasLimit` it samples in O(1) with Vose's alias method instead (one uniform index, one coin, no
/// transcendental functions; tables of 8 bytes per id), which is ~5x cheaper per sample.
///
/// `id(rank:)` scatters ranks over `0..<n` through a fixed bijection so that hot ids are not all adjacent
/// in memory, as in a hashed real table.
public struct ZipfSampler: Sendable {
    public let n: Int
    public let exponent: Double
    private let hIntegralX1: Double
    private let hIntegralN: Double
    private let sThreshold: Double
    private let multiplier: Int
    /// Alias method tables (empty above `aliasLimit`): keep rank i+1 with probability aliasProb[i], else alias.
    private let aliasProb: [Float]
    private let aliasIndex: [Int32]

    /// Largest n sampled with the alias method.
    public static let aliasLimit = 1 << 20

    /// - Parameters: n: number of distinct ids (≥ 1); exponent: `s > 0` (1.05–1.2 resembles Criteo features).
    public init(n: Int, exponent: Double) {
        precondition(n >= 1 && exponent > 0, "ZipfSampler needs n ≥ 1 and exponent > 0")  // allowed: programmer error
        self.n = n
        self.exponent = exponent
        let s = exponent
        func hIntegral(_ x: Double) -> Double { let lx = _log(x); return Self.helper2((1 - s) * lx) * lx }
        func h(_ x: Double) -> Double { _exp(-s * _log(x)) }
        hIntegralX1 = hIntegral(1.5) - 1
        hIntegralN = hIntegral(Double(n) + 0.5)
        sThreshold = 2 - Self.hIntegralInverse(hIntegral(2.5) - h(2), s)
        multiplier = Self.coprimeMultiplier(for: n)
        if n <= Self.aliasLimit {
            (aliasProb, aliasIndex) = Self.aliasTables(n: n, s: s)
        } else {
            aliasProb = []
            aliasIndex = []
        }
    }

    /// Vose's alias tables for P(k) ∝ k^(-s), k = 1...n.
    private static func aliasTables(n: Int, s: Double) -> ([Float], [Int32]) {
        var w = (1...n).map { _exp(-s * _log(Double($0))) }
        let total = w.reduce(0, +)
        for i in 0..<n { w[i] *= Double(n) / total }
        var prob = [Float](repeating: 1, count: n)
        var alias = [Int32](repeating: 0, count: n)
        var small: [Int] = [], large: [Int] = []
        for i in 0..<n { if w[i] < 1 { small.append(i) } else { large.append(i) } }
        while let l = small.popLast(), let g = large.last {
            prob[l] = Float(w[l])
            alias[l] = Int32(g)
            w[g] = (w[g] + w[l]) - 1
            if w[g] < 1 { large.removeLast(); small.append(g) }
        }
        for i in large { prob[i] = 1; alias[i] = Int32(i) }
        for i in small { prob[i] = 1; alias[i] = Int32(i) }
        return (prob, alias)
    }

    /// One rank in `1...n`.
    public func nextRank(using rng: inout SeededRandom) -> Int {
        if !aliasProb.isEmpty {
            let i = rng.nextBelow(n)
            return rng.nextUniform() < aliasProb[i] ? i + 1 : Int(aliasIndex[i]) + 1
        }
        let s = exponent
        while true {
            let u = hIntegralN + rng.nextDouble() * (hIntegralX1 - hIntegralN)
            let x = Self.hIntegralInverse(u, s)
            var k = Int(x + 0.5)
            if k < 1 { k = 1 } else if k > n { k = n }
            let kd = Double(k)
            if kd - x <= sThreshold { return k }
            let lk = _log(kd + 0.5)
            let hIntK = Self.helper2((1 - s) * lk) * lk
            if u >= hIntK - _exp(-s * _log(kd)) { return k }
        }
    }

    /// One id in `0..<n`: rank scattered by a fixed bijection (multiplication by a unit modulo n).
    public func nextID(using rng: inout SeededRandom) -> Int { id(rank: nextRank(using: &rng)) }

    /// The id that rank `k` (1-based) maps to.
    public func id(rank k: Int) -> Int { Int((UInt64(k - 1) &* UInt64(multiplier)) % UInt64(n)) }

    private static func hIntegralInverse(_ x: Double, _ s: Double) -> Double {
        var t = x * (1 - s)
        if t < -1 { t = -1 }  // numerical guard from the reference algorithm
        return _exp(helper1(t) * x)
    }
    /// log(1+x)/x, continuous at 0.
    private static func helper1(_ x: Double) -> Double { abs(x) > 1e-8 ? _log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x)) }
    /// (exp(x)-1)/x, continuous at 0.
    private static func helper2(_ x: Double) -> Double { abs(x) > 1e-8 ? _expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x)) }

    private static func coprimeMultiplier(for n: Int) -> Int {
        if n <= 2 { return 1 }
        var a = Int(Double(n) * 0.6180339887) | 1
        func gcd(_ x: Int, _ y: Int) -> Int { y == 0 ? x : gcd(y, x % y) }
        while gcd(a, n) != 1 { a += 2 }
        return a % n == 0 ? 1 : a
    }
}
