import Foundation
import RecKitCore
@testable import RecKitCF
import RecKitKernels
import RecKitTestSupport
import Testing

/// Closed-form models against plain double-precision references (Gauss–Jordan inverse, pairwise kernel loops).
@Suite("CF models: EASE, ∞-AE, popularity, BPR against references")
struct CFModelTests {
    /// A random binary matrix: `users` × `items`, every user with at least one item.
    static func randomEvents(users: Int, items: Int, density: Double, seed: UInt64) -> Interactions {
        var rng = SeededRandom(seed: seed)
        var e = Interactions(source: "random")
        for u in 0..<users {
            var any = false
            for i in 0..<items where rng.nextDouble() < density || (!any && i == items - 1) {
                e.users.append(Int64(100 + u)); e.items.append(Int64(7 * i + 3)); e.ratings.append(1); any = true
            }
        }
        return e
    }

    /// Inverse of a symmetric positive-definite matrix by Gauss–Jordan in Double (the reference twin).
    static func referenceInverse(_ a: [Double], n: Int) -> [Double] {
        var m = a, inv = [Double](repeating: 0, count: n * n)
        for i in 0..<n { inv[i * n + i] = 1 }
        for c in 0..<n {
            let p = m[c * n + c]
            for j in 0..<n { m[c * n + j] /= p; inv[c * n + j] /= p }
            for r in 0..<n where r != c {
                let f = m[r * n + c]
                for j in 0..<n { m[r * n + j] -= f * m[c * n + j]; inv[r * n + j] -= f * inv[c * n + j] }
            }
        }
        return inv
    }

    static func dense(_ m: InteractionMatrix) -> [Double] {
        var x = [Double](repeating: 0, count: m.rows * m.columns)
        for r in 0..<m.rows { for c in m.row(r) { x[r * m.columns + Int(c)] = 1 } }
        return x
    }

    @Test("EASE weights equal I − P·diag(1/diag P) from a reference inverse", arguments: [(1, 1), (5, 3), (17, 16), (40, 33)])
    func easeMatchesReference(shape: (Int, Int)) throws {
        let (users, items) = shape
        let events = Self.randomEvents(users: users, items: items, density: 0.3, seed: UInt64(users * 31 + items))
        let um = IDMap(events.users), im = IDMap(events.items)
        let x = InteractionMatrix(events, users: um, items: im)
        let lambda: Float = 2.5
        let model = try EASEModel.fit(train: x, users: um, items: im, lambda: lambda, algebra: try DenseAlgebra(threads: 2))
        let n = im.count, xd = Self.dense(x)
        var g = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for u in 0..<x.rows { g[i * n + j] += xd[u * n + i] * xd[u * n + j] } } }
        for i in 0..<n { g[i * n + i] += Double(lambda) }
        let p = Self.referenceInverse(g, n: n)
        var expected = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n where i != j { expected[i * n + j] = Float(-p[i * n + j] / p[j * n + j]) } }
        assertClose(model.weights, expected, Tolerance(rtol: 1e-3, atol: 1e-5, reason: "fp32 Cholesky inverse vs fp64 Gauss–Jordan"), "EASE B")
    }

    @Test("∞-AE scores equal a pairwise-kernel ridge regression in Double; weighted entries (a soft summary) too, and they survive the model file",
          arguments: [(1, 4), (6, 5), (23, 17), (50, 12)], [false, true])
    func infiniteAEMatchesReference(shape: (Int, Int), weighted: Bool) throws {
        let (users, items) = shape
        var events = Self.randomEvents(users: users, items: items, density: 0.35, seed: UInt64(users + 1000 * items))
        if weighted {
            var rng = SeededRandom(seed: 77)
            events.ratings = events.ratings.map { _ in Float(0.05 + 0.95 * rng.nextDouble()) }
            // A repeated pair keeps its largest value.
            events.users.append(events.users[0]); events.items.append(events.items[0]); events.ratings.append(events.ratings[0] / 2)
        }
        let um = IDMap(events.users), im = IDMap(events.items)
        let x = InteractionMatrix(events, users: um, items: im, weighted: weighted)
        #expect((x.values != nil) == weighted && x.nonZeros == events.count - (weighted ? 1 : 0))
        let lambda: Float = 0.5
        let pool = ThreadPool(threads: 2)
        let algebra = try DenseAlgebra(threads: 2)
        let model = try InfiniteAEModel.fit(train: x, users: um, items: im, lambda: lambda, algebra: algebra, pool: pool)
        let u = x.rows, n = im.count
        var xd = [Double](repeating: 0, count: u * n)
        for k in 0..<events.count {
            let a = Int(um[events.users[k]]!), i = Int(im[events.items[k]]!)
            xd[a * n + i] = max(xd[a * n + i], weighted ? Double(events.ratings[k]) : 1)
        }
        let ntk = NeuralTangentKernel(inputDimension: n)
        func kernel(_ a: Int, _ b: Int) -> Double {
            var dot = 0.0, na = 0.0, nb = 0.0
            for i in 0..<n { dot += xd[a * n + i] * xd[b * n + i]; na += xd[a * n + i] * xd[a * n + i]; nb += xd[b * n + i] * xd[b * n + i] }
            return ntk.value(dot: dot, normX: na, normY: nb)
        }
        var k = [Double](repeating: 0, count: u * u)
        for a in 0..<u { for b in 0..<u { k[a * u + b] = kernel(a, b) } }
        let trace = (0..<u).reduce(0.0) { $0 + k[$1 * u + $1] }
        for a in 0..<u { k[a * u + a] += Double(lambda) * trace / Double(u) }
        let kinv = Self.referenceInverse(k, n: u)
        // Scores of every training user from its own row: Θ(x_a, X)·K⁻¹·X.
        var expected = [Float](repeating: 0, count: u * n)
        for a in 0..<u {
            for i in 0..<n {
                var s = 0.0
                for b in 0..<u { var t = 0.0; for c in 0..<u { t += kinv[b * u + c] * xd[c * n + i] }; s += kernel(a, b) * t }
                expected[a * n + i] = Float(s)
            }
        }
        var got = [Float](repeating: 0, count: u * n)
        try got.withUnsafeMutableBufferPointer { p in
            try model.score(context: x, rows: 0..<u, userIndex: (0..<u).map(Int32.init), into: p.baseAddress!, algebra: algebra, pool: pool)
        }
        assertClose(got, expected, Tolerance(rtol: 2e-3, atol: 1e-4, reason: "fp32 kernel and Cholesky solve vs fp64 inverse"), "∞-AE scores")
        // The model file keeps the support's values: the loaded model scores the same.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-infae-\(getpid())-\(users)-\(weighted).model").path
        try CFModelFile.write(model, to: file)
        let loaded = try CFModelFile.read(file)
        var again = [Float](repeating: 0, count: u * n)
        try again.withUnsafeMutableBufferPointer { p in
            try loaded.score(context: x, rows: 0..<u, userIndex: (0..<u).map(Int32.init), into: p.baseAddress!, algebra: algebra, pool: pool)
        }
        #expect(again == got)
    }

    /// Golden values from `neural_tangents` 0.6.5 (jax 0.5.0, float32): `kernel_fn(x, x, 'ntk')` of
    /// Flatten → Dense(1024, √2, 0.1, 'ntk') → Relu → Dense(10, √2, 0.1, 'ntk') for the rows
    /// x₀ = e{0,2,3,7}, x₁ = e{1,2,6,7,8}, x₂ = e{9} of width 10 (benchmarks/cf/reference.py's network).
    @Test("The NTK equals neural_tangents' kernel on committed golden values")
    func ntkMatchesNeuralTangents() {
        let k = NeuralTangentKernel(inputDimension: 10)
        let golden: [(dot: Double, nx: Double, ny: Double, theta: Double)] = [
            (4, 4, 4, 1.6299999952316284), (2, 4, 5, 0.7994258403778076), (0, 4, 1, 0.15139690041542053),
            (5, 5, 5, 2.0299999713897705), (0, 5, 1, 0.1666991263628006), (1, 1, 1, 0.4300000071525574)]
        for g in golden {
            let v = k.value(dot: g.dot, normX: g.nx, normY: g.ny)
            #expect(abs(v - g.theta) <= 1e-6 * g.theta, "Θ(dot \(g.dot), ‖x‖² \(g.nx), ‖y‖² \(g.ny)) = \(v), neural_tangents \(g.theta)")
        }
    }

    @Test("The NTK at x = y, at orthogonal inputs, and its symmetry")
    func ntkClosedForms() {
        let k = NeuralTangentKernel(inputDimension: 10)
        // x = y: θ = 0, Σ₂ = σw²·Σ₁/2 + σb², Θ = Σ₂ + σw²·Σ₁/2.
        let s1 = 2.0 * 4 / 10 + 0.01
        #expect(abs(k.value(dot: 4, normX: 4, normY: 4) - (2 * s1 / 2 + 0.01 + 2 * s1 / 2)) < 1e-12)
        #expect(k.value(dot: 1, normX: 3, normY: 5) == k.value(dot: 1, normX: 5, normY: 3))
        // More overlap, larger kernel (monotone in the dot product at fixed norms).
        #expect(k.value(dot: 2, normX: 3, normY: 3) > k.value(dot: 1, normX: 3, normY: 3))
    }

    @Test("Popularity ranks by training count; BPR is deterministic for a seed and learns the observed items")
    func popularityAndBPR() throws {
        let events = Self.randomEvents(users: 60, items: 20, density: 0.25, seed: 9)
        let um = IDMap(events.users), im = IDMap(events.items)
        let x = InteractionMatrix(events, users: um, items: im)
        let pop = PopularityModel(train: x, users: um, items: im)
        #expect(pop.itemCounts == x.columnCounts())
        var o = BPRModel.Options(); o.epochs = 40; o.dimension = 8
        let a = try BPRModel.fit(train: x, users: um, items: im, options: o)
        let b = try BPRModel.fit(train: x, users: um, items: im, options: o)
        #expect(a.userFactors == b.userFactors && a.itemFactors == b.itemFactors)
        // Training AUC of observed vs unobserved items well above chance.
        var scores = [Float](repeating: 0, count: x.rows * im.count)
        try scores.withUnsafeMutableBufferPointer { p in
            try a.score(context: x, rows: 0..<x.rows, userIndex: (0..<x.rows).map(Int32.init), into: p.baseAddress!,
                        algebra: try DenseAlgebra(threads: 1), pool: ThreadPool(threads: 1))
        }
        var wins = 0.0, pairs = 0.0
        for u in 0..<x.rows {
            for i in x.row(u) { for j in 0..<im.count where !x.contains(u, Int32(j)) {
                pairs += 1; wins += scores[u * im.count + Int(i)] > scores[u * im.count + j] ? 1 : 0
            } }
        }
        #expect(wins / pairs > 0.8, "training AUC \(wins / pairs)")
    }

    @Test("EASE refuses λ ≤ 0 with a typed error")
    func easeErrors() throws {
        let events = Self.randomEvents(users: 3, items: 6, density: 0.5, seed: 1)
        let um = IDMap(events.users), im = IDMap(events.items)
        let x = InteractionMatrix(events, users: um, items: im)
        #expect(throws: CFError.self) { try EASEModel.fit(train: x, users: um, items: im, lambda: 0, algebra: try DenseAlgebra(threads: 1)) }
    }
}
