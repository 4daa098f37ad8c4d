/// xoshiro256** (Blackman & Vigna 2018): the seeded generator behind every random choice in RecKit.
///
/// Seeded through SplitMix64 so that any 64-bit seed, including 0, gives a well-mixed state. Its full state
/// is four words (`state`), which checkpoints store so a resumed run draws the same numbers.
///
/// ```swift
/// var rng = SeededRandom(seed: 42)
/// let u = rng.nextUniform()            // Float in [0, 1)
/// let i = Int.random(in: 0..<10, using: &rng)
/// ```
public struct SeededRandom: RandomNumberGenerator, Sendable, Equatable {
    /// The generator's complete state.
    public var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var sm = seed
        func splitMix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(&sm), splitMix(&sm), splitMix(&sm), splitMix(&sm))
    }

    /// Restores a generator from a saved `state`.
    public init(state: (UInt64, UInt64, UInt64, UInt64)) { self.state = state }

    /// An independent stream for worker or table `index` (used to initialise shards in parallel, deterministically).
    public static func stream(seed: UInt64, index: UInt64) -> SeededRandom {
        SeededRandom(seed: seed ^ (index &* 0xD1B5_4A32_D192_ED03) &+ index)
    }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    @inlinable func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform `Float` in [0, 1) with 24 random bits.
    @inlinable public mutating func nextUniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform `Double` in [0, 1) with 53 random bits.
    @inlinable public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal sample (Box–Muller; one value per call, the pair's sine half is discarded for simplicity).
    public mutating func nextGaussian() -> Double {
        let u1 = max(nextDouble(), 0x1p-60)
        let u2 = nextDouble()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }

    /// Two independent standard normal samples (both halves of Box–Muller).
    public mutating func nextGaussianPair() -> (Double, Double) {
        let u1 = max(nextDouble(), 0x1p-60)
        let u2 = nextDouble()
        let r = (-2 * _log(u1)).squareRoot()
        let a = 2 * Double.pi * u2
        return (r * _cos(a), r * _sin(a))
    }

    /// Uniform integer in `0..<bound` (Lemire's multiply-shift; bias < 2^-32 for bounds below 2^32).
    @inlinable public mutating func nextBelow(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(truncatingIfNeeded: next() >> 32) &* UInt64(bound)) >> 32)
    }

    public static func == (a: SeededRandom, b: SeededRandom) -> Bool {
        a.state.0 == b.state.0 && a.state.1 == b.state.1 && a.state.2 == b.state.2 && a.state.3 == b.state.3
    }
}
