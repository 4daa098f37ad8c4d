/// A raw pointer that may cross into the thread pool's closures.
///
/// Swift 6 refuses to capture `UnsafeMutablePointer` in concurrently executed closures. Kernels that split a
/// buffer into disjoint ranges per thread wrap the base pointer in this box; the disjointness is the kernel's
/// contract, documented at each use.
public struct SendablePointer<Pointee>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Pointee>
    @inlinable public init(_ base: UnsafeMutablePointer<Pointee>) { self.base = base }
    @inlinable public init(_ base: UnsafePointer<Pointee>) { self.base = UnsafeMutablePointer(mutating: base) }
}
