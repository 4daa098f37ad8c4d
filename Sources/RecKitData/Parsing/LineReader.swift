import Foundation

/// Streams the lines of a file in bounded memory (a 4 MiB window, whatever the file size).
///
/// Each line is handed over without its `\n` and without one trailing `\r` (CRLF tolerated). Lines longer than
/// `maxLineBytes` are reported as `.tooLong` (their content is not passed) and skipped; a last line without a
/// final newline is passed with `.unterminated`, so a parser can flag a truncated row.
public final class LineReader {
    public enum Status: Sendable { case complete, unterminated, tooLong }

    public let path: String
    public let maxLineBytes: Int
    public private(set) var bytesRead = 0

    public init(path: String, maxLineBytes: Int = 1 << 20) {
        self.path = path
        self.maxLineBytes = maxLineBytes
    }

    /// Calls `body(line, lineNumber, status)` for every line; `body` returns false to stop early.
    public func forEachLine(
        _ body: (UnsafeBufferPointer<UInt8>, Int, Status) throws(DataError) -> Bool
    ) throws(DataError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .io(path: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let window = max(4 << 20, maxLineBytes * 2)
        let buf = UnsafeMutablePointer<UInt8>.allocate(capacity: window)
        defer { buf.deallocate() }
        var filled = 0, lineNumber = 0
        var skippingLongLine = false
        while true {
            let n = read(fd, buf + filled, window - filled)
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, reason: "read failed: \(String(cString: strerror(errno)))")
            }
            bytesRead += n
            filled += n
            let eof = n == 0
            var start = 0
            while start < filled {
                guard let nl = memchr(buf + start, 0x0A, filled - start) else { break }
                let end = UnsafeMutableRawPointer(nl).assumingMemoryBound(to: UInt8.self) - buf
                if skippingLongLine {
                    skippingLongLine = false
                } else {
                    lineNumber += 1
                    var len = end - start
                    if len > 0 && buf[start + len - 1] == 0x0D { len -= 1 }
                    let status: Status = len > maxLineBytes ? .tooLong : .complete
                    if !(try body(UnsafeBufferPointer(start: buf + start, count: status == .tooLong ? 0 : len), lineNumber, status)) { return }
                }
                start = end + 1
            }
            // Keep the partial line; if it alone exceeds the limit, report it once and skip to its newline.
            let rest = filled - start
            if rest > maxLineBytes && !skippingLongLine {
                lineNumber += 1
                if !(try body(UnsafeBufferPointer(start: buf, count: 0), lineNumber, .tooLong)) { return }
                skippingLongLine = true
            }
            if skippingLongLine {
                filled = 0
            } else {
                if start > 0 && rest > 0 { memmove(buf, buf + start, rest) }
                filled = rest
            }
            if eof {
                if filled > 0 && !skippingLongLine {
                    lineNumber += 1
                    var len = filled
                    if buf[len - 1] == 0x0D { len -= 1 }
                    _ = try body(UnsafeBufferPointer(start: buf, count: len), lineNumber, .unterminated)
                }
                return
            }
        }
    }
}
