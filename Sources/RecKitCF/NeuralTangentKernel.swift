import Foundation
import RecKitCore
import RecKitKernels

/// The neural tangent kernel of an infinitely wide one-hidden-layer ReLU autoencoder in the NTK
/// parameterization (∞-AE, Sachdeva et al., NeurIPS 2022; the `neural_tangents` network
/// Dense(W_std=√2, b_std=0.1) → ReLU → Dense(W_std=√2, b_std=0.1)).
///
/// For inputs x, y ∈ {0,1}^d (a user's item vector) the kernel depends only on ⟨x,y⟩, ‖x‖², ‖y‖²:
///
///     Σ₁(x,y) = σw²·⟨x,y⟩/d + σb²                      (first layer: NNGP = NTK)
///     θ       = arccos(Σ₁(x,y) / √(Σ₁(x,x)Σ₁(y,y)))
///     Σ₂(x,y) = σw²·√(Σ₁(x,x)Σ₁(y,y))·(sin θ + (π−θ)cos θ)/(2π) + σb²
///     Θ(x,y)  = Σ₂(x,y) + σw²·Σ₁(x,y)·(π−θ)/(2π)
///
/// with σw² = 2, σb² = 0.01. Θ is what `kernel_fn(x, y, 'ntk')` returns for that network.
public struct NeuralTangentKernel: Sendable, Equatable {
    public var weightVariance: Double = 2
    public var biasVariance: Double = 0.01
    /// d, the input width (number of items).
    public var inputDimension: Int

    public init(inputDimension: Int) { self.inputDimension = inputDimension }

    /// Θ from the dot product and the two squared norms.
    @inline(__always) public func value(dot: Double, normX: Double, normY: Double) -> Double {
        let d = Double(max(inputDimension, 1))
        let sxy = weightVariance * dot / d + biasVariance
        let sxx = weightVariance * normX / d + biasVariance
        let syy = weightVariance * normY / d + biasVariance
        let scale = (sxx * syy).squareRoot()
        let c = min(1, max(-1, sxy / scale))
        let theta = acos(c)
        let sine = (1 - c * c).squareRoot()  // sin(arccos c)
        let nngp = weightVariance * scale * (sine + (Double.pi - theta) * c) / (2 * Double.pi) + biasVariance
        return nngp + weightVariance * sxy * (Double.pi - theta) / (2 * Double.pi)
    }

    /// Turns a block of dot products [rows × cols] into kernel values in place, given the squared norms of the
    /// row inputs [rows] and the column inputs [cols].
    /// With `upperOnly` (a square Gram matrix whose upper triangle alone is used), entries below the diagonal
    /// are left as they are.
    public func apply(_ dots: UnsafeMutablePointer<Float>, rows: Int, cols: Int, rowNorms: [Float], colNorms: [Float], pool: ThreadPool,
                      upperOnly: Bool = false) {
        let p = SendablePointer(dots)
        pool.parallelFor(rows) { r in
            let nx = Double(rowNorms[r])
            let base = p.base + r * cols
            for c in (upperOnly ? r : 0)..<cols { base[c] = Float(value(dot: Double(base[c]), normX: nx, normY: Double(colNorms[c]))) }
        }
    }
}
