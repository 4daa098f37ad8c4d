import Foundation
import RecKitCheckpoint
import RecKitCore
import RecKitEmbeddings
import RecKitKernels
import RecKitModels
import RecKitTraining

/// Distributed checkpoints: one single-process file, each rank writing its own shards into it.
///
/// Rank 0 lays the file out (the header names every table with its global shape, as one process would), writes the
/// dense parameters, the optimizer moments and the vocabularies, and leaves each table's bytes as a hole
/// (`ExternalTensorBytes`). It then hands the temporary file's path and the tables' offsets to every rank
/// (`writeShards`, a broadcast); each rank `pwrite`s its shards' rows — a table- or row-wise shard is one contiguous
/// range per tensor, a column-wise shard one slice per row — and syncs them; the ranks agree that all succeeded;
/// rank 0 reads the holes back for their CRC-32C, completes the header, syncs and renames the file into place, and
/// tells the others (`checkpointCommitted`). Memory: no rank holds more than its shards (rank 0 streams the
/// checksums in 8 MiB chunks). The file needs a filesystem every rank sees (one host, or NFS/Lustre across hosts).
///
/// The one state that is not a disjoint piece of a table — row-wise Adagrad's per-row accumulator of a
/// column-wise table, which the single-process file holds once per row — is the width-weighted sum of the column
/// shards' accumulators (as `gatherTables` computes it), summed across the ranks with one allreduce of `rows`
/// floats and written by the owner of the table's first column shard.
extension DistributedTraining {
    /// Every table's weight (and sparse optimizer state) with its single-process name and global shape, bytes to be
    /// written by the shards' owners.
    public func checkpointTables(_ model: any CTRModel) -> [StateTensor] {
        var out: [StateTensor] = []
        for e in exchanges {
            for spec in e.specs {
                let name = e.prefix + "." + spec.name
                out.append(StateTensor(name: name + ".weight", dtype: .f32, shape: [spec.rows, spec.dim], role: .parameter, source: ExternalTensorBytes()))
                if let shape = model.sparseOptimizer?.stateShape(rows: spec.rows, dim: spec.dim) {
                    out.append(StateTensor(name: name + ".adagrad_sum", dtype: .f32, shape: shape, role: .optimizerState, source: ExternalTensorBytes()))
                }
            }
        }
        return out
    }

    public func writeShards(_ target: Result<(path: String, offsets: [String: Int]), CheckpointError>?, optimizer: SparseOptimizerKind?) throws(TrainingError) {
        // 1. Rank 0's hand-off: the temporary file and the offsets, or why there is none.
        var message: [UInt8] = []
        if rank == 0 {
            let payload: HandOff
            switch target {
            case .success(let t)?: payload = HandOff(path: t.path, offsets: t.offsets, error: nil)
            case .failure(let e)?: payload = HandOff(path: nil, offsets: [:], error: e.description)
            case nil: payload = HandOff(path: nil, offsets: [:], error: "rank 0 gave no checkpoint to write into")
            }
            message = Array((try? JSONEncoder().encode(payload)) ?? Data())
        }
        let received = try collective { () throws(CommError) in try comm.broadcast(message, root: 0) }
        guard let handOff = try? JSONDecoder().decode(HandOff.self, from: Data(received)), handOff.error == nil, let path = handOff.path else {
            let reason = (try? JSONDecoder().decode(HandOff.self, from: Data(received)))?.error ?? "an unreadable hand-off"
            if rank == 0, case .failure(let e)? = target { throw .checkpoint(e) }
            throw .checkpoint(.io(path: "", reason: "rank 0 could not lay out the checkpoint: \(reason)"))
        }
        // 2. Shared row-wise Adagrad state of column-wise tables (a collective every rank enters in table order).
        var pieces: [(offset: Int, bytes: UnsafeRawBufferPointer)] = []
        var summed: [AlignedBuffer<Float>] = []  // alive until the pieces pointing into them are written
        for e in exchanges {
            for (t, spec) in e.specs.enumerated() where optimizer == .rowWiseAdagrad {
                let shards = e.shards.filter { $0.table == t }
                guard shards.contains(where: { $0.kind == .columnWise }) else { continue }
                let state = AlignedBuffer<Float>(count: spec.rows)
                state.pointer.update(repeating: 0, count: spec.rows)
                for (i, s) in e.shards.enumerated() where s.table == t && s.rank == rank {
                    let st = localStorage(e, shard: i), weight = s.rowStateWeight(dim: spec.dim)
                    for (lr, row) in s.rows.enumerated() { state.pointer[row] += weight * st.state.pointer[lr] }
                }
                try collective { () throws(CommError) in
                    try comm.allreduceSum(UnsafeMutableBufferPointer(start: state.pointer, count: spec.rows), ordered: true)
                }
                let first = shards.first { $0.index == 0 }!
                if first.rank == rank, let o = handOff.offsets[e.prefix + "." + spec.name + ".adagrad_sum"] {
                    summed.append(state)
                    pieces.append((o, UnsafeRawBufferPointer(start: state.pointer, count: spec.rows * 4)))
                }
            }
        }
        // 3. This rank's pieces.
        var failure: CheckpointError?
        do throws(CheckpointError) {
            for e in exchanges {
                for (i, s) in e.shards.enumerated() where s.rank == rank {
                    let spec = e.specs[s.table], d = spec.dim, w = s.columns.count
                    let name = e.prefix + "." + spec.name
                    guard let weight = handOff.offsets[name + ".weight"] else { throw .tensor(path: path, name: name + ".weight", reason: "not in the hand-off") }
                    let st = localStorage(e, shard: i)
                    func place(_ base: Int, _ src: UnsafeMutablePointer<Float>) {
                        if w == d {
                            pieces.append((base + s.rows.lowerBound * d * 4, UnsafeRawBufferPointer(start: src, count: s.rows.count * d * 4)))
                        } else {
                            for (lr, row) in s.rows.enumerated() {
                                pieces.append((base + (row * d + s.columns.lowerBound) * 4, UnsafeRawBufferPointer(start: src + lr * w, count: w * 4)))
                            }
                        }
                    }
                    place(weight, st.weights.pointer)
                    switch optimizer {
                    case .adagrad?:
                        if let o = handOff.offsets[name + ".adagrad_sum"] { place(o, st.state.pointer) }
                    case .rowWiseAdagrad? where s.kind != .columnWise:
                        if let o = handOff.offsets[name + ".adagrad_sum"] {
                            pieces.append((o + s.rows.lowerBound * 4, UnsafeRawBufferPointer(start: st.state.pointer, count: s.rows.count * 4)))
                        }
                    default: break
                    }
                }
            }
            try withExtendedLifetime(summed) { () throws(CheckpointError) in try SafeTensors.writePieces(pieces, into: path) }
        } catch { failure = error }
        // 4. Every rank's shards are on disk, or every rank throws.
        let failed = try collective { () throws(CommError) in try comm.sum(failure == nil ? 0 : 1) }
        if let failure { throw .checkpoint(failure) }
        if failed > 0 { throw .checkpoint(.io(path: path, reason: "\(Int(failed)) rank(s) could not write their shards")) }
    }

    public func checkpointCommitted(_ ok: Bool) throws(TrainingError) {
        let flag = try collective { () throws(CommError) in try comm.broadcast([ok ? 1 : 0], root: 0) }
        guard flag == [1] else { throw .checkpoint(.io(path: "", reason: "rank 0 could not complete the checkpoint")) }
    }

    /// What rank 0 tells the others before they write.
    struct HandOff: Codable {
        var path: String?
        var offsets: [String: Int]
        var error: String?
    }
}
