import RecKitCore
import RecKitData

/// Where a trainer's batches come from: a shard directory (`ShardBatchSource`), batches in memory
/// (`InMemoryBatchSource`), or one rank's slice of another source (`RankSlicedSource`, data parallelism).
public protocol BatchSource: Sendable {
    /// Samples in one pass.
    var rowCount: Int { get }
    /// The batches of epoch `epoch` after skipping the first `skip` samples of its stream (resuming).
    func batches(epoch: Int, skip: Int) throws(TrainingError) -> any BatchStream
}

/// One pass over a source.
public protocol BatchStream: AnyObject {
    /// The next batch, nil at the end.
    func next() throws(TrainingError) -> Batch?
}

/// Rows `rows` (file order) of a shard dataset, in batches, shuffled within those rows by a buffer of
/// `shuffleBuffer` rows (seed + epoch), optionally RecD-deduplicated. The training split and the validation split are
/// two sources over disjoint row ranges, so no validation row can reach a training batch.
public struct ShardBatchSource: BatchSource {
    public let dataset: ShardDataset
    public let rows: Range<Int>
    public var batchSize: Int
    public var shuffleBuffer = 0
    public var seed: UInt64 = 0
    public var dedup = false

    public init(dataset: ShardDataset, rows: Range<Int>? = nil, batchSize: Int) {
        self.dataset = dataset
        self.rows = rows ?? 0..<dataset.manifest.rows
        self.batchSize = batchSize
    }

    public var rowCount: Int { rows.count }

    public func batches(epoch: Int, skip: Int) throws(TrainingError) -> any BatchStream {
        var lo = LoaderOptions(batchSize: batchSize)
        lo.shuffleBuffer = shuffleBuffer
        lo.seed = seed &+ UInt64(epoch)
        lo.dedup = dedup
        lo.rows = rows
        lo.skip = skip
        do throws(DataError) { return LoaderStream(try BatchLoader(dataset: dataset, options: lo)) } catch { throw .data(error) }
    }

    final class LoaderStream: BatchStream {
        let loader: BatchLoader
        init(_ l: BatchLoader) { loader = l }
        func next() throws(TrainingError) -> Batch? {
            if let b = loader.next() { return b }
            if let e = loader.error { throw .data(e) }
            return nil
        }
    }
}

/// Batches held in memory, the same every epoch (tests, small data, federated clients).
public struct InMemoryBatchSource: BatchSource {
    public let batches: [Batch]
    public init(_ batches: [Batch]) { self.batches = batches }
    public var rowCount: Int { batches.reduce(0) { $0 + $1.size } }

    public func batches(epoch: Int, skip: Int) throws(TrainingError) -> any BatchStream { Stream(batches, skip: skip) }

    final class Stream: BatchStream {
        var rest: ArraySlice<Batch>
        var skip: Int
        init(_ b: [Batch], skip: Int) { rest = b[...]; self.skip = skip }
        func next() throws(TrainingError) -> Batch? {
            while let b = rest.first {
                rest = rest.dropFirst()
                if skip >= b.size { skip -= b.size; continue }
                if skip > 0 {
                    let s = skip
                    skip = 0
                    return b.slice(s..<b.size, denseCount: b.size == 0 ? 0 : b.dense.count / b.size)
                }
                return b
            }
            return nil
        }
    }
}

/// Rank `rank` of `ranks`' share of each batch of `base` (data parallelism at a fixed global batch): samples
/// ⌊B·rank/ranks⌋ ..< ⌊B·(rank+1)/ranks⌋ of every global batch, so the ranks together see exactly the batches a
/// single process would.
public struct RankSlicedSource: BatchSource {
    public let base: any BatchSource
    public let rank: Int, ranks: Int
    public init(_ base: any BatchSource, rank: Int, of ranks: Int) { self.base = base; self.rank = rank; self.ranks = max(ranks, 1) }
    public var rowCount: Int { base.rowCount }

    public func batches(epoch: Int, skip: Int) throws(TrainingError) -> any BatchStream {
        Stream(try base.batches(epoch: epoch, skip: skip), rank: rank, ranks: ranks)
    }

    final class Stream: BatchStream {
        let base: any BatchStream
        let rank: Int, ranks: Int
        init(_ b: any BatchStream, rank: Int, ranks: Int) { base = b; self.rank = rank; self.ranks = ranks }
        func next() throws(TrainingError) -> Batch? {
            guard let b = try base.next() else { return nil }
            let n = b.size
            let lo = n * rank / ranks, hi = n * (rank + 1) / ranks
            var part = b.slice(lo..<hi, denseCount: n == 0 ? 0 : b.dense.count / n)
            part.globalSize = n
            return part
        }
    }
}

extension BatchSource {
    /// Rank `rank` of `ranks`' share of every batch.
    public func shard(rank: Int, of ranks: Int) -> RankSlicedSource { RankSlicedSource(self, rank: rank, of: ranks) }
}
