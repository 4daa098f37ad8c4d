import CRecKitShims
import Foundation

/// TensorBoard event files, written by RecKit itself (no TensorFlow): TFRecord framing of serialized `Event`
/// protocol buffers with scalar summaries, so `tensorboard --logdir runs` shows RecKit's curves.
///
/// TFRecord framing of one record (all little-endian):
///
///     uint64 length | uint32 masked_crc32c(length's 8 bytes) | payload[length] | uint32 masked_crc32c(payload)
///
/// masked_crc32c(x) = ((c >> 15) | (c << 17)) + 0xa282ead8 with c = CRC-32C (Castagnoli) of x.
///
/// The payload is `tensorflow.Event` (event.proto): wall_time = 1 (double), step = 2 (int64), file_version = 3
/// (string, "brain.Event:2" in the first record), summary = 5 (`Summary`: repeated `Value` = 1, each with
/// tag = 1 (string) and simple_value = 2 (float)). Only these fields are written; the reader skips others.
public enum TFRecord {
    /// CRC-32C masked as TFRecord stores it.
    public static func maskedCRC32C(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let c = reckit_crc32c(0, bytes.baseAddress, bytes.count)
        return ((c >> 15) | (c << 17)) &+ 0xa282_ead8
    }

    public static func maskedCRC32C(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { maskedCRC32C($0) } }

    /// `payload` framed as one record.
    public static func frame(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 16)
        let length = withUnsafeBytes(of: UInt64(payload.count).littleEndian, Array.init)
        out += length
        out += withUnsafeBytes(of: maskedCRC32C(length).littleEndian, Array.init)
        out += payload
        out += withUnsafeBytes(of: maskedCRC32C(payload).littleEndian, Array.init)
        return out
    }

    /// The payloads of every record in `bytes`, checking both CRCs of each; a truncated last record (a writer
    /// that stopped mid-record) is an error naming its offset.
    public static func records(_ bytes: [UInt8], path: String) throws(ExperimentError) -> [[UInt8]] {
        var out: [[UInt8]] = [], at = 0
        func u32(_ i: Int) -> UInt32 { UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24 }
        while at < bytes.count {
            guard bytes.count - at >= 12 else { throw .malformed(path: path, line: nil, reason: "truncated record header at byte \(at)") }
            var length: UInt64 = 0
            for k in 0..<8 { length |= UInt64(bytes[at + k]) << (8 * UInt64(k)) }
            guard maskedCRC32C(Array(bytes[at..<at + 8])) == u32(at + 8) else {
                throw .malformed(path: path, line: nil, reason: "length CRC mismatch at byte \(at)")
            }
            guard length <= UInt64(bytes.count - at - 16) else { throw .malformed(path: path, line: nil, reason: "truncated record at byte \(at)") }
            let start = at + 12, end = start + Int(length)
            let payload = Array(bytes[start..<end])
            guard maskedCRC32C(payload) == u32(end) else { throw .malformed(path: path, line: nil, reason: "payload CRC mismatch at byte \(at)") }
            out.append(payload)
            at = end + 4
        }
        return out
    }
}

/// One `tensorflow.Event` as RecKit writes and reads it.
public struct TensorBoardEvent: Sendable, Equatable {
    public var wallTime: Double
    public var step: Int64
    public var fileVersion: String?
    /// Scalar summaries (tag, simple_value), in order.
    public var scalars: [Scalar]

    public struct Scalar: Sendable, Equatable {
        public var tag: String
        public var value: Float
        public init(_ tag: String, _ value: Float) { self.tag = tag; self.value = value }
    }

    public init(wallTime: Double, step: Int64, fileVersion: String? = nil, scalars: [Scalar] = []) {
        self.wallTime = wallTime; self.step = step; self.fileVersion = fileVersion; self.scalars = scalars
    }

    /// The serialized protocol buffer.
    public var encoded: [UInt8] {
        // proto3: fields at their default (0) are not written.
        var out: [UInt8] = []
        if wallTime != 0 {
            out.append(0x09)  // field 1, wire type 1 (64-bit)
            out += withUnsafeBytes(of: wallTime.bitPattern.littleEndian, Array.init)
        }
        if step != 0 {
            out.append(0x10)  // field 2, varint
            Protobuf.varint(UInt64(bitPattern: step), into: &out)
        }
        if let fileVersion { Protobuf.bytes(field: 3, Array(fileVersion.utf8), into: &out) }
        if !scalars.isEmpty {
            var summary: [UInt8] = []
            for s in scalars {
                var value: [UInt8] = []
                Protobuf.bytes(field: 1, Array(s.tag.utf8), into: &value)
                value.append(0x15)  // field 2, wire type 5 (32-bit)
                value += withUnsafeBytes(of: s.value.bitPattern.littleEndian, Array.init)
                Protobuf.bytes(field: 1, value, into: &summary)
            }
            Protobuf.bytes(field: 5, summary, into: &out)
        }
        return out
    }

    /// Parses an Event payload (fields other than the ones above are skipped).
    public init(decoding payload: [UInt8], path: String) throws(ExperimentError) {
        self.init(wallTime: 0, step: 0)
        var r = Protobuf.Reader(bytes: payload[...], path: path)
        while let (field, wire) = try r.key() {
            switch (field, wire) {
            case (1, 1): wallTime = Double(bitPattern: try r.fixed64())
            case (2, 0): step = Int64(bitPattern: try r.varint())
            case (3, 2): fileVersion = String(decoding: try r.lengthDelimited(), as: UTF8.self)
            case (5, 2):
                var summary = Protobuf.Reader(bytes: try r.lengthDelimited(), path: path)
                while let (f, w) = try summary.key() {
                    guard f == 1, w == 2 else { try summary.skip(wire: w); continue }
                    var value = Protobuf.Reader(bytes: try summary.lengthDelimited(), path: path)
                    var scalar = Scalar("", .nan)
                    while let (vf, vw) = try value.key() {
                        switch (vf, vw) {
                        case (1, 2): scalar.tag = String(decoding: try value.lengthDelimited(), as: UTF8.self)
                        case (2, 5): scalar.value = Float(bitPattern: try value.fixed32())
                        default: try value.skip(wire: vw)
                        }
                    }
                    scalars.append(scalar)
                }
            default: try r.skip(wire: wire)
            }
        }
    }

    /// Every event of an event file, CRCs checked.
    public static func read(_ path: String) throws(ExperimentError) -> [TensorBoardEvent] {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read") }
        var out: [TensorBoardEvent] = []
        for payload in try TFRecord.records(Array(data), path: path) { out.append(try TensorBoardEvent(decoding: payload, path: path)) }
        return out
    }
}

/// Appends scalar events to a new event file `events.out.tfevents.<unix seconds>.<host>.<pid>[.<k>]` in a directory.
/// Each event is one `write(2)` of a whole framed record, so a crash leaves a readable prefix.
public final class TensorBoardWriter {
    private let file: AppendOnlyFile
    public var path: String { file.path }

    public init(directory: String, wallTime: Double = Date().timeIntervalSince1970) throws(ExperimentError) {
        let host = Provenance.hostName.replacingOccurrences(of: "/", with: "_")
        // A second writer in the same second and process (a resumed leg) gets the next suffix.
        file = try AppendOnlyFile(creatingNew: "\(directory)/events.out.tfevents.\(Int(wallTime)).\(host.isEmpty ? "localhost" : host).\(getpid())")
        try append(TensorBoardEvent(wallTime: wallTime, step: 0, fileVersion: "brain.Event:2"))
    }

    public func append(_ event: TensorBoardEvent) throws(ExperimentError) { try file.append(TFRecord.frame(event.encoded)) }

    public func scalars(_ values: [TensorBoardEvent.Scalar], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws(ExperimentError) {
        try append(TensorBoardEvent(wallTime: wallTime, step: Int64(step), scalars: values))
    }
}

/// The few protocol-buffer wire rules the event files need.
enum Protobuf {
    static func varint(_ v: UInt64, into out: inout [UInt8]) {
        var v = v
        while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    static func bytes(field: Int, _ payload: [UInt8], into out: inout [UInt8]) {
        varint(UInt64(field << 3 | 2), into: &out)
        varint(UInt64(payload.count), into: &out)
        out += payload
    }

    struct Reader {
        var bytes: ArraySlice<UInt8>
        let path: String

        mutating func byte() throws(ExperimentError) -> UInt8 {
            guard let b = bytes.popFirst() else { throw .malformed(path: path, line: nil, reason: "truncated protocol buffer") }
            return b
        }

        mutating func varint() throws(ExperimentError) -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                let b = try byte()
                guard shift < 64 else { throw .malformed(path: path, line: nil, reason: "varint too long") }
                v |= UInt64(b & 0x7f) << shift
                if b < 0x80 { return v }
                shift += 7
            }
        }

        /// The next field number and wire type, or nil at the end.
        mutating func key() throws(ExperimentError) -> (Int, Int)? {
            guard !bytes.isEmpty else { return nil }
            let k = try varint()
            return (Int(k >> 3), Int(k & 7))
        }

        mutating func fixed64() throws(ExperimentError) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(try byte()) << (8 * UInt64(k)) }
            return v
        }

        mutating func fixed32() throws(ExperimentError) -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<4 { v |= UInt32(try byte()) << (8 * UInt32(k)) }
            return v
        }

        mutating func lengthDelimited() throws(ExperimentError) -> ArraySlice<UInt8> {
            let n = Int(try varint())
            guard n <= bytes.count else { throw .malformed(path: path, line: nil, reason: "truncated protocol buffer field") }
            let out = bytes.prefix(n)
            bytes = bytes.dropFirst(n)
            return out
        }

        mutating func skip(wire: Int) throws(ExperimentError) {
            switch wire {
            case 0: _ = try varint()
            case 1: _ = try fixed64()
            case 2: _ = try lengthDelimited()
            case 5: _ = try fixed32()
            default: throw .malformed(path: path, line: nil, reason: "unsupported wire type \(wire)")
            }
        }
    }
}
