/// Checks a jagged batch against a table, and resolves bag boundaries. Shared by the reference and optimized
/// embedding-bag kernels so both report the same error: the first problem in position order.
public enum BagValidation {
    /// Validates boundaries (offsets or lengths) and every index; throws the first problem found.
    public static func validate(_ bags: JaggedBags, rows: Int) throws(KernelError) {
        try validateBoundaries(bags)
        for p in 0..<bags.count {
            let i = Int(bags.indices[p])
            if i < 0 || i >= rows { throw .indexOutOfRange(position: p, index: i, rows: rows) }
        }
    }

    /// Validates only the boundaries: O(B).
    public static func validateBoundaries(_ bags: JaggedBags) throws(KernelError) {
        guard bags.count >= 0, bags.bagCount >= 0 else { throw .shapeMismatch("negative bag or index count") }
        switch bags.boundaries {
        case .offsets(let offsets):
            guard offsets[0] == 0 else { throw .offsetsMismatch(bag: 0, detail: "offsets[0] = \(offsets[0]), expected 0") }
            for b in 0..<bags.bagCount where offsets[b + 1] < offsets[b] {
                throw .offsetsMismatch(bag: b, detail: "offsets decrease from \(offsets[b]) to \(offsets[b + 1])")
            }
            let last = Int(offsets[bags.bagCount])
            guard last == bags.count else {
                throw .offsetsMismatch(bag: bags.bagCount, detail: "last offset \(last) ≠ \(bags.count) indices")
            }
        case .lengths(let lengths):
            var sum = 0
            for b in 0..<bags.bagCount {
                let l = Int(lengths[b])
                if l < 0 { throw .negativeLength(bag: b, length: l) }
                sum += l
            }
            guard sum == bags.count else { throw .lengthsSumMismatch(sum: sum, count: bags.count) }
        }
    }

    /// Writes the B + 1 offsets of a validated batch into `offsets` (a no-op copy for the offsets form).
    public static func resolveOffsets(_ bags: JaggedBags, into offsets: UnsafeMutablePointer<Int32>) {
        switch bags.boundaries {
        case .offsets(let o):
            offsets.update(from: o, count: bags.bagCount + 1)
        case .lengths(let l):
            var run: Int32 = 0
            offsets[0] = 0
            for b in 0..<bags.bagCount {
                run += l[b]
                offsets[b + 1] = run
            }
        }
    }

    /// The pooling scale of a bag of `length` rows: 1 for sum, 1/length for mean (0 for an empty bag).
    @inline(__always) public static func scale(_ mode: PoolingMode, length: Int) -> Float {
        switch mode {
        case .sum: return 1
        case .mean: return length > 0 ? 1 / Float(length) : 0
        }
    }
}
