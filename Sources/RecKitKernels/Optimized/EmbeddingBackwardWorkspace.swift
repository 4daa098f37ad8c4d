import RecKitCore

/// Scratch memory for the fused embedding backward, reused across calls so a training step allocates nothing.
///
/// One partition per pool thread: the positions it owns and their bags, an open-addressing hash map row → slot,
/// the unique rows in first-occurrence order, and their aggregated gradients (slots × D). Buffers grow to the largest batch seen.
/// Not thread-safe: use one workspace per concurrently running backward call.
public final class EmbeddingBackwardWorkspace: @unchecked Sendable {
    final class Partition {
        var capacity = 0          // hash slots (power of two)
        var keys = AlignedBuffer<Int64>(count: 0)      // per hash slot h: [2h] row id (−1 = empty), [2h+1] its unique slot
        var rows = AlignedBuffer<Int64>(count: 0)      // unique rows, first-occurrence order
        var hashPos = AlignedBuffer<Int32>(count: 0)   // hash slot of each unique row (for clearing)
        var positions = AlignedBuffer<Int32>(count: 0) // owned positions, in order
        var bagOf = AlignedBuffer<Int32>(count: 0)     // the bag of each owned position
        var grads = AlignedBuffer<Float>(count: 0)     // unique × D aggregated gradients
        var gradCapacity = 0

        func reserve(indices n: Int, dim: Int) {
            var cap = 16
            while cap < 2 * max(n, 1) { cap <<= 1 }
            if cap > capacity {
                capacity = cap
                keys = AlignedBuffer<Int64>(count: 2 * cap)  // key and slot side by side: one cache line per probe
                keys.fill(-1)
            }
            if rows.count < n {
                rows = AlignedBuffer<Int64>(count: n); hashPos = AlignedBuffer<Int32>(count: n)
                positions = AlignedBuffer<Int32>(count: n); bagOf = AlignedBuffer<Int32>(count: n)
            }
            if gradCapacity < n * dim { gradCapacity = n * dim; grads = AlignedBuffer<Float>(count: n * dim) }
        }
    }

    private(set) var partitions: [Partition] = []

    public init() {}

    func prepare(partitions count: Int, indices n: Int, dim: Int) {
        while partitions.count < count { partitions.append(Partition()) }
        for p in partitions.prefix(count) { p.reserve(indices: n, dim: dim) }
    }
}
