/// A dense numbering of raw ids: `ids[k]` is the raw id of index k, ids sorted ascending (so the numbering
/// does not depend on file order).
public struct IDMap: Sendable, Equatable {
    public private(set) var ids: [Int64]
    private var index: [Int64: Int32]

    public init(_ raw: some Sequence<Int64>) {
        ids = Array(Set(raw)).sorted()
        index = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, Int32($0)) })
    }

    public var count: Int { ids.count }
    public subscript(raw: Int64) -> Int32? { index[raw] }
}

/// A user × item matrix in CSR form: row u holds the distinct items of user u, sorted.
///
/// Shapes: `rowStart` [U+1], `columns` [nnz], `values` [nnz] or nil. Binary by default: repeated (user, item)
/// events count once and every entry is 1 (the CF protocol treats every interaction as one positive). A weighted
/// matrix (`weighted: true`, or a soft Distill-CF summary) keeps one value per entry (the largest rating of a
/// repeated pair); kernels and Gram matrices then see x_ui = value, and ‖x_u‖² = Σᵢ x_ui² (`rowNorm`).
public struct InteractionMatrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public private(set) var rowStart: [Int]
    public private(set) var columnIndices: [Int32]
    /// Per-entry values aligned with `columnIndices`, or nil when every entry is 1.
    public private(set) var values: [Float]?
    /// Events dropped because their user or item is not in the maps.
    public private(set) var unmapped = 0

    public var nonZeros: Int { columnIndices.count }

    /// Builds the matrix of `events` over `users` × `items`; with `weighted`, each entry's value is its rating (the
    /// largest, when a pair repeats), otherwise 1.
    public init(_ events: Interactions, users: IDMap, items: IDMap, weighted: Bool = false) {
        rows = users.count; columns = items.count
        var perRow = [[(item: Int32, value: Float)]](repeating: [], count: rows)
        var dropped = 0
        for k in 0..<events.count {
            guard let u = users[events.users[k]], let i = items[events.items[k]] else { dropped += 1; continue }
            perRow[Int(u)].append((i, weighted ? events.ratings[k] : 1))
        }
        var start = [0]
        start.reserveCapacity(rows + 1)
        var cols: [Int32] = [], vals: [Float] = []
        cols.reserveCapacity(events.count)
        for var r in perRow {
            r.sort { $0.item < $1.item || ($0.item == $1.item && $0.value > $1.value) }
            var last: Int32 = -1
            for e in r where e.item != last { cols.append(e.item); vals.append(e.value); last = e.item }
            start.append(cols.count)
        }
        rowStart = start; columnIndices = cols; values = weighted ? vals : nil; unmapped = dropped
    }

    /// A matrix from CSR arrays (validated; `values`, when given, one finite value per entry).
    public init(rows: Int, columns: Int, rowStart: [Int], columnIndices: [Int32], values: [Float]? = nil) throws(CFError) {
        guard rowStart.count == rows + 1, rowStart.first == 0, rowStart.last == columnIndices.count,
              zip(rowStart, rowStart.dropFirst()).allSatisfy({ $0 <= $1 }),
              columnIndices.allSatisfy({ $0 >= 0 && Int($0) < columns }) else {
            throw .invalidOptions("inconsistent CSR arrays (\(rows) rows, \(columns) columns, \(columnIndices.count) entries)")
        }
        if let values {
            guard values.count == columnIndices.count, values.allSatisfy({ $0.isFinite }) else {
                throw .invalidOptions("CSR values: \(values.count) values for \(columnIndices.count) entries, or a non-finite value")
            }
        }
        self.rows = rows; self.columns = columns; self.rowStart = rowStart; self.columnIndices = columnIndices; self.values = values
    }

    /// The sorted items of row `r`.
    @inlinable public func row(_ r: Int) -> ArraySlice<Int32> { columnIndices[entries(r)] }

    public func rowCount(_ r: Int) -> Int { rowStart[r + 1] - rowStart[r] }

    /// Row `r`'s positions in `columnIndices` (and `values`).
    @inlinable public func entries(_ r: Int) -> Range<Int> { rowStart[r]..<rowStart[r + 1] }

    /// ‖x_r‖², the squared norm of row `r` (its item count when binary).
    public func rowNorm(_ r: Int) -> Float {
        guard let values else { return Float(rowCount(r)) }
        var t: Float = 0
        for k in entries(r) { t += values[k] * values[k] }
        return t
    }

    /// The position of (r, c) in `columnIndices` (CSR order), or nil when row `r` does not contain `c` (binary search).
    public func position(_ r: Int, _ c: Int32) -> Int? {
        var lo = rowStart[r], hi = rowStart[r + 1]
        while lo < hi {
            let mid = (lo + hi) / 2
            if columnIndices[mid] < c { lo = mid + 1 } else { hi = mid }
        }
        return lo < rowStart[r + 1] && columnIndices[lo] == c ? lo : nil
    }

    /// Whether row `r` contains item `c`.
    public func contains(_ r: Int, _ c: Int32) -> Bool { position(r, c) != nil }

    /// Writes rows `range` densely into `out` [range.count × columns], row-major (0/1, or the values).
    public func densify(rows range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        out.initialize(repeating: 0, count: range.count * columns)
        for (k, r) in range.enumerated() {
            let base = out + k * columns
            if let values {
                for p in entries(r) { base[Int(columnIndices[p])] = values[p] }
            } else {
                for c in row(r) { base[Int(c)] = 1 }
            }
        }
    }

    /// Per-column counts (item popularity) [columns].
    public func columnCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: columns)
        for c in columnIndices { counts[Int(c)] += 1 }
        return counts
    }

    /// The rows at `indices`, renumbered 0..<indices.count.
    public func selectRows(_ indices: [Int]) -> InteractionMatrix {
        var start = [0], cols: [Int32] = [], vals: [Float] = []
        for r in indices {
            cols += row(r); start.append(cols.count)
            if let values { vals += values[entries(r)] }
        }
        return InteractionMatrix(unchecked: indices.count, columns: columns, rowStart: start, columnIndices: cols, values: values == nil ? nil : vals)
    }

    init(unchecked rows: Int, columns: Int, rowStart: [Int], columnIndices: [Int32], values: [Float]? = nil) {
        self.rows = rows; self.columns = columns; self.rowStart = rowStart; self.columnIndices = columnIndices; self.values = values
    }
}
