/// Synchronous successive halving (Jamieson & Talwalkar 2016; the rungs of Hyperband/ASHA) as a state machine
/// without I/O: the caller asks `next()` for work, runs it (possibly several jobs at once), and `report`s each
/// result. Rung k trains for `minEpochs · ηᵏ` epochs (capped at `maxEpochs`); when every trial of a rung has
/// reported, the best ⌈n/η⌉ (by score, ties to the lower trial index) are promoted and continue from where their
/// previous rung ended. Decisions depend only on the scores, never on completion order, so a seeded search is
/// reproducible with any number of concurrent workers (ASHA's asynchronous promotions are not).
public struct SuccessiveHalving: Sendable {
    public struct Job: Sendable, Equatable {
        public var trial: Int
        public var rung: Int
        /// Total epochs the trial has trained after this job.
        public var epochs: Int
        /// The rung whose result this job continues from (nil: a fresh start).
        public var continuesRung: Int?
    }
    public enum Action: Sendable, Equatable {
        case run(Job)
        /// Jobs are running; nothing can start until one reports.
        case wait
        case done
    }

    public let trials: Int, eta: Int, minEpochs: Int, maxEpochs: Int
    /// scores[rung][trial] for the jobs that reported.
    public private(set) var scores: [[Int: Double]]
    private var queue: [Job] = []
    private var running = Set<[Int]>()
    private var rung = 0
    private var members: [Int]

    public init(trials: Int, eta: Int = 3, minEpochs: Int = 1, maxEpochs: Int = 9) {
        self.trials = max(1, trials); self.eta = max(2, eta); self.minEpochs = max(1, minEpochs); self.maxEpochs = max(minEpochs, maxEpochs)
        members = Array(0..<self.trials)
        scores = [[:]]
        queue = members.map { Job(trial: $0, rung: 0, epochs: self.minEpochs, continuesRung: nil) }
    }

    public func epochs(rung k: Int) -> Int {
        var e = minEpochs
        for _ in 0..<k { e *= eta }
        return min(e, maxEpochs)
    }

    public mutating func next() -> Action {
        if !queue.isEmpty {
            let j = queue.removeFirst()
            running.insert([j.trial, j.rung])
            return .run(j)
        }
        if !running.isEmpty { return .wait }
        // The rung is complete: promote, or finish.
        let ranked = members.sorted { (scores[rung][$0] ?? -.infinity, -$0) > (scores[rung][$1] ?? -.infinity, -$1) }
        let keep = (members.count + eta - 1) / eta
        guard members.count > 1, epochs(rung: rung + 1) > epochs(rung: rung) else { return .done }
        members = Array(ranked.prefix(keep)).sorted()
        rung += 1
        scores.append([:])
        queue = members.map { Job(trial: $0, rung: rung, epochs: epochs(rung: rung), continuesRung: rung - 1) }
        return next()
    }

    /// Records a job's score (validation AUC; higher is better). A failed job reports -∞.
    public mutating func report(_ job: Job, score: Double) {
        running.remove([job.trial, job.rung])
        scores[job.rung][job.trial] = score.isNaN ? -.infinity : score
    }

    /// The best (trial, rung, score) so far: the highest score any job reached (ties: the higher rung, then the
    /// lower trial). Its recipe with `epochs(rung:)` epochs reproduces it.
    public var best: (trial: Int, rung: Int, score: Double)? {
        var b: (trial: Int, rung: Int, score: Double)?
        for (k, rung) in scores.enumerated() {
            for (t, s) in rung where s > -.infinity {
                if let c = b, (s, k, -t) <= (c.score, c.rung, -c.trial) { continue }
                b = (t, k, s)
            }
        }
        return b
    }
}
