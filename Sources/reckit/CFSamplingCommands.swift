import ArgumentParser
import Foundation
import RecKitCF
import RecKitKernels

extension DatasetSampler.Strategy: ExpressibleByArgument {}

struct DataSampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Sample an interactions file to a fraction of its events (random, user, item, temporal, head-user, svp-cf, svp-cf-prop).")

    @Option(name: .long, help: "Strategy: \(DatasetSampler.Strategy.allCases.map(\.rawValue).joined(separator: ", ")).")
    var strategy: DatasetSampler.Strategy
    @Option(name: .long, help: "Fraction of the events to keep, in (0, 1].")
    var fraction: Double
    @Option(name: .long, help: "Interactions: user item [rating [timestamp]] TSV/CSV, or a converted dataset directory.")
    var input: String
    @Option(name: .long, help: "Output TSV (header user_id item_id rating [timestamp]).")
    var output: String
    @Option(name: .long, help: "Seed.")
    var seed: UInt64 = 42
    @Option(name: .customLong("proxy-epochs"), help: "SVP-CF proxy (BPR-MF) epochs (default 10).")
    var proxyEpochs = 10
    @Flag(name: .long, help: "Print one JSON object at the end.")
    var json = false

    struct Report: Encodable {
        var strategy: String
        var fraction: Double
        var inputInteractions: Int
        var outputInteractions: Int
        var users: Int
        var items: Int
        var output: String
        enum CodingKeys: String, CodingKey {
            case strategy, fraction, users, items, output
            case inputInteractions = "input_interactions"
            case outputInteractions = "output_interactions"
        }
    }

    func run() throws {
        let report = try onCFError { () throws(CFError) in
            let events = try Interactions.read(input)
            var proxy = DatasetSampler.ProxyOptions()
            proxy.epochs = max(1, proxyEpochs)
            let sampled = try DatasetSampler.sample(events, strategy: strategy, fraction: fraction, seed: seed, proxy: proxy)
            try sampled.writeTSV(to: output)
            return Report(strategy: strategy.rawValue, fraction: fraction, inputInteractions: events.count, outputInteractions: sampled.count,
                          users: Set(sampled.users).count, items: Set(sampled.items).count, output: output)
        }
        if json { try printJSON(report) } else {
            print("kept \(report.outputInteractions) of \(report.inputInteractions) interactions (\(report.users) users, \(report.items) items) → \(output)")
        }
    }
}

struct CFRankModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rank-models",
        abstract: "Fit models on full and sampled data, rank them by test nDCG@10, and report Kendall's τ between the rankings.")

    @Option(name: .long, help: "Full training interactions.")
    var train: String
    @Option(name: .long, help: "Test interactions (context, excluded from the ranking: the full training set, for both fits).")
    var test: String
    @Option(name: .long, help: "Sampled training interactions (from `reckit data sample`).")
    var sampled: String
    @Option(name: .long, help: "Models, comma-separated (default pop,bpr,ease,infae).")
    var models: String = "pop,bpr,ease,infae"
    @OptionGroup var bpr: BPROptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        let log = CLILog.logger("reckit.cf")
        try CLILog.checkEnvironment(log)
        let kinds = try models.split(separator: ",").map { s -> CFModelKind in
            guard let k = CFModelKind(rawValue: s.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown model '\(s)'; choose from \(CFModelKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return k
        }
        let threads = common.resolvedThreads
        let report = try onCFError { () throws(CFError) in
            var o = CFFit.Options(kind: .pop)
            o.bpr = bpr.options
            return try ModelRanking.run(train: try Interactions.read(train), sampled: try Interactions.read(sampled), test: try Interactions.read(test),
                                        models: kinds, options: o, algebra: try DenseAlgebra(threads: threads), pool: ThreadPool(threads: threads),
                                        logger: log)
        }
        if common.json { try printJSON(report) } else {
            print("model      full nDCG@10  sampled nDCG@10")
            for m in report.models {
                print(m.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: " %12.4f  %15.4f", report.full[m]!, report.sampled[m]!))
            }
            print("ranking on full data:    \(report.rankingFull.joined(separator: " > "))")
            print("ranking on sampled data: \(report.rankingSampled.joined(separator: " > "))")
            print("Kendall's τ: \(String(format: "%.3f", report.kendallTau))")
        }
    }
}
