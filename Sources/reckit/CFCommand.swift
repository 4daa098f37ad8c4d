import ArgumentParser
import Foundation
import RecKitCF
import RecKitKernels

struct CFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cf",
        abstract: "Collaborative filtering from implicit feedback: fit, evaluate, distill, compare model rankings.",
        subcommands: [CFFitCommand.self, CFEvalCommand.self, CFDistillCommand.self, CFRankModelsCommand.self])
}

extension CFModelKind: ExpressibleByArgument {}

/// Runs `body`; a CFError becomes a one-line CLI error (65 bad input, 66 unreadable, 70 numerical, 73 unwritable).
func onCFError<T>(_ body: () throws(CFError) -> T) throws -> T {
    do throws(CFError) { return try body() } catch {
        let code: Int32
        switch error {
        case .io(_, let reason) where reason.contains("write") || reason.contains("fsync") || reason.contains("rename") || reason.contains("create"): code = 73
        case .io: code = 66
        case .numerical, .linearAlgebraUnavailable: code = 70
        case .tooLarge: code = 75
        default: code = 65
        }
        throw CLIError(message: error.description, code: code)
    }
}

/// Options of the BPR-MF learner.
struct BPROptions: ParsableArguments {
    @Option(name: .customLong("bpr-dim"), help: "BPR-MF factor dimension (default 64).")
    var dimension = 64
    @Option(name: .customLong("bpr-epochs"), help: "BPR-MF epochs (default 30).")
    var epochs = 30
    @Option(name: .customLong("bpr-lr"), help: "BPR-MF SGD learning rate (default 0.05).")
    var learningRate: Float = 0.05
    @Option(name: .customLong("bpr-reg"), help: "BPR-MF L2 regularization (default 0.0025).")
    var regularization: Float = 0.0025
    @Option(name: .long, help: "Seed (BPR initialisation and sampling; data sampling).")
    var seed: UInt64 = 42

    var options: BPRModel.Options {
        var o = BPRModel.Options()
        o.dimension = dimension; o.epochs = epochs; o.learningRate = learningRate; o.regularization = regularization; o.seed = seed
        return o
    }
}

struct CFFitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Fit pop, EASE, ∞-AE or BPR-MF on interactions; --lambda auto searches λ on --valid (nDCG@10).")

    @Option(name: .long, help: "Model: pop, ease, infae, bpr.")
    var model: CFModelKind
    @Option(name: .long, help: "Training interactions: user item [rating [timestamp]] TSV/CSV, or a converted dataset directory.")
    var train: String
    @Option(name: .long, help: "Validation interactions (metrics at the end; required by --lambda auto).")
    var valid: String?
    @Option(name: .long, help: "Ridge λ (EASE: absolute, default 800; ∞-AE: times the mean kernel diagonal, default 5), or 'auto'.")
    var lambda: String?
    @Option(name: .long, parsing: .upToNextOption, help: "λ values for --lambda auto (default: a built-in grid per model).")
    var grid: [Float] = []
    @Flag(name: .long, help: "Use the rating column as each interaction's weight (a soft `cf distill --summary soft` summary); default: every interaction is 1.")
    var weighted = false
    @Option(name: .long, help: "Where to write the fitted model.")
    var output: String
    @Option(name: .customLong("on-error"), help: "Malformed rows: fail (stop at the first) or skip (count).")
    var onError: String = "fail"
    @OptionGroup var bpr: BPROptions
    @OptionGroup var common: CommonOptions
    @OptionGroup var carbon: CarbonOptions

    func run() throws {
        let log = CLILog.logger("reckit.cf")
        try CLILog.checkEnvironment(log)
        guard let policy = MalformedRowPolicy(rawValue: onError) else { throw ValidationError("--on-error must be fail or skip") }
        var o = CFFit.Options(kind: model)
        if let lambda {
            if lambda == "auto" { o.autoLambda = true } else if let v = Float(lambda), v.isFinite { o.lambda = v } else {
                throw ValidationError("--lambda must be a number or 'auto'")
            }
        }
        if !grid.isEmpty { o.grid = grid }
        o.bpr = bpr.options
        o.weighted = weighted
        let threads = common.resolvedThreads
        let run = try CarbonRun(command: "cf fit", model: model.rawValue, options: carbon, threads: threads)
        let report = try run.measure { try onCFError { () throws(CFError) in
            let events = try Interactions.read(train, policy: policy)
            let validation = try valid.map { v throws(CFError) in try Interactions.read(v, policy: policy) }
            let pool = ThreadPool(threads: threads)
            let algebra = try DenseAlgebra(threads: threads)
            let result = try CFFit.fit(train: events, valid: validation, options: o, algebra: algebra, pool: pool, logger: log)
            try CFModelFile.write(result.model, to: output)
            return result.report
        } }
        if common.json {
            try printJSON(WithPeakRSS(report))
        } else {
            var line = "fitted \(report.model) on \(report.users) users × \(report.items) items (\(report.interactions) interactions) in \(String(format: "%.2f", report.fitSeconds)) s"
            if let l = report.lambda { line += ", λ = \(l)" }
            print(line + " → \(output)")
            for p in report.search { print("  λ \(p.lambda): validation nDCG@10 \(String(format: "%.4f", p.ndcg10))") }
            if let v = report.validation { print("  validation: " + CFEvalCommand.summary(v)) }
        }
    }
}

struct CFEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Full-ranking evaluation (∞-AE protocol): context items excluded; nDCG/Recall/HR/PSP@K and AUC as fractions.")

    @Option(name: .long, help: "A model written by `reckit cf fit`.")
    var model: String
    @Option(name: .long, parsing: .upToNextOption, help: "Context interactions (train, plus validation when given): excluded from the ranking.")
    var context: [String]
    @Option(name: .long, help: "Test interactions: every event is a positive.")
    var test: String
    @Option(name: .long, help: "Cut-offs, comma-separated (default 10,20,100).")
    var k: String = "10,20,100"
    @OptionGroup var common: CommonOptions

    static func summary(_ r: RankingEvaluation.Result) -> String {
        let keys = r.metrics.keys.sorted { a, b in
            let (na, ka) = split(a), (nb, kb) = split(b)
            return na == nb ? ka < kb : na < nb
        }
        return keys.map { "\($0) \(String(format: "%.4f", r.metrics[$0]!))" }.joined(separator: "  ") + "  (\(r.users) users, \(r.items) items)"
    }

    static func split(_ key: String) -> (String, Int) {
        let parts = key.split(separator: "@")
        return (String(parts[0]), parts.count > 1 ? Int(parts[1]) ?? 0 : 0)
    }

    func run() throws {
        let log = CLILog.logger("reckit.cf")
        try CLILog.checkEnvironment(log)
        let ks = try k.split(separator: ",").map { s -> Int in
            guard let v = Int(s.trimmingCharacters(in: .whitespaces)), v > 0 else { throw ValidationError("--k must be positive integers, e.g. 10,20,100") }
            return v
        }
        guard !context.isEmpty else { throw ValidationError("--context needs at least one file") }
        let threads = common.resolvedThreads
        let result = try onCFError { () throws(CFError) in
            let fitted = try CFModelFile.read(model)
            let ctx = Interactions.concatenate(try context.map { c throws(CFError) in try Interactions.read(c) })
            let testEvents = try Interactions.read(test)
            return try RankingEvaluation.evaluate(model: fitted, context: ctx, test: testEvents, ks: ks, algebra: try DenseAlgebra(threads: threads),
                                                  pool: ThreadPool(threads: threads))
        }
        if common.json { try printJSON(result) } else { print(Self.summary(result)) }
    }
}
