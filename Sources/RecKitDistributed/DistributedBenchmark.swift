import Foundation
import RecKitCore
import RecKitModels
import RecKitTraining

/// Times hybrid-parallel training steps on one rank of a group and gathers every rank's phases: what
/// `reckit bench train --distributed` reports, and what the planner's estimate is checked against.
public enum DistributedBenchmark {
    /// One rank's seconds per step by phase, and bytes it sent per step.
    public struct RankTimes: Codable, Sendable {
        public var rank: Int
        public var stepMs: Double
        /// Embedding lookups and fused updates on this rank's shards.
        public var lookupMs: Double
        /// Waiting in the embedding all-to-alls (counts, ids, pooled rows, gradients).
        public var allToAllMs: Double
        /// The dense-gradient allreduce and the loss reduction.
        public var allreduceMs: Double
        /// Everything else: MLPs, interaction, loss, optimizer, packing the exchanges' messages.
        public var denseMs: Double
        /// Reading this rank's share of the next batch (loader, slicing), inside the step time.
        public var loaderMs: Double
        /// The dense optimizer (and clipping), inside `denseMs`.
        public var optimizerMs: Double
        public var bytesSentPerStep: Double
        enum CodingKeys: String, CodingKey {
            case rank, stepMs = "step_ms", lookupMs = "lookup_ms", allToAllMs = "all_to_all_ms", allreduceMs = "allreduce_ms"
            case denseMs = "dense_ms", bytesSentPerStep = "bytes_sent_per_step", loaderMs = "loader_ms", optimizerMs = "optimizer_ms"
        }
    }

    public struct Result: Codable, Sendable {
        public var ranks: Int
        public var threadsPerRank: Int
        public var steps: Int
        public var globalBatch: Int
        public var samplesPerSecond: Double
        public var stepMs: Double
        public var perRank: [RankTimes]
        enum CodingKeys: String, CodingKey {
            case ranks, threadsPerRank = "threads_per_rank", steps, globalBatch = "global_batch", samplesPerSecond = "samples_per_s"
            case stepMs = "step_ms", perRank = "per_rank"
        }
    }

    /// Runs `warmup` then `steps` steps of `trainer` (already attached to `d`) on `source` (this rank's share,
    /// epochs repeated as needed) and gathers every rank's times. A collective: every rank gets the result.
    public static func run(_ trainer: Trainer, _ d: DistributedTraining, source: any BatchSource, steps: Int, warmup: Int = 3) throws -> Result {
        var stream = try source.batches(epoch: 0, skip: 0)
        var epoch = 0
        func next() throws -> Batch {
            while true {
                if let b = try stream.next(), (b.globalSize ?? b.size) > 0 { return b }
                epoch += 1
                stream = try source.batches(epoch: epoch, skip: 0)
            }
        }
        var globalBatch = 0
        for _ in 0..<warmup { let b = try next(); try trainer.step(b, epoch: 0); globalBatch = b.globalSize ?? b.size }
        let before = (lookup: d.lookupSeconds, comm: d.allToAllSeconds, ar: d.allreduceSeconds, bytes: d.bytesSent)
        var rows = 0
        var loading = 0.0
        trainer.timesPhases = true
        trainer.resetPhaseTimes()
        try d.comm.barrier()
        let t0 = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        for _ in 0..<steps {
            let l0 = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
            let b = try next()
            loading += Double(DispatchTime.now().uptimeNanoseconds) / 1e9 - l0
            try trainer.step(b, epoch: 0)
            rows += b.globalSize ?? b.size
        }
        try d.comm.barrier()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds) / 1e9 - t0
        let s = Double(max(steps, 1))
        let lookup = (d.lookupSeconds - before.lookup) / s
        let a2a = (d.allToAllSeconds - before.comm) / s
        let ar = (d.allreduceSeconds - before.ar) / s
        let bytes = Double(d.bytesSent - before.bytes) / s
        let optimizer = (trainer.phaseSeconds[.denseUpdate] ?? 0) / s
        let mine: [Float] = [Float(seconds / s), Float(lookup), Float(a2a), Float(ar), Float(bytes), Float(loading / s), Float(optimizer)]
        let all = try d.comm.allGather(mine)
        let per = (0..<d.comm.size).map { r -> RankTimes in
            let v = Array(all[r * 7 ..< r * 7 + 7]).map(Double.init)
            return RankTimes(rank: r, stepMs: v[0] * 1000, lookupMs: v[1] * 1000, allToAllMs: v[2] * 1000, allreduceMs: v[3] * 1000,
                             denseMs: max(0, v[0] - v[1] - v[2] - v[3] - v[5]) * 1000, loaderMs: v[5] * 1000,
                             optimizerMs: v[6] * 1000, bytesSentPerStep: v[4])
        }
        return Result(ranks: d.comm.size, threadsPerRank: trainer.pool.threadCount, steps: steps, globalBatch: globalBatch,
                      samplesPerSecond: Double(rows) / seconds, stepMs: seconds / s * 1000, perRank: per)
    }
}
