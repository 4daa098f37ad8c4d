import Foundation
import RecKitServing
import Testing

/// The inference engine's lifecycle under load: a model swap while requests are in flight drops none, and shutdown
/// scores everything already queued, then refuses new work with 503.
@Suite("Inference engine: reload under load, draining shutdown", .serialized)
struct EngineLifecycleTests {
    static func rows(_ n: Int, _ model: ServedModel) throws -> PreparedRows {
        try model.preprocessor.prepareTSV(Array(ServingFixtures.tsvLines(n).joined(separator: "\n").utf8))
    }

    @Test("reload while 200 requests are in flight: every request succeeds, scored by the model that preprocessed it")
    func reloadUnderLoad() async throws {
        let first = try ServedModel.load(try ServingFixtures.checkpoint(seed: 1), maxBatch: 32)
        let second = try ServedModel.load(try ServingFixtures.checkpoint(seed: 2, name: "next.ckpt"), maxBatch: 32)
        var o = InferenceEngine.Options()
        o.maxBatch = 32
        o.maxWaitMicros = 500
        let engine = InferenceEngine(model: first, options: o)
        defer { engine.shutdown() }
        let input = try Self.rows(3, first)
        let versions = await withTaskGroup(of: String?.self) { g in
            for i in 0..<200 {
                g.addTask {
                    if i == 100 { engine.reload(second) }
                    switch await engine.score(input, model: first) {
                    case .success(let s): return s.scores.count == 3 ? s.modelVersion : nil
                    case .failure: return nil
                    }
                }
            }
            return await g.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(versions.count == 200 && versions.allSatisfy { $0 != nil }, "a request failed or was dropped")
        #expect(Set(versions.compactMap { $0 }) == [first.version], "requests preprocessed by the first model are scored by it")
        let next = try Self.rows(3, engine.model)
        if case .success(let s) = await engine.score(next, model: engine.model) { #expect(s.modelVersion == second.version) } else { Issue.record("score failed") }
    }

    @Test("shutdown scores every queued request, then answers 503")
    func drainingShutdown() async throws {
        let model = try ServedModel.load(try ServingFixtures.checkpoint(), maxBatch: 8)
        var o = InferenceEngine.Options()
        o.maxBatch = 8
        o.maxWaitMicros = 200_000  // long enough that requests are still queued when shutdown starts
        let engine = InferenceEngine(model: model, options: o)
        let input = try Self.rows(1, model)
        async let results: [Bool] = withTaskGroup(of: Bool.self) { g in
            for _ in 0..<5 { g.addTask { if case .success = await engine.score(input, model: model) { return true } else { return false } } }
            return await g.reduce(into: []) { $0.append($1) }
        }
        // Shut down once all five are queued (a fixed sleep lost the race on a loaded machine: requests not yet
        // submitted are refused, correctly, and the test then failed).
        let deadline = Date().addingTimeInterval(20)
        while engine.requestsAccepted < 5, Date() < deadline { try await Task.sleep(nanoseconds: 1_000_000) }
        #expect(engine.requestsAccepted == 5)
        await withCheckedContinuation { c in DispatchQueue.global().async { engine.shutdown(); c.resume() } }
        let done = await results
        #expect(done.count == 5 && done.allSatisfy { $0 }, "queued requests must be scored, not dropped")
        #expect(engine.rowsScored == 5)
        if case .failure(let e) = await engine.score(input, model: model) { #expect(e.status == 503) } else { Issue.record("accepted after shutdown") }
    }
}
