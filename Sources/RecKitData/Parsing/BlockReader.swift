import Foundation

/// Cuts a file into blocks of whole lines (~4 MiB each) for parallel parsing, in bounded memory.
///
/// `next()` returns the next block's bytes (ending after a newline, except a final unterminated line), the
/// 1-based number of its first line, and whether it ends with an unterminated line. A line too long to fit the
/// window is returned as a `.tooLong` event and skipped.
public final class BlockReader {
    public enum Event {
        case block(bytes: [UInt8], firstLine: Int, unterminatedTail: Bool)
        case tooLong(line: Int)
    }

    public let path: String
    let fd: Int32
    let window: Int
    var buffer: [UInt8]
    var filled = 0
    var eof = false
    var nextLine = 1
    public private(set) var bytesRead = 0

    public init(path: String, blockBytes: Int = 4 << 20, maxLineBytes: Int) throws(DataError) {
        self.path = path
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .io(path: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        window = max(blockBytes, maxLineBytes + 1)
        buffer = [UInt8](repeating: 0, count: window)
    }

    deinit { close(fd) }

    public func next() throws(DataError) -> Event? {
        while true {
            // Fill the window.
            while !eof && filled < window {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, window - filled) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw .io(path: path, reason: "read failed: \(String(cString: strerror(errno)))")
                }
                if n == 0 { eof = true }
                filled += n
                bytesRead += n
            }
            if filled == 0 { return nil }
            let lastNewline: Int? = buffer.withUnsafeBufferPointer { b in
                var i = filled - 1
                while i >= 0 && b[i] != 0x0A { i -= 1 }
                return i >= 0 ? i : nil
            }
            if let last = lastNewline {
                let block = Array(buffer[0...last])
                let lines = block.withUnsafeBytes { Self.countNewlines($0) }
                let first = nextLine
                nextLine += lines
                shift(last + 1)
                return .block(bytes: block, firstLine: first, unterminatedTail: false)
            }
            if eof {
                let block = Array(buffer[0..<filled])
                let first = nextLine
                nextLine += 1
                filled = 0
                return .block(bytes: block, firstLine: first, unterminatedTail: true)
            }
            // A full window with no newline: the line is too long. Skip to its end.
            let line = nextLine
            nextLine += 1
            filled = 0
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, window) }
                if n < 0 { if errno == EINTR { continue }; throw .io(path: path, reason: "read failed") }
                if n == 0 { eof = true; break }
                bytesRead += n
                let nl: Int? = buffer.withUnsafeBufferPointer { b in b[0..<n].firstIndex(of: 0x0A) }
                if let nl {
                    buffer.withUnsafeMutableBytes { raw in _ = memmove(raw.baseAddress!, raw.baseAddress! + nl + 1, n - nl - 1) }
                    filled = n - nl - 1
                    break
                }
            }
            return .tooLong(line: line)
        }
    }

    private func shift(_ consumed: Int) {
        let rest = filled - consumed
        if rest > 0 { buffer.withUnsafeMutableBytes { raw in _ = memmove(raw.baseAddress!, raw.baseAddress! + consumed, rest) } }
        filled = rest
    }

    static func countNewlines(_ raw: UnsafeRawBufferPointer) -> Int {
        var count = 0
        var p = raw.baseAddress!
        let end = raw.baseAddress! + raw.count
        while p < end, let nl = memchr(p, 0x0A, end - p) {
            count += 1
            p = UnsafeRawPointer(nl) + 1
        }
        return count
    }
}
