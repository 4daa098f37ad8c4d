#if canImport(Glibc)
import Glibc
#endif

/// SIMD16 activations, their backward, and binary cross-entropy with logits; scalar tails use the reference
/// formulas. Sigmoid uses `simdExp` (≈ 2 ulp), so it matches the reference to a few ulp, not bit for bit.
enum OptimizedActivation {
    @inline(__always) static func apply(_ act: Activation, _ v: F16x) -> F16x {
        switch act {
        case .identity: return v
        case .relu: return v.replacing(with: Float(0), where: .!(v .> .zero))  // -0 and NaN → 0, like the reference
        case .sigmoid: return sigmoid(v)
        }
    }

    /// σ(x) = 1/(1+e^(−x)) for x ≥ 0 and e^x/(1+e^x) otherwise (no overflow either way).
    @inline(__always) static func sigmoid(_ v: F16x) -> F16x {
        let absV = v.replacing(with: -v, where: v .< .zero)
        let e = simdExp(-absV)
        let one = F16x(repeating: 1)
        let pos = one / (one + e)
        return pos.replacing(with: e / (one + e), where: v .< .zero)
    }

    static func forward(_ act: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        let chunks = count / 16
        for c in 0..<chunks { store16(apply(act, load16(x + c * 16)), y + c * 16) }
        for i in (chunks * 16)..<count { y[i] = ReferenceDense.activate(act, x[i]) }
    }

    static func backward(_ act: Activation, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>, _ count: Int) {
        if dx != UnsafeMutablePointer(mutating: dy) { dx.update(from: dy, count: count) }
        backwardRow(act, y, dx, count)
    }

    /// g ← g ⊙ act′(y) in place.
    @inline(__always) static func backwardRow(_ act: Activation, _ y: UnsafePointer<Float>,
                                              _ g: UnsafeMutablePointer<Float>, _ count: Int) {
        if act == .identity { return }
        let chunks = count / 16
        for c in 0..<chunks {
            let yv = load16(y + c * 16), gv = load16(g + c * 16)
            switch act {
            case .relu: store16(gv.replacing(with: Float(0), where: .!(yv .> .zero)), g + c * 16)
            case .sigmoid: store16(gv * yv * (F16x(repeating: 1) - yv), g + c * 16)
            case .identity: break
            }
        }
        for i in (chunks * 16)..<count { g[i] = ReferenceDense.derivative(act, y: y[i], dy: g[i]) }
    }

    @inline(__always) static func addRow(_ x: UnsafePointer<Float>, into acc: UnsafeMutablePointer<Float>, _ n: Int) {
        let chunks = n / 16
        for c in 0..<chunks { store16(load16(acc + c * 16) + load16(x + c * 16), acc + c * 16) }
        for j in (chunks * 16)..<n { acc[j] += x[j] }
    }

    /// acc += a·x
    @inline(__always) static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ acc: UnsafeMutablePointer<Float>, _ n: Int) {
        let av = F16x(repeating: a), chunks = n / 16
        for c in 0..<chunks { store16(load16(acc + c * 16) + av * load16(x + c * 16), acc + c * 16) }
        for j in (chunks * 16)..<n { acc[j] += a * x[j] }
    }

    /// out = a·x
    @inline(__always) static func scaleRow(_ x: UnsafePointer<Float>, by a: Float, into out: UnsafeMutablePointer<Float>, _ n: Int) {
        let av = F16x(repeating: a), chunks = n / 16
        for c in 0..<chunks { store16(av * load16(x + c * 16), out + c * 16) }
        for j in (chunks * 16)..<n { out[j] = a * x[j] }
    }

    /// Binary cross-entropy with logits, summed; gradient gradScale·(σ(z) − y) vectorised.
    static func bceWithLogits(_ z: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ count: Int,
                              _ grad: UnsafeMutablePointer<Float>?, _ gradScale: Float) -> Double {
        var total = 0.0
        let chunks = count / 16
        let one = F16x(repeating: 1), gs = F16x(repeating: gradScale)
        for c in 0..<chunks {
            let zv = load16(z + c * 16), yv = load16(y + c * 16)
            let absZ = zv.replacing(with: -zv, where: zv .< .zero)
            let e = simdExp(-absZ)
            let base = zv.replacing(with: Float(0), where: zv .< .zero) - zv * yv
            var lane = 0.0
            for l in 0..<16 { lane += Double(base[l] + log1pf(e[l])) }
            total += lane
            if let grad {
                let s = (one / (one + e)).replacing(with: e / (one + e), where: zv .< .zero)
                store16(gs * (s - yv), grad + c * 16)
            }
        }
        let rest = count - chunks * 16
        if rest > 0 {
            total += ReferenceDense.bceWithLogits(z + chunks * 16, y + chunks * 16, rest,
                                                  grad.map { $0 + chunks * 16 }, gradScale)
        }
        return total
    }
}
