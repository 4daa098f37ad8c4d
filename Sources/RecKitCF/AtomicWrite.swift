import Foundation
import RecKitData

/// Atomic file writes (temp file, fsync, rename) through RecKitData's `AtomicFile`, with CF errors.
enum AtomicWrite {
    static func write(_ data: Data, to path: String) throws(CFError) {
        do throws(DataError) { try AtomicFile.write(data, to: path) } catch { throw .io(path: path, reason: "\(error)") }
    }
}
