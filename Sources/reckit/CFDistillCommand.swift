import ArgumentParser
import Foundation
import RecKitCF
import RecKitCore
import RecKitKernels

struct CFDistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distill-CF: learn a synthetic summary of --users users on which ∞-AE scores like ∞-AE on all the data.",
        discussion: "Writes the summary as an interactions TSV (synthetic users 1…N). With --valid, fits ∞-AE on the summary (λ searched on --valid) and on the full data, and reports both nDCG@10.")

    @Option(name: .long, help: "Training interactions (TSV/CSV or a converted dataset directory).") var train: String
    @Option(name: .long, help: "Synthetic users (default 500).") var users = 500
    @Option(name: .long, help: "Where to write the summary (interactions TSV).") var output: String
    @Option(name: .long, help: "Validation interactions: report nDCG@10 of ∞-AE fit on the summary against ∞-AE fit on the full data.") var valid: String?
    @Option(name: .long, help: "Optimisation steps (default 800).") var steps = 800
    @Option(name: .customLong("batch-users"), help: "Real users per step (default 2048).") var batchUsers = 2048
    @Option(name: .long, help: "Adam learning rate on the summary's logits (default 0.3).") var lr: Float = 0.3
    @Option(name: .long, help: "Gumbel-softmax temperature (default 1).") var temperature: Float = 1
    @Option(name: .long, help: "λ of ∞-AE inside the distillation loss (default 3.5).") var lambda: Float = 3.5
    @Option(name: .long, help: "Seed (initial users, batches, noise; default 1).") var seed: UInt64 = 1
    @Option(name: .long, help: "Loss: teacher (fit the full-data ∞-AE's scores, default), squared (reconstruct the real users: ∞-AE's ridge objective) or softmax (the paper's multinomial cross-entropy).") var loss: String = "teacher"
    @Option(name: .long, help: "Cardinality penalty ρ (default 0.001, the paper's).") var cardinality: Float = 0.001
    @Option(name: .long, help: "soft (default): weights σ(Z/τ) in (0,1), trained without noise, written in the rating column (fit it with `cf fit --weighted`; the better summary on ML-1M); binary: a 0/1 summary trained through the Gumbel-softmax.") var summary: String = "soft"
    @Flag(name: .customLong("cosine-decay"), inversion: .prefixedNo, help: "Decay the learning rate along a cosine to 5% of --lr by the last step (default on).") var cosineDecay = true
    @Option(name: .customLong("noise-anneal"), help: "Soft summaries: Gumbel noise decaying to zero over this fraction of the steps (default 0: none).") var noiseAnneal: Float = 0
    @Option(name: .customLong("input-dropout"), help: "Hide each real interaction from the summary model's input with this probability per step, keeping it in the target (default 0).") var inputDropout: Float = 0
    @Flag(name: .customLong("mask-input"), inversion: .prefixedNo, help: "Leave the items shown to the summary's model out of the loss, fitting only scores of items outside a user's context as the evaluation ranks them (default on; applies to --loss teacher, and to squared with --input-dropout).") var maskInput = true
    @Option(name: .customLong("select-every"), help: "With --valid: score the summary every N steps on half of the validation users and keep the best (the other half, never used to choose, is reported as heldout_*; default 0: keep the last step's).") var selectEvery = 0
    @OptionGroup var common: CommonOptions
    @OptionGroup var carbon: CarbonOptions

    struct Report: Encodable {
        var users: Int, items: Int, interactions: Int, steps: Int
        var final_loss: Double?
        var seconds: Double
        var summary_lambda: Double?
        var ndcg10: Double?
        var full_ndcg10: Double?
        var ratio: Double?
        var selected_step: Int?
        var heldout_ndcg10: Double?
        var heldout_full_ndcg10: Double?
        var heldout_ratio: Double?
        enum CodingKeys: String, CodingKey {
            case users, items, interactions, steps, final_loss, seconds, summary_lambda, ratio, selected_step, heldout_ratio
            case heldout_ndcg10 = "heldout_ndcg@10"
            case heldout_full_ndcg10 = "heldout_full_ndcg@10"
            case ndcg10 = "ndcg@10"
            case full_ndcg10 = "full_ndcg@10"
        }
    }

    func run() throws {
        let log = CLILog.logger("reckit.cf")
        try CLILog.checkEnvironment(log)
        var o = DistillCF.Options()
        o.users = users; o.steps = steps; o.batchUsers = batchUsers; o.learningRate = lr; o.temperature = temperature; o.lambda = lambda; o.seed = seed
        guard let l = DistillCF.Loss(rawValue: loss) else { throw ValidationError("--loss must be squared, teacher or softmax") }
        o.loss = l
        o.cardinality = cardinality
        guard let kind = DistillCF.Summary(rawValue: summary) else { throw ValidationError("--summary must be binary or soft") }
        o.summary = kind
        guard noiseAnneal >= 0, noiseAnneal.isFinite else { throw ValidationError("--noise-anneal must be ≥ 0") }
        o.noiseAnneal = noiseAnneal
        o.cosineDecay = cosineDecay
        guard selectEvery >= 0 else { throw ValidationError("--select-every must be ≥ 0") }
        guard selectEvery == 0 || valid != nil else { throw ValidationError("--select-every needs --valid") }
        o.selectEvery = selectEvery
        guard inputDropout >= 0, inputDropout < 1 else { throw ValidationError("--input-dropout must be in [0, 1)") }
        o.inputDropout = inputDropout
        o.maskInput = maskInput
        let threads = common.resolvedThreads
        let run = try CarbonRun(command: "cf distill", model: "infae", options: carbon, threads: threads)
        let report = try run.measure { try onCFError { () throws(CFError) -> Report in
            let events = try Interactions.read(train)
            let validation = try valid.map { v throws(CFError) in try Interactions.read(v) }
            let userMap = IDMap(events.users), itemMap = IDMap(events.items)
            let matrix = InteractionMatrix(events, users: userMap, items: itemMap)
            let pool = ThreadPool(threads: threads)
            let algebra = try DenseAlgebra(threads: threads)
            log.info("distilling \(userMap.count) users × \(itemMap.count) items into \(users) synthetic users, \(steps) steps")
            // Step selection sees only half of the validation users (a fixed hash of the user id); the other half
            // is reported apart, so the selected summary is also measured on users the choice never saw.
            let halves = validation.map { Self.splitUsers($0) }
            let synthetic = IDMap((1...o.users).map(Int64.init))
            /// ∞-AE fit on a summary, λ searched on `test` (nDCG@10).
            func searchLambda(_ summary: InteractionMatrix, _ test: Interactions, verbose: Bool) throws(CFError) -> (model: any CFModel, lambda: Float, ndcg10: Double) {
                try CFFit.searchLambda(.infae, train: summary, users: synthetic, items: itemMap, context: events, valid: test, grid: CFFit.defaultGrid(.infae),
                                       algebra: algebra, pool: pool, logger: log) { _, l, v in
                    if verbose { log.info("∞-AE on the summary, λ \(l): validation nDCG@10 \(String(format: "%.4f", v))") }
                }
            }
            // The λ each scored step chose on the selection half: the held-out report reuses the chosen step's.
            var selectionLambda: [Int: Float] = [:]
            let selectionHalf = halves?.select ?? Interactions(source: "none")
            let select: (InteractionMatrix, Int) throws(CFError) -> Double = { summary, step throws(CFError) in
                let best = try searchLambda(summary, selectionHalf, verbose: false)
                selectionLambda[step] = best.lambda
                log.info("step \(step): selection-half nDCG@10 \(String(format: "%.4f", best.ndcg10)) (λ \(best.lambda))")
                return best.ndcg10
            }
            let clock = Date()
            let (summary, losses, chosen) = try DistillCF.distill(train: matrix, options: o, algebra: algebra, pool: pool, select: selectEvery > 0 ? select : nil) { step, loss in
                if step % 10 == 0 || step == o.steps {
                    let elapsed = Date().timeIntervalSince(clock)
                    log.info("step \(step)/\(o.steps): loss \(String(format: "%.5f", loss)), \(String(format: "%.1f", elapsed)) s, ETA \(String(format: "%.0f", elapsed / Double(step) * Double(o.steps - step))) s")
                }
            }
            let seconds = Date().timeIntervalSince(clock)
            var out = Interactions(source: "distill-cf")
            for u in 0..<summary.rows {
                for p in summary.entries(u) {
                    out.users.append(Int64(u + 1)); out.items.append(itemMap.ids[Int(summary.columnIndices[p])]); out.ratings.append(summary.values?[p] ?? 1)
                }
            }
            try out.writeTSV(to: output)
            var report = Report(users: summary.rows, items: itemMap.count, interactions: summary.nonZeros, steps: o.steps, final_loss: losses.last,
                                seconds: seconds)
            if let validation {
                let best = try searchLambda(summary, validation, verbose: true)
                let full = try InfiniteAEModel.fit(train: matrix, users: userMap, items: itemMap, lambda: CFFit.defaultLambda(.infae), algebra: algebra, pool: pool)
                let f = try RankingEvaluation.evaluate(model: full, context: events, test: validation, ks: [10], algebra: algebra, pool: pool).metrics["ndcg@10"]
                report.summary_lambda = Double(best.lambda)
                report.ndcg10 = best.ndcg10
                report.full_ndcg10 = f
                if let f, f > 0 { report.ratio = best.ndcg10 / f }
                if selectEvery > 0, let h = halves, let l = selectionLambda[chosen] {
                    report.selected_step = chosen
                    // λ of the summary's model as chosen on the selection half: nothing about the held-out half is looked at.
                    let m = try InfiniteAEModel.fit(train: summary, users: synthetic, items: itemMap, lambda: l, algebra: algebra, pool: pool)
                    let a = try RankingEvaluation.evaluate(model: m, context: events, test: h.heldOut, ks: [10], algebra: algebra, pool: pool).metrics["ndcg@10"]
                    let fh = try RankingEvaluation.evaluate(model: full, context: events, test: h.heldOut, ks: [10], algebra: algebra, pool: pool).metrics["ndcg@10"]
                    report.heldout_ndcg10 = a
                    report.heldout_full_ndcg10 = fh
                    if let a, let fh, fh > 0 { report.heldout_ratio = a / fh }
                }
            }
            return report
        } }
        if common.json { try printJSON(report); return }
        var line = "distilled \(report.users) synthetic users (\(report.interactions) interactions) in \(String(format: "%.1f", report.seconds)) s → \(output)"
        if let a = report.ndcg10, let f = report.full_ndcg10 {
            line += String(format: "; validation nDCG@10 %.4f on the summary vs %.4f on the full data (%.1f%%)", a, f, 100 * a / f)
        }
        if let s = report.selected_step, let r = report.heldout_ratio {
            line += String(format: "; step %d selected on half of the validation users; on the other half %.1f%%", s, 100 * r)
        }
        print(line)
    }

    /// Validation rows split by user into a selection half and a held-out half (a fixed hash of the user id).
    static func splitUsers(_ v: Interactions) -> (select: Interactions, heldOut: Interactions) {
        var a = Interactions(source: v.source), b = Interactions(source: v.source)
        for k in 0..<v.count {
            let h = (UInt64(bitPattern: v.users[k]) &* 0x9E37_79B9_7F4A_7C15) >> 63
            if h == 0 { a.users.append(v.users[k]); a.items.append(v.items[k]); a.ratings.append(v.ratings[k]) }
            else { b.users.append(v.users[k]); b.items.append(v.items[k]); b.ratings.append(v.ratings[k]) }
        }
        return (a, b)
    }
}
