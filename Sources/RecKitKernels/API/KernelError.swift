/// Why a kernel refused its input. Every case names the offending position so callers can map it back to a
/// feature, a batch row or a file line. Reference and optimized variants throw identical errors (they share
/// `BagValidation`), so tests compare errors as well as results.
public enum KernelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `indices[position] = index` is outside `0..<rows` of the table.
    case indexOutOfRange(position: Int, index: Int, rows: Int)
    /// `lengths[bag]` is negative.
    case negativeLength(bag: Int, length: Int)
    /// Offsets are malformed: `offsets[0] ≠ 0`, decreasing at `bag`, or the last offset ≠ number of indices.
    case offsetsMismatch(bag: Int, detail: String)
    /// Lengths sum to `sum`, but `count` indices were given.
    case lengthsSumMismatch(sum: Int, count: Int)
    /// A buffer or dimension does not fit the declared shapes.
    case shapeMismatch(String)
    /// `error` occurred in table `table` of a table-batched call.
    indirect case inTable(Int, KernelError)
    /// The optimizer needs a state buffer of `expected` floats; a buffer of another size (or none) was given.
    case optimizerStateMismatch(expected: Int, got: Int)

    public var description: String {
        switch self {
        case let .indexOutOfRange(position, index, rows):
            return "index \(index) at position \(position) is out of range 0..<\(rows)"
        case let .negativeLength(bag, length):
            return "bag \(bag) has negative length \(length)"
        case let .offsetsMismatch(bag, detail):
            return "offsets are malformed at bag \(bag): \(detail)"
        case let .lengthsSumMismatch(sum, count):
            return "lengths sum to \(sum) but \(count) indices were given"
        case let .shapeMismatch(detail):
            return "shape mismatch: \(detail)"
        case let .inTable(table, error):
            return "table \(table): \(error)"
        case let .optimizerStateMismatch(expected, got):
            return "optimizer state has \(got) floats, expected \(expected)"
        }
    }
}
