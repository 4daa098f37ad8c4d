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

/// A binary user × item matrix in CSR form: row u holds the distinct items of user u, sorted.
///
/// Shapes: `rowStart` [U+1], `columns` [nnz]. Repeated (user, item) events count once (the CF protocol treats
/// every interaction as one positive).
public struct InteractionMatrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public private(set) var rowStart: [Int]
    public private(set) var columnIndices: [Int32]
    /// Events dropped because their user or item is not in the maps.
    public private(set) var unmapped = 0

    public var nonZeros: Int { columnIndices.count }

    /// Builds the matrix of `events` over `users` × `items`.
    public init(_ events: Interactions, users: IDMap, items: IDMap) {
        rows = users.count; columns = items.count
        var perRow = [[Int32]](repeating: [], count: rows)
        var dropped = 0
        for k in 0..<events.count {
            guard let u = users[events.users[k]], let i = items[events.items[k]] else { dropped += 1; continue }
            perRow[Int(u)].append(i)
        }
        var start = [0]
        start.reserveCapacity(rows + 1)
        var cols: [Int32] = []
        cols.reserveCapacity(events.count)
        for var r in perRow {
            r.sort()
            var last: Int32 = -1
            for c in r where c != last { cols.append(c); last = c }
            start.append(cols.count)
        }
        rowStart = start; columnIndices = cols; unmapped = dropped
    }

    /// A matrix from CSR arrays (validated).
    public init(rows: Int, columns: Int, rowStart: [Int], columnIndices: [Int32]) throws(CFError) {
        guard rowStart.count == rows + 1, rowStart.first == 0, rowStart.last == columnIndices.count,
              zip(rowStart, rowStart.dropFirst()).allSatisfy({ $0 <= $1 }),
              columnIndices.allSatisfy({ $0 >= 0 && Int($0) < columns }) else {
            throw .invalidOptions("inconsistent CSR arrays (\(rows) rows, \(columns) columns, \(columnIndices.count) entries)")
        }
        self.rows = rows; self.columns = columns; self.rowStart = rowStart; self.columnIndices = columnIndices
    }

    /// The sorted items of row `r`.
    @inlinable public func row(_ r: Int) -> ArraySlice<Int32> { columnIndices[rowStart[r]..<rowStart[r + 1]] }

    public func rowCount(_ r: Int) -> Int { rowStart[r + 1] - rowStart[r] }

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

    /// Writes rows `range` as dense 0/1 floats into `out` [range.count × columns], row-major.
    public func densify(rows range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        out.initialize(repeating: 0, count: range.count * columns)
        for (k, r) in range.enumerated() {
            let base = out + k * columns
            for c in row(r) { base[Int(c)] = 1 }
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
        var start = [0], cols: [Int32] = []
        for r in indices { cols += row(r); start.append(cols.count) }
        return InteractionMatrix(unchecked: indices.count, columns: columns, rowStart: start, columnIndices: cols)
    }

    init(unchecked rows: Int, columns: Int, rowStart: [Int], columnIndices: [Int32]) {
        self.rows = rows; self.columns = columns; self.rowStart = rowStart; self.columnIndices = columnIndices
    }
}
