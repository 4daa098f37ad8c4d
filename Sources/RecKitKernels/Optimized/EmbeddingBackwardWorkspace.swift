import RecKitCore

/// Scratch memory for the fused embedding backward, reused across calls so a training step allocates nothing.
///
/// One partition per pool thread: the positions it owns and their bags, an open-addressing hash map row → slot,
/// the unique rows in first-occurrence order, and their aggregated gradients (slots × D). Buffers grow to the largest batch seen.
/// Not thread-safe: use one workspace per concurrently running backward call.
public final class EmbeddingBackwardWorkspace: @unchecked Sendable {
    final class Partition {
        var capacity = 0          // hash slots (power of two)
        var keys32 = AlignedBuffer<UInt32>(count: 0)   // per hash slot h: [2h] row id (max = empty), [2h+1] its unique slot
        var keys64 = AlignedBuffer<UInt64>(count: 0)   // the same for tables of 2³² rows or more
        var rows = AlignedBuffer<Int64>(count: 0)      // unique rows, first-occurrence order
        var hashPos = AlignedBuffer<Int32>(count: 0)   // hash slot of each unique row (for clearing)
        var positions = AlignedBuffer<Int32>(count: 0) // owned positions, in order
        var bagOf = AlignedBuffer<Int32>(count: 0)     // the bag of each owned position
        var grads = AlignedBuffer<Float>(count: 0)     // unique × D aggregated gradients
        var gradCapacity = 0

        /// The compact map (key and slot side by side: one cache line per probe), all empty.
        func keys32(_: UInt32.Type) -> UnsafeMutablePointer<UInt32> {
            if keys32.count < 2 * capacity { keys32 = AlignedBuffer(count: 2 * capacity); keys32.fill(.max) }
            return keys32.pointer
        }

        /// The wide map, for tables of 2³² rows or more.
        func keys64(_: UInt64.Type) -> UnsafeMutablePointer<UInt64> {
            if keys64.count < 2 * capacity { keys64 = AlignedBuffer(count: 2 * capacity); keys64.fill(.max) }
            return keys64.pointer
        }

        func reserve(indices n: Int, dim: Int) {
            var cap = 16
            while cap < 2 * max(n, 1) { cap <<= 1 }
            if cap > capacity {
                capacity = cap
                keys32 = AlignedBuffer<UInt32>(count: 0)  // re-made at the new size on first use
                keys64 = AlignedBuffer<UInt64>(count: 0)
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
