import RecKitCore
import RecKitKernels

/// A batch's sparse features copied into preallocated per-table buffers (no allocation per step), seen by the
/// embedding kernels as one `JaggedBags` per table. Shared by every model that looks up embeddings.
final class SparseInput: @unchecked Sendable {
    let indices: [AlignedBuffer<Int32>]   // per table, ≤ maxIndicesPerTable ids
    let offsets: [AlignedBuffer<Int32>]   // per table, B + 1
    let weights: [AlignedBuffer<Float>]   // per table, per-id weights when the feature has them
    private var hasWeights: [Bool]
    private(set) var batchSize = 0

    init(tables: Int, maxBatch: Int, maxIndicesPerTable: Int) {
        indices = (0..<tables).map { _ in AlignedBuffer(count: maxIndicesPerTable) }
        offsets = (0..<tables).map { _ in AlignedBuffer(count: maxBatch + 1) }
        weights = (0..<tables).map { _ in AlignedBuffer(count: maxIndicesPerTable) }
        hasWeights = Array(repeating: false, count: tables)
    }

    /// Copies `sparse` (one key per table, B ≤ maxBatch samples checked by the caller).
    func load(_ sparse: KeyedJaggedTensor) throws(KernelError) {
        let b = sparse.batchSize
        for t in 0..<indices.count {
            guard sparse.values[t].count <= indices[t].count else { throw .inTable(t, .shapeMismatch("more ids than maxIndicesPerTable")) }
            sparse.values[t].withUnsafeBufferPointer { if let p = $0.baseAddress { indices[t].pointer.update(from: p, count: $0.count) } }
            sparse.offsets[t].withUnsafeBufferPointer { offsets[t].pointer.update(from: $0.baseAddress!, count: b + 1) }
            hasWeights[t] = !sparse.weights[t].isEmpty
            if hasWeights[t] { sparse.weights[t].withUnsafeBufferPointer { weights[t].pointer.update(from: $0.baseAddress!, count: $0.count) } }
        }
        batchSize = b
    }

    /// The loaded bags of table `t`.
    func bags(_ t: Int) -> JaggedBags {
        JaggedBags(indices: indices[t].pointer, count: Int(offsets[t].pointer[batchSize]), bagCount: batchSize,
                   boundaries: .offsets(offsets[t].pointer), weights: hasWeights[t] ? weights[t].pointer : nil)
    }

    /// All tables' bags for the table-batched kernels.
    func tableBatch(_ tables: [EmbeddingTableView], columnOffsets: [Int]) -> TableBatch {
        TableBatch(tables: tables, bags: tables.indices.map { bags($0) }, columnOffsets: columnOffsets)
    }
}
