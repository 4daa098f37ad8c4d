import RecKitCore

/// Seeded random test data.
public struct TestData {
    public var rng: SeededRandom
    public init(seed: UInt64) { rng = SeededRandom(seed: seed) }

    /// `count` floats uniform in [lo, hi).
    public mutating func floats(_ count: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<count).map { _ in lo + (hi - lo) * rng.nextUniform() }
    }

    public mutating func buffer(_ count: Int, _ lo: Float = -1, _ hi: Float = 1) -> AlignedBuffer<Float> {
        AlignedBuffer(floats(count, lo, hi))
    }

    /// `count` ids in 0..<rows.
    public mutating func ids(_ count: Int, rows: Int) -> [Int64] {
        (0..<count).map { _ in Int64(rng.nextBelow(rows)) }
    }

    /// Random bag lengths in 0...maxLength.
    public mutating func lengths(_ bags: Int, maxLength: Int) -> [Int32] {
        (0..<bags).map { _ in Int32(rng.nextBelow(maxLength + 1)) }
    }
}

/// Offsets (B + 1) from lengths (B).
public func offsets(fromLengths lengths: [Int32]) -> [Int32] {
    var o: [Int32] = [0]
    for l in lengths { o.append(o.last! + l) }
    return o
}

/// Central finite difference of `loss` w.r.t. `x[i]` (x restored afterwards).
public func finiteDifference(_ x: UnsafeMutablePointer<Float>, _ i: Int, h: Float = 1e-2, _ loss: () -> Double) -> Double {
    let saved = x[i]
    x[i] = saved + h
    let plus = loss()
    x[i] = saved - h
    let minus = loss()
    x[i] = saved
    return (plus - minus) / Double(2 * h)
}
