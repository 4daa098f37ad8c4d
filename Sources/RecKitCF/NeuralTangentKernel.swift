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

extension NeuralTangentKernel {
    /// The partial derivatives of Θ with respect to the dot product a = ⟨x,y⟩ and the squared norms p = ‖x‖²,
    /// q = ‖y‖² (for x ≠ y; on the diagonal Θ(x,x) = σw²·Σ₁(x,x) + σb² depends on ‖x‖² alone: `diagonalSlope`).
    /// With s = Σ₁, c = s_xy/√(s_xx·s_yy), θ = arccos c (dJ/dc = π − θ for J = sin θ + (π−θ)c):
    ///
    ///     ∂Θ/∂a = (σw²/d)·(σw²/2π)·(2(π−θ) + c/sin θ)
    ///     ∂Θ/∂p = (σw²/d)·(σw²·√(s_xx·s_yy)/(4π·s_xx))·(sin θ − c²/sin θ)      (∂Θ/∂q: s_yy in place of s_xx)
    ///
    /// sin θ is floored at 1e-3 so near-identical inputs keep finite slopes.
    @inline(__always) public func partials(dot: Double, normX: Double, normY: Double) -> (a: Double, p: Double, q: Double) {
        let d = Double(max(inputDimension, 1)), w = weightVariance, b = biasVariance
        let sxy = w * dot / d + b, sxx = w * normX / d + b, syy = w * normY / d + b
        let scale = (sxx * syy).squareRoot()
        let c = min(1, max(-1, sxy / scale))
        let theta = acos(c)
        let sine = max((1 - c * c).squareRoot(), 1e-3)
        let da = (w / d) * (w / (2 * Double.pi)) * (2 * (Double.pi - theta) + c / sine)
        let common = sine - c * c / sine
        let dp = (w / d) * (w * scale / (4 * Double.pi * sxx)) * common
        let dq = (w / d) * (w * scale / (4 * Double.pi * syy)) * common
        return (da, dp, dq)
    }

    /// dΘ(x,x)/d‖x‖².
    public var diagonalSlope: Double { weightVariance * weightVariance / Double(max(inputDimension, 1)) }
}
