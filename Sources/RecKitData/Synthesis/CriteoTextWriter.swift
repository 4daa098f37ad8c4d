import Foundation
import RecKitCore

/// Writes Criteo-format TSV text (label, 13 integers, 26 8-digit hex ids; ~8% empty fields) of about `bytes`
/// bytes: the input of `reckit bench data`, so the benchmark needs no downloaded data. Deterministic per seed.
public enum CriteoTextWriter {
    public static func write(to path: String, bytes target: Int, seed: UInt64) throws(DataError) {
        guard let file = FileHandle(forWritingAtPath: path) ?? {
            FileManager.default.createFile(atPath: path, contents: nil)
            return FileHandle(forWritingAtPath: path)
        }() else { throw .io(path: path, reason: "cannot create") }
        defer { try? file.close() }
        var rng = SeededRandom(seed: seed)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var chunk = [UInt8]()
        chunk.reserveCapacity(1 << 22)
        var written = 0
        var digits: [UInt8] = []
        let zipf = ZipfSampler(n: 1 << 20, exponent: 1.05)
        while written < target {
            chunk.removeAll(keepingCapacity: true)
            while chunk.count < (1 << 22) - 512 {
                chunk.append(rng.nextBelow(4) == 0 ? 49 : 48)
                for _ in 0..<13 {
                    chunk.append(9)
                    if rng.nextBelow(12) == 0 { continue }
                    var v = rng.nextBelow(rng.nextBelow(3) == 0 ? 5000 : 30) - (rng.nextBelow(50) == 0 ? 3 : 0)
                    if v < 0 { chunk.append(45); v = -v }
                    digits.removeAll(keepingCapacity: true)
                    repeat { digits.append(UInt8(48 + v % 10)); v /= 10 } while v > 0
                    chunk.append(contentsOf: digits.reversed())
                }
                for f in 0..<26 {
                    chunk.append(9)
                    if rng.nextBelow(12) == 0 { continue }
                    var h = UInt32(truncatingIfNeeded: zipf.nextID(using: &rng) &* 2_654_435_761 &+ f &* 97)
                    for _ in 0..<8 { chunk.append(hex[Int(h >> 28)]); h <<= 4 }
                }
                chunk.append(10)
            }
            do { try file.write(contentsOf: chunk) } catch { throw .io(path: path, reason: "write failed: \(error)") }
            written += chunk.count
        }
    }
}
