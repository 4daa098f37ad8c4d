#if canImport(Glibc)
import Glibc
#endif

/// Refuses a dense fit that cannot fit in this machine's memory, before allocating it.
public enum MemoryBudget {
    /// Physical memory in bytes (sysconf), or nil when unknown.
    public static var physicalBytes: Int? {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : nil
    }

    /// Throws `CFError.tooLarge` naming `what`, the bytes needed and the limit when `bytes` exceeds 90% of RAM
    /// (or `RECKIT_CF_MEMORY_BYTES` when set).
    public static func check(bytes: Int, what: String) throws(CFError) {
        var limit = physicalBytes.map { $0 / 10 * 9 }
        if let v = getenv("RECKIT_CF_MEMORY_BYTES"), let n = Int(String(cString: v)) { limit = n }
        if let limit, bytes > limit {
            throw .tooLarge("\(what) needs \(bytes / (1 << 20)) MiB of dense matrices, more than the \(limit / (1 << 20)) MiB allowed; "
                + "sample users (reckit data sample) or use a model that scales with items (ease) or nonzeros (bpr)")
        }
    }
}
