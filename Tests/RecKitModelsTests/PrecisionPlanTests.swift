import RecKitCore
import RecKitKernels
@testable import RecKitModels
import Testing

@Suite("bf16 per-layer policy")
struct PrecisionPlanTests {
    static func model() throws -> DLRM {
        let config = DLRMConfig(denseCount: 13, sparse: [SparseFeatureSpec(name: "a", rows: 10)], embeddingDim: 16, bottomHidden: [64, 32],
                                topHidden: [64, 32])
        let m = try DLRM(config: config, initialization: .random(seed: 1), sparseOptimizer: nil)
        m.precision = .bf16
        return m
    }

    @Test("a forced-slow bf16 kernel makes every layer fp32; a fast one puts the wide layers in bf16 (narrow ones stay fp32)",
          .enabled(if: BF16Runtime.isAvailable, "no native bf16 on this machine (the probe then keeps every layer fp32)"))
    func probeDecides() throws {
        let pool = ThreadPool(threads: 1)
        let slow = BF16Probe(timer: { bf16, _, _, _, _, _ in bf16 ? 2.0 : 1.0 }, cacheFile: nil)
        let m = try Self.model()
        let plan = m.planPrecision(batch: 256, training: true, pool: pool, probe: slow)
        #expect(plan.allSatisfy { $0.precision == .fp32 }, "\(describePrecisionPlan(plan))")
        #expect(m.precisionLayers.allSatisfy { $0.effectivePrecision(batch: 256) == .fp32 })
        let fast = BF16Probe(timer: { bf16, _, _, _, _, _ in bf16 ? 0.5 : 1.0 }, cacheFile: nil)
        let plan2 = m.planPrecision(batch: 256, training: true, pool: pool, probe: fast)
        let bf16 = Set(plan2.filter { $0.precision == .bf16 }.map(\.layer))
        // 13→64, 17→64 and 32→16 (narrower than 32) and N = 1 stay fp32 by BF16Policy; the 64→32 layers are eligible.
        #expect(bf16 == ["bottom_mlp.1", "top_mlp.1"], "\(describePrecisionPlan(plan2))")
        // Another batch-size bucket is decided separately; a model back in fp32 forgets the plan.
        #expect(m.top.layers[1].effectivePrecision(batch: 16) == .bf16, "unplanned buckets run as requested")
        m.precision = .fp32
        #expect(m.precisionLayers.allSatisfy { $0.effectivePrecision(batch: 256) == .fp32 })
    }

    @Test("the real probe decides the same way twice (cached per CPU) and never picks bf16 without native support")
    func realProbe() throws {
        let probe = BF16Probe(cacheFile: nil)
        let pool = ThreadPool(threads: 2)
        let a = probe.prefersBF16(m: 512, k: 256, n: 128, training: true, pool: pool)
        let b = probe.prefersBF16(m: 512, k: 256, n: 128, training: true, pool: pool)
        #expect(a == b)
        if !BF16Runtime.isAvailable { #expect(!a) }
    }
}
