import Foundation
@testable import RecKitExperiments
import RecKitModels
import Testing

@Suite("Tuner: successive halving state machine and search space")
struct TunerTests {
    /// Drives the state machine with `workers` concurrent slots, completing jobs in the order `pick` chooses.
    static func drive(trials: Int, workers: Int, score: (SuccessiveHalving.Job) -> Double,
                      pick: ([SuccessiveHalving.Job]) -> Int) -> (jobs: [SuccessiveHalving.Job], best: (trial: Int, rung: Int, score: Double)?) {
        var sh = SuccessiveHalving(trials: trials, eta: 3, minEpochs: 1, maxEpochs: 9)
        var running: [SuccessiveHalving.Job] = [], done: [SuccessiveHalving.Job] = []
        while true {
            while running.count < workers, case .run(let j) = sh.next() { running.append(j) }
            if running.isEmpty { #expect(sh.next() == .done); break }
            let j = running.remove(at: pick(running))
            sh.report(j, score: score(j))
            done.append(j)
        }
        return (done, sh.best)
    }

    @Test("9 trials, η 3: 9 jobs of 1 epoch, the best 3 continue to 3 epochs, the best 1 to 9; promotions ignore completion order")
    func halving() {
        // Score: trial quality t/10 plus a little per epoch, except trial 2 which gets worse with training.
        let score = { (j: SuccessiveHalving.Job) -> Double in j.trial == 2 ? 0.5 - Double(j.epochs) / 100 : Double(j.trial) / 10 + Double(j.epochs) / 1000 }
        let inOrder = Self.drive(trials: 9, workers: 1, score: score) { _ in 0 }
        #expect(inOrder.jobs.filter { $0.rung == 0 }.count == 9)
        #expect(inOrder.jobs.filter { $0.rung == 1 }.map(\.trial).sorted() == [6, 7, 8])
        #expect(inOrder.jobs.filter { $0.rung == 1 }.allSatisfy { $0.epochs == 3 && $0.continuesRung == 0 })
        #expect(inOrder.jobs.filter { $0.rung == 2 }.map(\.trial) == [8] && inOrder.jobs.last?.epochs == 9)
        #expect(inOrder.best?.trial == 8 && inOrder.best?.rung == 2)
        let reversed = Self.drive(trials: 9, workers: 4, score: score) { $0.count - 1 }
        #expect(Set(reversed.jobs.map { [$0.trial, $0.rung] }) == Set(inOrder.jobs.map { [$0.trial, $0.rung] }))
        #expect(reversed.best?.trial == 8)
    }

    @Test("failed jobs rank last; one trial runs every rung; ties go to the lower trial")
    func edges() {
        let failing = Self.drive(trials: 3, workers: 2, score: { $0.trial == 2 ? .nan : 0.7 }) { _ in 0 }
        #expect(failing.jobs.filter { $0.rung == 1 }.map(\.trial) == [0])
        #expect(failing.best?.trial == 0)
        let one = Self.drive(trials: 1, workers: 2, score: { _ in 0.6 }) { _ in 0 }
        #expect(one.jobs.count == 1 && one.best?.score == 0.6)
    }

    @Test("sampling is seeded, stays in its domains, and a space file with an unknown form is refused")
    func space() throws {
        let s = SearchSpace.standard(for: .dlrm, rawInput: true)
        let a = s.sample(20, seed: 4), b = s.sample(20, seed: 4), c = s.sample(20, seed: 5)
        #expect(a == b && a != c)
        for p in a {
            guard case .double(let lr) = p["learning_rate"]! else { Issue.record("lr"); continue }
            #expect(lr >= 2e-4 && lr <= 1e-2)
            #expect(p["min_count"] != nil && p["bottom_hidden"] != nil)
        }
        #expect(SearchSpace.standard(for: .lr, rawInput: false).parameters["embedding_dim"] == nil)
        let json = #"{"learning_rate": {"log_uniform": [0.001, 0.01]}, "top_hidden": {"choice": [[64, 32], [128]]}}"#
        let parsed = try JSONDecoder().decode(SearchSpace.self, from: Data(json.utf8))
        #expect(parsed.parameters["top_hidden"] == .choice([.ints([64, 32]), .ints([128])]))
        #expect(throws: (any Error).self) { try JSONDecoder().decode(SearchSpace.self, from: Data(#"{"lr": {"normal": [0, 1]}}"#.utf8)) }
        #expect(throws: (any Error).self) { try JSONDecoder().decode(SearchSpace.self, from: Data(#"{"lr": {"log_uniform": [0, 1]}}"#.utf8)) }
    }
}
