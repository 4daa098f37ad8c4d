import Foundation
import RecKitCore
@testable import RecKitCF
import RecKitKernels
import Testing

@Suite("Distill-CF: NTK partials and the summary's gradient against finite differences")
struct DistillCFTests {
    @Test("∂Θ/∂a, ∂Θ/∂‖x‖², ∂Θ/∂‖y‖² match central differences (in Double)")
    func kernelPartials() {
        let k = NeuralTangentKernel(inputDimension: 40)
        for (a, p, q) in [(3.0, 9.0, 7.0), (0.5, 12.0, 2.0), (6.0, 6.5, 8.0), (0.0, 3.0, 4.0), (10.0, 11.0, 12.5)] {
            let d = k.partials(dot: a, normX: p, normY: q)
            let h = 1e-5
            let fa = (k.value(dot: a + h, normX: p, normY: q) - k.value(dot: a - h, normX: p, normY: q)) / (2 * h)
            let fp = (k.value(dot: a, normX: p + h, normY: q) - k.value(dot: a, normX: p - h, normY: q)) / (2 * h)
            let fq = (k.value(dot: a, normX: p, normY: q + h) - k.value(dot: a, normX: p, normY: q - h)) / (2 * h)
            #expect(abs(d.a - fa) <= 1e-6 * max(1, abs(fa)), "a \(d.a) vs \(fa)")
            #expect(abs(d.p - fp) <= 1e-6 * max(1, abs(fp)), "p \(d.p) vs \(fp)")
            #expect(abs(d.q - fq) <= 1e-6 * max(1, abs(fq)), "q \(d.q) vs \(fq)")
        }
        // The diagonal: Θ(x,x) as a function of ‖x‖² alone.
        let h = 1e-5, n = 5.0
        let f = (k.value(dot: n + h, normX: n + h, normY: n + h) - k.value(dot: n - h, normX: n - h, normY: n - h)) / (2 * h)
        #expect(abs(k.diagonalSlope - f) < 1e-6)
    }

    @Test("the loss gradient through the kernel, the Cholesky solve and the sampling matches finite differences", arguments: DistillCF.Loss.allCases)
    func gradient(loss: DistillCF.Loss) throws {
        let algebra = try DenseAlgebra(threads: 1)
        let pool = ThreadPool(threads: 1)
        var rng = SeededRandom(seed: 11)
        let (bu, mu, n) = (7, 3, 9)
        var o = DistillCF.Options()
        o.lambda = 0.5
        o.temperature = 0.7
        o.loss = loss
        o.cardinality = 0.01
        o.meanDegree = 3
        let z = (0..<(mu * n)).map { _ in Float(rng.nextDouble() * 4 - 2) }
        let noise = (0..<(mu * n)).map { _ in Float(rng.nextDouble() - 0.5) }
        let batch = (0..<(bu * n)).map { _ in rng.nextDouble() < 0.35 ? Float(1) : 0 }
        // The teacher loss fits P to real-valued scores (a full model's) instead of the 0/1 rows.
        let target: [Float]? = loss == .teacher ? (0..<(bu * n)).map { _ in Float(rng.nextDouble() * 1.2 - 0.1) } : nil
        let (_, g) = try DistillCF.lossAndGradient(z: z, noise: noise, batch: batch, target: target, batchUsers: bu, summaryUsers: mu, items: n, options: o,
                                                   algebra: algebra, pool: pool)
        var worst = 0.0
        for k in 0..<(mu * n) {
            let h: Float = 2e-2
            var zp = z, zm = z
            zp[k] += h; zm[k] -= h
            let lp = try DistillCF.lossAndGradient(z: zp, noise: noise, batch: batch, target: target, batchUsers: bu, summaryUsers: mu, items: n, options: o,
                                                   algebra: algebra, pool: pool).loss
            let lm = try DistillCF.lossAndGradient(z: zm, noise: noise, batch: batch, target: target, batchUsers: bu, summaryUsers: mu, items: n, options: o,
                                                   algebra: algebra, pool: pool).loss
            let fd = (lp - lm) / Double(2 * h)
            worst = max(worst, abs(fd - Double(g[k])) / max(0.05, abs(fd)))
        }
        #expect(worst < 0.01, "worst relative error \(worst)")
    }
}
