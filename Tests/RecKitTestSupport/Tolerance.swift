import Testing

/// Named tolerances for comparing float results. Exact equality is used wherever the order of operations is
/// the same in both implementations; each looser tolerance says why it is loose.
public struct Tolerance: Sendable, CustomStringConvertible {
    public var rtol: Double
    public var atol: Double
    public var reason: String

    public init(rtol: Double, atol: Double, reason: String) {
        self.rtol = rtol; self.atol = atol; self.reason = reason
    }

    /// Bit-for-bit: same operations in the same order.
    public static let exact = Tolerance(rtol: 0, atol: 0, reason: "identical order of operations")
    /// Sums re-associated (SIMD lanes, tree reductions) over up to a few hundred terms.
    public static let reassociated = Tolerance(rtol: 1e-5, atol: 1e-6, reason: "summation order differs")
    /// BLAS GEMM against a k-ordered loop: blocking and FMA change rounding; grows with K.
    public static func blas(k: Int) -> Tolerance {
        Tolerance(rtol: 2e-5 * Double(max(k, 1)).squareRoot(), atol: 1e-5 * Double(max(k, 1)).squareRoot(),
                  reason: "BLAS blocking/FMA over K=\(k)")
    }
    /// bf16 mixed precision against fp32: every GEMM input rounded to 8 significant bits (relative error ≤ 2⁻⁹ per
    /// operand), errors of random sign adding up over K terms of magnitude ≲ `scale`.
    public static func bf16Rounding(k: Int, scale: Double = 1) -> Tolerance {
        Tolerance(rtol: 1.0 / 128, atol: scale * Double(max(k, 1)).squareRoot() / 128,
                  reason: "bf16 inputs (8-bit significand) over K=\(k)")
    }
    /// Vectorised exp (≈ 2 ulp) against libm.
    public static let simdExp = Tolerance(rtol: 3e-6, atol: 1e-7, reason: "polynomial exp vs libm")
    /// Central finite differences in Float32 against analytic gradients.
    public static let finiteDifference = Tolerance(rtol: 2e-2, atol: 2e-3, reason: "O(h²) truncation + float32 rounding")

    public var description: String { "rtol=\(rtol) atol=\(atol) (\(reason))" }

    public func accepts(_ a: Double, _ b: Double) -> Bool {
        if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
        if a == b { return true }
        return abs(a - b) <= atol + rtol * max(abs(a), abs(b))
    }
}

/// Records one test issue (with the first few offending positions) if `actual` and `expected` differ beyond `tol`.
public func assertClose(_ actual: [Float], _ expected: [Float], _ tol: Tolerance, _ what: @autoclosure () -> String = "",
                        sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(what()): count \(actual.count) ≠ \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var bad: [String] = []
    var nBad = 0
    for i in 0..<actual.count {
        let ok = tol.rtol == 0 && tol.atol == 0
            ? actual[i].bitPattern == expected[i].bitPattern || (actual[i].isNaN && expected[i].isNaN)
            : tol.accepts(Double(actual[i]), Double(expected[i]))
        if !ok {
            nBad += 1
            if bad.count < 5 { bad.append("[\(i)] \(actual[i]) vs \(expected[i])") }
        }
    }
    if nBad > 0 {
        Issue.record("\(what()): \(nBad)/\(actual.count) differ beyond \(tol): \(bad.joined(separator: ", "))",
                     sourceLocation: sourceLocation)
    }
}

public func assertClose(_ actual: Double, _ expected: Double, _ tol: Tolerance, _ what: @autoclosure () -> String = "",
                        sourceLocation: SourceLocation = #_sourceLocation) {
    if !tol.accepts(actual, expected) {
        Issue.record("\(what()): \(actual) vs \(expected) beyond \(tol)", sourceLocation: sourceLocation)
    }
}
