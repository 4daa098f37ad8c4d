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

    @Test("the loss gradient through the kernel, the Cholesky solve and the sampling matches finite differences",
          arguments: DistillCF.Loss.allCases, [false, true])
    func gradient(loss: DistillCF.Loss, masked: Bool) throws {
        let algebra = try DenseAlgebra(threads: 1)
        let pool = ThreadPool(threads: 1)
        var rng = SeededRandom(seed: 11)
        let (bu, mu, n) = (7, 3, 9)
        var o = DistillCF.Options()
        o.lambda = 0.5
        o.temperature = 0.7
        o.loss = loss
        // Masked runs also leave the shown items out of the loss (softmax ignores the flag).
        o.maskInput = masked
        o.cardinality = 0.01
        o.meanDegree = 3
        let z = (0..<(mu * n)).map { _ in Float(rng.nextDouble() * 4 - 2) }
        let noise = (0..<(mu * n)).map { _ in Float(rng.nextDouble() - 0.5) }
        let batch = (0..<(bu * n)).map { _ in rng.nextDouble() < 0.35 ? Float(1) : 0 }
        // The teacher loss fits P to real-valued scores (a full model's) instead of the 0/1 rows.
        // Input dropout: the target holds every interaction, the input (`batch`) only some of them.
        let target: [Float]? = loss == .teacher ? (0..<(bu * n)).map { _ in Float(rng.nextDouble() * 1.2 - 0.1) }
            : masked ? batch.map { $0 > 0 || rng.nextDouble() < 0.2 ? Float(1) : 0 } : nil
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

    /// A small random 0/1 matrix of `users` × `items` with about `density` of the entries set.
    static func randomMatrix(users: Int, items: Int, density: Double, seed: UInt64) throws -> InteractionMatrix {
        var rng = SeededRandom(seed: seed)
        var start = [0], cols: [Int32] = []
        for _ in 0..<users {
            for j in 0..<items where rng.nextDouble() < density { cols.append(Int32(j)) }
            start.append(cols.count)
        }
        return try InteractionMatrix(rows: users, columns: items, rowStart: start, columnIndices: cols)
    }

    @Test("step selection returns the best-scoring step's summary, the same one a run stopped there returns")
    func stepSelection() throws {
        let algebra = try DenseAlgebra(threads: 1)
        let pool = ThreadPool(threads: 1)
        let train = try Self.randomMatrix(users: 40, items: 25, density: 0.2, seed: 5)
        for summary in DistillCF.Summary.allCases {
            var o = DistillCF.Options()
            o.users = 6; o.batchUsers = 16; o.summary = summary; o.inputDropout = 0.3
            o.cosineDecay = false  // the schedule would depend on the number of steps
            o.steps = 6; o.selectEvery = 2
            var asked: [Int] = []
            let chosen = try DistillCF.distill(train: train, options: o, algebra: algebra, pool: pool, select: { _, step throws(CFError) in
                asked.append(step)
                return step == 4 ? 1 : 0
            })
            #expect(asked == [2, 4, 6])
            #expect(chosen.step == 4)
            #expect(chosen.losses.count == 6)
            o.steps = 4; o.selectEvery = 0
            let stopped = try DistillCF.distill(train: train, options: o, algebra: algebra, pool: pool)
            #expect(stopped.step == 4)
            #expect(chosen.summary == stopped.summary)
            o.steps = 6
            let last = try DistillCF.distill(train: train, options: o, algebra: algebra, pool: pool)
            #expect(last.step == 6)
            // Two more steps move every soft weight (a binary summary's signs may stay).
            if summary == .soft { #expect(last.summary != stopped.summary, "six steps should move the summary away from four") }
        }
    }

    @Test("input dropout hides interactions from the input only: with it the trajectory differs, and it is seeded")
    func inputDropout() throws {
        let algebra = try DenseAlgebra(threads: 1)
        let pool = ThreadPool(threads: 1)
        let train = try Self.randomMatrix(users: 40, items: 25, density: 0.25, seed: 6)
        var o = DistillCF.Options()
        o.users = 6; o.batchUsers = 16; o.summary = .soft; o.steps = 5; o.loss = .squared
        let plain = try DistillCF.distill(train: train, options: o, algebra: algebra, pool: pool)
        o.inputDropout = 0.4
        let a = try DistillCF.distill(train: train, options: o, algebra: algebra, pool: pool)
        let b = try DistillCF.distill(train: train, options: o, algebra: algebra, pool: pool)
        #expect(a.losses == b.losses)
        #expect(a.summary == b.summary)
        #expect(a.losses != plain.losses)
        #expect(a.losses.allSatisfy { $0.isFinite && $0 > 0 })
    }
}
