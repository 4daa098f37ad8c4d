import ArgumentParser
import Foundation
import RecKitTiered

extension CachePolicy: ExpressibleByArgument {}
extension TierIOEngine: ExpressibleByArgument {}

/// Flags of commands that can keep tables larger than RAM in files behind a cache (`train`, `bench tiered`).
struct TierFlags: ParsableArguments {
    @Option(name: .customLong("tier-dir"), help: "Keep large embedding tables in files in this directory, hot rows cached in RAM (needs --cache-mb).")
    var tierDirectory: String?

    @Option(name: .customLong("cache-mb"), help: "RAM for cached rows of tiered tables, MiB (tables kept whole in RAM count against it).")
    var cacheMB: Int?

    @Option(name: .customLong("cache-policy"), help: "Eviction: clock (default), lru, lfu.")
    var cachePolicy: CachePolicy = .clock

    @Option(name: .customLong("tier-io"), help: "Tier I/O: uring (default; falls back to pread where io_uring is refused) or pread.")
    var tierIO: TierIOEngine = .uring

    @Option(name: .long, help: "A placement from `reckit plan tiering` (tables kept in RAM, cache sizes, pinned hot rows).")
    var placement: String?

    @Option(name: .customLong("tier-min-table-mb"), help: "Tables smaller than this stay wholly in RAM (default 64).")
    var minimumTableMB: Int?

    /// The tiering asked for, nil without --tier-dir.
    func options() throws -> TierOptions? {
        guard let dir = tierDirectory else {
            if cacheMB != nil || placement != nil { throw ValidationError("--cache-mb and --placement need --tier-dir") }
            return nil
        }
        guard let mb = cacheMB, mb > 0 else { throw ValidationError("--tier-dir needs --cache-mb N (RAM for cached rows, MiB)") }
        var o = TierOptions(directory: dir, cacheBytes: mb << 20)
        o.policy = cachePolicy
        o.io = tierIO
        if let m = minimumTableMB { o.minimumTableBytes = max(0, m) << 20 }
        if let placement {
            do { o.placement = try TierPlacement.load(placement) } catch {
                throw CLIError(message: "\(placement): \(error)", code: 65)
            }
        }
        return o
    }
}
