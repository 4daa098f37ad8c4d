/// T embedding tables looked up for one batch of B samples in a single call (FBGEMM's "table-batched
/// embedding"): table t's pooled vectors land in columns `columnOffsets[t] ..< columnOffsets[t] + D_t` of a
/// B × W output, W ≥ Σ D_t. One parallel region for all tables, and each sample's output row is written (and
/// its gradient row read) contiguously, instead of T strided passes.
public struct TableBatch: @unchecked Sendable {
    public var tables: [EmbeddingTableView]
    /// One jagged batch per table, all with the same `bagCount` B.
    public var bags: [JaggedBags]
    /// First output column of each table.
    public var columnOffsets: [Int]

    public init(tables: [EmbeddingTableView], bags: [JaggedBags], columnOffsets: [Int]) {
        self.tables = tables
        self.bags = bags
        self.columnOffsets = columnOffsets
    }

    /// B.
    public var bagCount: Int { bags.first?.bagCount ?? 0 }

    /// Checks the table/bag/column layout against an output (or gradient) of `output.columns` columns.
    public func validateLayout(_ output: MatrixView) throws(KernelError) {
        guard tables.count == bags.count, tables.count == columnOffsets.count else {
            throw .shapeMismatch("table batch: \(tables.count) tables, \(bags.count) bag sets, \(columnOffsets.count) offsets")
        }
        for t in 0..<tables.count {
            guard bags[t].bagCount == bagCount else {
                throw .inTable(t, .shapeMismatch("\(bags[t].bagCount) bags, expected \(bagCount)"))
            }
            guard tables[t].dim >= 1, columnOffsets[t] >= 0, columnOffsets[t] + tables[t].dim <= output.columns else {
                throw .inTable(t, .shapeMismatch("columns \(columnOffsets[t])..<\(columnOffsets[t] + tables[t].dim) outside \(output.columns)"))
            }
        }
        guard output.rows >= bagCount else { throw .shapeMismatch("output has \(output.rows) rows, need \(bagCount)") }
    }

    /// Validates every table's boundaries and indices; throws the first problem (table order, then position).
    public func validateAll() throws(KernelError) {
        for t in 0..<tables.count {
            do throws(KernelError) { try BagValidation.validate(bags[t], rows: tables[t].rows) } catch { throw .inTable(t, error) }
        }
    }

    /// Per table, the B + 1 offsets (resolving the lengths form), as one flat array [T][B + 1].
    func resolvedOffsets() -> [Int32] {
        let b = bagCount
        var all = [Int32](repeating: 0, count: tables.count * (b + 1))
        all.withUnsafeMutableBufferPointer { buf in
            for t in 0..<tables.count { BagValidation.resolveOffsets(bags[t], into: buf.baseAddress! + t * (b + 1)) }
        }
        return all
    }
}
