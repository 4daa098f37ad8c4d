import RecKitCore
import RecKitKernels

/// One embedding configuration's result.
public struct EmbeddingBenchResult: Codable, Sendable {
    public var distribution: String
    public var pooling: Int
    public var lookupsPerIter: Int
    public var uniqueRowsPerIter: Int
    public var forwardMs: Double
    public var backwardMs: Double
    /// Row bytes gathered per second (lookups × D × 4).
    public var forwardGBps: Double
    /// Bytes the fused update must move per second: per unique row, read + write of the row and its
    /// row-wise Adagrad accumulator.
    public var backwardGBps: Double
    public var forwardRatio: Double
    public var backwardRatio: Double
    /// The same work as T separate per-table kernel calls (strided outputs), for comparison.
    public var perTableForwardMs: Double
    public var perTableBackwardMs: Double

    enum CodingKeys: String, CodingKey {
        case distribution, pooling
        case lookupsPerIter = "lookups_per_iter"
        case uniqueRowsPerIter = "unique_rows_per_iter"
        case forwardMs = "forward_ms"
        case backwardMs = "backward_ms"
        case forwardGBps = "forward_gbps"
        case backwardGBps = "backward_gbps"
        case forwardRatio = "forward_ratio"
        case backwardRatio = "backward_ratio"
        case perTableForwardMs = "per_table_forward_ms"
        case perTableBackwardMs = "per_table_backward_ms"
    }
}

/// Embedding-bag forward and fused row-wise-Adagrad backward over T tables (table-batched, and as T per-table
/// calls), against a plain random gather.
struct EmbeddingBench {
    let config: KernelBenchmark.Config
    let pool: ThreadPool
    let log: (String) -> Void

    struct Batch {
        var indices: [AlignedBuffer<Int64>]   // per table, B·P
        var offsets: AlignedBuffer<Int32>      // B + 1 (fixed pooling P)
        var unique: Int
    }

    func run() throws -> (gatherGBps: Double, configs: [EmbeddingBenchResult]) {
        let t = config.tables, rows = config.rowsPerTable, d = config.dim, b = config.batch
        log(String(format: "allocating %d tables × %d rows × %d (%.2f GB)", t, rows, d, Double(t * rows * d * 4) / 1e9))
        let tables = (0..<t).map { _ in AlignedBuffer<Float>(count: rows * d) }
        let states = (0..<t).map { _ in AlignedBuffer<Float>(count: rows) }
        pool.parallelFor(t) { i in
            var r = SeededRandom.stream(seed: config.seed, index: UInt64(i))
            let p = tables[i].pointer
            for j in 0..<(rows * d) { p[j] = (r.nextUniform() - 0.5) * 0.02 }
            states[i].fill(0)  // touch the accumulator pages, as a model in training has
        }
        let outputWidth = t * d
        let output = AlignedBuffer<Float>(count: b * outputWidth)
        var rng = SeededRandom(seed: config.seed ^ 0xE5)
        let grad = AlignedBuffer((0..<(b * outputWidth)).map { _ in (rng.nextUniform() - 0.5) * 1e-3 })
        let workspaces = (0..<t).map { _ in EmbeddingBackwardWorkspace() }
        let update = SparseUpdate(optimizer: .rowWiseAdagrad, learningRate: 0.01)

        var results: [EmbeddingBenchResult] = []
        var gatherGBps = Double.nan
        let zipf = ZipfSampler(n: rows, exponent: config.zipfExponent)  // alias tables built once
        for distribution in ["uniform", "zipf"] {
            for pooling in config.poolings {
                // Each iteration takes the next batch of a cycle long enough to touch ~8M rows (≫ the L3), so
                // repeated iterations do not find last iteration's rows in cache, as real training would not.
                let cycle = max(4, min(128, (8_000_000 + t * b * pooling - 1) / (t * b * pooling)))
                let batches = (0..<cycle).map { _ in makeBatch(distribution: distribution, pooling: pooling, zipf: zipf, rng: &rng) }
                let lookups = t * b * pooling
                if distribution == "uniform" && pooling == config.poolings.max() {
                    gatherGBps = gatherCeiling(tables: tables, batches: batches)
                    log(String(format: "random-row gather ceiling: %.2f GB/s", gatherGBps))
                }
                var failure: KernelError?
                var next = 0
                func nextBatch() -> Batch { defer { next += 1 }; return batches[next % cycle] }
                let stateBuffers = states.map(\.buffer)
                let view = MatrixView(base: output.pointer, rows: b, columns: outputWidth)
                let gradView = MatrixView(base: grad.pointer, rows: b, columns: outputWidth)
                let fwd = BenchTiming.measure(blocks: config.blocks) {
                    do throws(KernelError) {
                        try Kernels.tableBatchForward(tableBatch(nextBatch(), tables), mode: .sum, output: view, pool: pool)
                    } catch { failure = error }
                }
                let bwd = BenchTiming.measure(blocks: config.blocks) {
                    do throws(KernelError) {
                        try Kernels.tableBatchBackward(tableBatch(nextBatch(), tables), states: stateBuffers, mode: .sum,
                                                       gradOutput: gradView, update: update, workspace: workspaces[0], pool: pool)
                    } catch { failure = error }
                }
                let perTableFwd = BenchTiming.measure(blocks: config.blocks) {
                    let batch = nextBatch()
                    do throws(KernelError) {
                        for i in 0..<t {
                            try Kernels.embeddingBagForward(
                                table: EmbeddingTableView(weights: tables[i].pointer, rows: rows, dim: d),
                                bags: bags(batch, i), mode: .sum, output: view.columns(i * d, count: d), pool: pool)
                        }
                    } catch { failure = error }
                }
                let perTableBwd = BenchTiming.measure(blocks: config.blocks) {
                    let batch = nextBatch()
                    do throws(KernelError) {
                        for i in 0..<t {
                            try Kernels.embeddingBagBackward(
                                table: EmbeddingTableView(weights: tables[i].pointer, rows: rows, dim: d),
                                state: states[i].pointer, stateCount: rows, bags: bags(batch, i), mode: .sum,
                                gradOutput: gradView.columns(i * d, count: d), update: update, workspace: workspaces[i], pool: pool)
                        }
                    } catch { failure = error }
                }
                if let failure { throw failure }
                let fMs = BenchTiming.median(fwd), bMs = BenchTiming.median(bwd)
                let fGB = Double(lookups * d * 4) / fMs / 1e9
                let unique = batches.map(\.unique).reduce(0, +) / cycle
                let bGB = Double(unique * (2 * d * 4 + 2 * 4)) / bMs / 1e9
                results.append(EmbeddingBenchResult(
                    distribution: distribution, pooling: pooling, lookupsPerIter: lookups, uniqueRowsPerIter: unique,
                    forwardMs: fMs * 1e3, backwardMs: bMs * 1e3, forwardGBps: fGB, backwardGBps: bGB,
                    forwardRatio: .nan, backwardRatio: .nan,
                    perTableForwardMs: BenchTiming.median(perTableFwd) * 1e3, perTableBackwardMs: BenchTiming.median(perTableBwd) * 1e3))
                log(String(format: "embedding %@ P=%d: forward %.2f ms (%.2f GB/s), backward+rowwise Adagrad %.2f ms (%.2f GB/s, %d unique rows); per-table calls %.2f / %.2f ms",
                           distribution, pooling, fMs * 1e3, fGB, bMs * 1e3, bGB, unique,
                           results.last!.perTableForwardMs, results.last!.perTableBackwardMs))
            }
        }
        for i in results.indices {
            results[i].forwardRatio = results[i].forwardGBps / gatherGBps
            results[i].backwardRatio = results[i].backwardGBps / gatherGBps
        }
        return (gatherGBps, results)
    }

    func tableBatch(_ batch: Batch, _ tables: [AlignedBuffer<Float>]) -> TableBatch {
        TableBatch(tables: tables.map { EmbeddingTableView(weights: $0.pointer, rows: config.rowsPerTable, dim: config.dim) },
                   bags: (0..<config.tables).map { bags(batch, $0) },
                   columnOffsets: (0..<config.tables).map { $0 * config.dim })
    }

    func bags(_ batch: Batch, _ i: Int) -> JaggedBags {
        JaggedBags(indices: batch.indices[i].pointer, count: batch.indices[i].count, bagCount: config.batch,
                   boundaries: .offsets(batch.offsets.pointer))
    }

    func makeBatch(distribution: String, pooling: Int, zipf: ZipfSampler, rng: inout SeededRandom) -> Batch {
        let n = config.batch * pooling
        var unique = 0
        var idx: [AlignedBuffer<Int64>] = []
        for _ in 0..<config.tables {
            let buf = AlignedBuffer<Int64>(count: n)
            for p in 0..<n {
                buf.pointer[p] = Int64(distribution == "zipf" ? zipf.nextID(using: &rng) : rng.nextBelow(config.rowsPerTable))
            }
            unique += Set(buf.buffer).count
            idx.append(buf)
        }
        let offsets = AlignedBuffer((0...config.batch).map { Int32($0 * pooling) })
        return Batch(indices: idx, offsets: offsets, unique: unique)
    }

    /// The plain loop: Σ rows at each batch's (uniform) indices with SIMD16 loads into four independent
    /// accumulators (so the adds never limit the loads in flight), bags ignored, threads split the lookups.
    func gatherCeiling(tables: [AlignedBuffer<Float>], batches: [Batch]) -> Double {
        let d = config.dim, chunks = max(1, d / 16), n = batches[0].indices[0].count
        let sink = AlignedBuffer<Float>(count: 64 * 16)
        let lookups = config.tables * n
        let parts = ThreadPool.split(n, into: pool.threadCount)
        var next = 0
        let times = BenchTiming.measure(blocks: config.blocks) {
            let batch = batches[next % batches.count]
            next += 1
            pool.parallelFor(parts.count) { part in
                var a0 = SIMD16<Float>.zero, a1 = a0, a2 = a0, a3 = a0
                for i in 0..<config.tables {
                    let w = tables[i].pointer, ix = batch.indices[i].pointer
                    var p = parts[part].lowerBound
                    let end = parts[part].upperBound
                    while p + 4 <= end {
                        for c in 0..<chunks {
                            a0 += UnsafeRawPointer(w + Int(ix[p]) * d + c * 16).loadUnaligned(as: SIMD16<Float>.self)
                            a1 += UnsafeRawPointer(w + Int(ix[p + 1]) * d + c * 16).loadUnaligned(as: SIMD16<Float>.self)
                            a2 += UnsafeRawPointer(w + Int(ix[p + 2]) * d + c * 16).loadUnaligned(as: SIMD16<Float>.self)
                            a3 += UnsafeRawPointer(w + Int(ix[p + 3]) * d + c * 16).loadUnaligned(as: SIMD16<Float>.self)
                        }
                        p += 4
                    }
                    while p < end { a0 += UnsafeRawPointer(w + Int(ix[p]) * d).loadUnaligned(as: SIMD16<Float>.self); p += 1 }
                }
                sink.pointer[part * 16] = (a0 + a1 + a2 + a3).sum()
            }
        }
        return Double(lookups * d * 4) / BenchTiming.median(times) / 1e9
    }
}
