import Foundation
import RecKitData

extension Interactions {
    /// Parses `user item [rating [timestamp]]` lines (TAB or comma separated, chosen from the first line; an
    /// optional header is a first line not starting with a digit; CRLF accepted).
    static func readText(_ path: String, policy: MalformedRowPolicy) throws(CFError) -> Interactions {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read file") }
        let bytes = [UInt8](data)
        var out = Interactions(source: path)
        var times: [Int64] = []
        var sawTimestamp = false
        let n = bytes.count
        var pos = 0, line = 0
        var separator: UInt8 = 9
        while pos < n {
            var end = pos
            while end < n && bytes[end] != 10 { end += 1 }
            var stop = end
            if stop > pos && bytes[stop - 1] == 13 { stop -= 1 }
            line += 1
            let lineStart = pos
            pos = end + 1
            if stop == lineStart { continue }  // blank line
            if line == 1 {
                separator = bytes[lineStart..<stop].contains(9) ? 9 : UInt8(ascii: ",")
                let c = bytes[lineStart]
                if !(c >= 48 && c <= 57) && c != UInt8(ascii: "-") { continue }  // header
            }
            do {
                let row = try parseRow(bytes, lineStart, stop, separator, path, line)
                out.users.append(row.0); out.items.append(row.1); out.ratings.append(row.2); times.append(row.3 ?? 0)
                if row.3 != nil { sawTimestamp = true }
            } catch {
                if policy == .fail { throw error }
                out.skippedRows += 1
            }
        }
        if sawTimestamp { out.timestamps = times }
        return out
    }

    /// One `user item [rating [timestamp]]` line [start, stop) of `b`.
    static func parseRow(_ b: [UInt8], _ start: Int, _ stop: Int, _ separator: UInt8, _ path: String,
                         _ line: Int) throws(CFError) -> (Int64, Int64, Float, Int64?) {
        var fields: [(Int, Int)] = []
        var from = start
        var k = start
        while k <= stop {
            if k == stop || b[k] == separator { fields.append((from, k)); from = k + 1 }
            k += 1
        }
        guard fields.count >= 2 else { throw .malformedRow(file: path, line: line, column: 1, reason: "expected user and item, found 1 field") }
        guard fields.count <= 4 else { throw .malformedRow(file: path, line: line, column: fields[4].0 - start + 1, reason: "more than 4 fields") }
        let user = try id(b, fields[0], path, line, start, "user")
        let item = try id(b, fields[1], path, line, start, "item")
        var rating: Float = 1
        if fields.count >= 3 {
            guard let r = Float(text(b, fields[2])), r.isFinite else {
                throw .malformedRow(file: path, line: line, column: fields[2].0 - start + 1, reason: "rating '\(text(b, fields[2]))' is not a finite number")
            }
            rating = r
        }
        var t: Int64? = nil
        if fields.count == 4 {
            guard let v = Int64(text(b, fields[3])) else {
                throw .malformedRow(file: path, line: line, column: fields[3].0 - start + 1, reason: "timestamp '\(text(b, fields[3]))' is not an integer")
            }
            t = v
        }
        return (user, item, rating, t)
    }

    static func text(_ b: [UInt8], _ f: (Int, Int)) -> String { String(decoding: b[f.0..<f.1], as: UTF8.self) }

    /// The raw id of a token by `InteractionsFormat.rawID` (the rule the shard converter uses).
    static func id(_ b: [UInt8], _ f: (Int, Int), _ path: String, _ line: Int, _ lineStart: Int,
                   _ name: String) throws(CFError) -> Int64 {
        guard f.1 > f.0 else { throw .malformedRow(file: path, line: line, column: f.0 - lineStart + 1, reason: "\(name) is empty") }
        return b.withUnsafeBufferPointer { Int64(bitPattern: InteractionsFormat.rawID($0.baseAddress! + f.0, f.1 - f.0)) }
    }

    /// Writes the events as TSV with a header (`user_id item_id rating [timestamp]`), atomically (temp file,
    /// fsync, rename).
    public func writeTSV(to path: String) throws(CFError) {
        var text = timestamps == nil ? "user_id\titem_id\trating\n" : "user_id\titem_id\trating\ttimestamp\n"
        text.reserveCapacity(count * 20)
        for k in 0..<count {
            let r = ratings[k]
            let rs = r == r.rounded() && abs(r) < 1e9 ? String(Int(r)) : String(r)
            text += "\(users[k])\t\(items[k])\t\(rs)"
            if let timestamps { text += "\t\(timestamps[k])" }
            text += "\n"
        }
        try AtomicWrite.write(Data(text.utf8), to: path)
    }
}
