import ArgumentParser
import Foundation
import RecKitBenchmarks
import RecKitTiered

struct BenchTiered: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tiered",
        abstract: "DLRM with tables larger than its cache: tiered training vs the same model in RAM (where it fits), one run.")

    @Option(name: .customLong("table-gib"), help: "Rows + row-wise Adagrad state of the 26 Kaggle-shaped tables, GiB (default 8).")
    var tableGiB = 8.0

    @Option(name: .customLong("cache-mb"), help: "Cache for the tiered tables, MiB (default 2048).")
    var cacheMB = 2048

    @Option(name: .customLong("tier-dir"), help: "Directory for the tier files (default: the system's temporary directory).")
    var tierDirectory: String?

    @Option(name: .long, help: "Zipf exponent of the ids (default 1.05, like Criteo).")
    var zipf = 1.05

    @Option(name: .long, help: "Timed steps of batch 2048 (default 200).")
    var steps = 200

    @Option(name: .customLong("warmup-seconds"), help: "Longest warm-up before timing (until the cache is full; default 120).")
    var warmupSeconds = 120.0

    @Option(name: .customLong("cache-policy"), help: "Eviction: clock (default), lru, lfu.")
    var cachePolicy: CachePolicy = .clock

    @Option(name: .customLong("tier-io"), help: "uring (default) or pread.")
    var tierIO: TierIOEngine = .uring

    @Option(name: .long, help: "none (default) or stats: plan the placement from access counts of other batches first.")
    var placement = "none"

    @Option(name: .customLong("stats-batches"), help: "Batches of statistics counted for --placement stats (default 10,000, ~20M lookups per table; a day of Criteo has 45M).")
    var statsBatches = 10_000
    @Option(name: .customLong("pin-min-count"), help: "Rows seen fewer times in the statistics are never pinned (default \(TierPlanner.defaultMinimumCount)).")
    var pinMinCount = Int(TierPlanner.defaultMinimumCount)

    @Flag(name: .customLong("skip-in-ram"), help: "Do not run the in-RAM comparison.")
    var skipInRAM = false

    @OptionGroup var common: CommonOptions

    func run() throws {
        guard placement == "none" || placement == "stats" else { throw ValidationError("--placement must be none or stats") }
        var c = TieredBenchmark.Config(directory: tierDirectory ?? NSTemporaryDirectory())
        c.tableGiB = tableGiB; c.cacheMiB = cacheMB; c.zipf = zipf; c.steps = max(1, steps); c.warmupSeconds = warmupSeconds
        c.policy = cachePolicy; c.io = tierIO; c.placement = placement == "stats"; c.skipInRAM = skipInRAM; c.statsBatches = max(1, statsBatches); c.pinMinimumCount = UInt32(max(1, pinMinCount)); c.threads = common.resolvedThreads
        let log = CLILog.logger("reckit.bench")
        let r = try TieredBenchmark.run(c) { log.info("\($0)") }
        if common.json { try printJSON(r); return }
        print(String(format: "tables %.1f GiB, cache %d MiB (%@, %@): %.0f samples/s, hit rate %.4f; in RAM %@; ratio %@",
                     r.tableGiB, r.cacheMiB, r.policy, r.io, r.samplesPerSecond, r.hitRate,
                     r.inRAMSamplesPerSecond.map { String(format: "%.0f samples/s", $0) } ?? "n/a",
                     r.ratio.map { String(format: "%.3f", $0) } ?? "n/a"))
        print(String(format: "  peak RSS %.0f MiB; disk read %.1f MiB/s, written %.1f MiB/s; per step: ", r.peakRSSMiB, r.diskReadMiBs, r.diskWriteMiBs)
              + r.phaseMs.sorted { $0.key < $1.key }.map { String(format: "%@ %.2f ms", $0.key, $0.value) }.joined(separator: ", "))
        if let n = r.note { print("  note: \(n)") }
    }
}
