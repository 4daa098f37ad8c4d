#if canImport(Glibc)
import Glibc
#endif

/// A fixed-size, 64-byte aligned, uninitialised-then-zeroed buffer of trivial elements that owns its memory.
///
/// The storage of every tensor-like thing in RecKit: parameters, activations, embedding tables, index arrays.
/// Allocated once and reused every step; kernels work on its `pointer` directly (no copy-on-write, no bounds
/// checks in hot loops). Cache-line alignment keeps SIMD loads of rows from splitting lines.
///
/// Thread safety: the class is `@unchecked Sendable` because kernels split the buffer into disjoint ranges
/// across threads; callers are responsible for not writing the same element from two threads.
///
/// ```swift
/// let w = AlignedBuffer<Float>(count: rows * dim)   // zero-filled
/// w.pointer[0] = 1
/// ```
///
/// Buffers of `hugePageThreshold` bytes or more (embedding tables, large activations) are mapped directly with
/// `mmap`, aligned to 2 MiB and advised `MADV_HUGEPAGE`: random row gathers over gigabytes otherwise miss the
/// TLB on nearly every access (measured: the random-gather rate rises markedly with transparent huge pages).
public final class AlignedBuffer<Element: BitwiseCopyable>: @unchecked Sendable {
    /// Alignment of every buffer in bytes (one x86 cache line, one AVX-512 register).
    public static var alignment: Int { 64 }
    /// Size from which buffers are mmap-ed on 2 MiB boundaries with huge pages requested.
    public static var hugePageThreshold: Int { 4 << 20 }
    static var hugePageSize: Int { 2 << 20 }

    /// Number of elements.
    public let count: Int
    /// Base address; valid for `count` elements while the buffer is alive.
    public let pointer: UnsafeMutablePointer<Element>
    /// The mapping to release for mmap-ed buffers (base, length); nil for heap buffers.
    private let mapping: (UnsafeMutableRawPointer, Int)?

    /// Allocates `count` elements, zero-filled.
    public init(count: Int) {
        precondition(count >= 0, "AlignedBuffer count must be non-negative")  // allowed: programmer error
        self.count = count
        let bytes = max(count * MemoryLayout<Element>.stride, 1)
        if bytes >= Self.hugePageThreshold, let (base, length, aligned) = Self.mapHuge(bytes) {
            mapping = (base, length)
            pointer = aligned.bindMemory(to: Element.self, capacity: count)  // mmap memory is already zero
        } else {
            mapping = nil
            let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.alignment)
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        }
    }

    /// Anonymous mapping of `bytes` rounded up, aligned to 2 MiB, with MADV_HUGEPAGE; nil if mmap fails.
    private static func mapHuge(_ bytes: Int) -> (UnsafeMutableRawPointer, Int, UnsafeMutableRawPointer)? {
        let huge = hugePageSize
        let length = (bytes + huge - 1) / huge * huge + huge
        guard let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              base != MAP_FAILED else { return nil }
        let aligned = UnsafeMutableRawPointer(bitPattern: (Int(bitPattern: base) + huge - 1) / huge * huge)!
        _ = madvise(aligned, length - huge, MADV_HUGEPAGE)
        return (base, length, aligned)
    }

    /// Allocates and copies `values`.
    public convenience init(_ values: [Element]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit {
        if let (base, length) = mapping { munmap(base, length) } else { UnsafeMutableRawPointer(pointer).deallocate() }
    }

    /// The elements as a buffer pointer (for `for`-loops and `Array(...)` in tests and cold code).
    public var buffer: UnsafeMutableBufferPointer<Element> { .init(start: pointer, count: count) }

    /// Sets every element to `value`.
    public func fill(_ value: Element) { pointer.update(repeating: value, count: count) }

    /// A copy of the contents as an array (tests, serialisation; not for hot paths).
    public func toArray() -> [Element] { Array(buffer) }

    /// Element access for cold code; bounds-checked.
    public subscript(i: Int) -> Element {
        get { precondition(i >= 0 && i < count, "index out of range"); return pointer[i] }  // allowed: programmer error
        set { precondition(i >= 0 && i < count, "index out of range"); pointer[i] = newValue }  // allowed: programmer error
    }
}
