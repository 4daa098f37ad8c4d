import Foundation
@testable import RecKitExperiments
import Testing

@Suite("TensorBoard event files: TFRecord framing, masked CRC-32C, Event protos")
struct TensorBoardEventTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let events: [TensorBoardEvent] = [
        TensorBoardEvent(wallTime: 1_700_000_000.5, step: 0, fileVersion: "brain.Event:2"),
        TensorBoardEvent(wallTime: 1_700_000_001.25, step: 7, scalars: [.init("train/loss", 0.4375), .init("train/learning_rate", 0.001)]),
        TensorBoardEvent(wallTime: 1_700_000_002.0, step: 300, scalars: [.init("validation/auc", 0.8125)]),
    ]

    @Test("CRC-32C check value and TFRecord's mask")
    func crc() {
        // CRC-32C("123456789") = 0xE3069283 (RFC 3720 check value); mask = ((c >> 15) | (c << 17)) + 0xa282ead8.
        let c: UInt32 = 0xE306_9283
        #expect(TFRecord.maskedCRC32C(Array("123456789".utf8)) == ((c >> 15) | (c << 17)) &+ 0xa282_ead8)
    }

    @Test("the same events framed byte for byte as TensorBoard's own RecordWriter wrote them (committed fixture)")
    func goldenBytes() throws {
        let golden = try [UInt8](Data(contentsOf: Self.fixtures.appendingPathComponent("events.golden")))
        let ours = Self.events.flatMap { TFRecord.frame($0.encoded) }
        #expect(ours == golden)
        let decoded = try TFRecord.records(golden, path: "events.golden").map { try TensorBoardEvent(decoding: $0, path: "events.golden") }
        #expect(decoded == Self.events)
    }

    @Test("a flipped byte or a truncated tail is an error naming the offset, never garbage")
    func corruption() throws {
        let golden = try [UInt8](Data(contentsOf: Self.fixtures.appendingPathComponent("events.golden")))
        for at in [3, 9, 20, golden.count - 2] {
            var bad = golden
            bad[at] ^= 0x40
            #expect(throws: ExperimentError.self) { try TFRecord.records(bad, path: "x") }
        }
        #expect(throws: ExperimentError.self) { try TFRecord.records(Array(golden.dropLast(5)), path: "x") }
        #expect(try TFRecord.records([], path: "x").isEmpty)
    }

    @Test("the writer appends whole records that read back; varints of large steps round-trip")
    func writerRoundTrip() throws {
        let dir = temporary("tb-writer")
        let w = try TensorBoardWriter(directory: dir, wallTime: 1_700_000_000)
        try w.scalars([.init("a", 1.5), .init("b", -2)], step: 1, wallTime: 1_700_000_001)
        try w.scalars([.init("a", 0.25)], step: 1 << 40, wallTime: 1_700_000_002)
        #expect(w.path.contains("events.out.tfevents.1700000000."))
        let back = try TensorBoardEvent.read(w.path)
        #expect(back.count == 3)
        #expect(back[0].fileVersion == "brain.Event:2")
        #expect(back[1].scalars == [.init("a", 1.5), .init("b", -2)] && back[1].step == 1)
        #expect(back[2].step == 1 << 40 && back[2].wallTime == 1_700_000_002)
    }

    @Test("Python's tensorboard event reader reads RecKit's file (skipped where tensorboard is not installed)")
    func pythonReader() throws {
        let python = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".venv-tools/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python), shell(python, ["-c", "import tensorboard"]).status == 0 else {
            print("SKIPPED: tensorboard (Python) not installed in .venv-tools; run scripts/test-tools.sh")
            return
        }
        let dir = temporary("tb-python")
        let w = try TensorBoardWriter(directory: dir, wallTime: 1_700_000_000)
        for s in 1...5 { try w.scalars([.init("train/loss", Float(s) / 8)], step: s * 10) }
        let script = """
        import sys
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        a = EventAccumulator(sys.argv[1]); a.Reload()
        print(",".join(f"{e.step}:{e.value}" for e in a.Scalars("train/loss")))
        """
        let r = shell(python, ["-c", script, dir])
        #expect(r.status == 0, "\(r.out)")
        #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == "10:0.125,20:0.25,30:0.375,40:0.5,50:0.625")
    }
}

func temporary(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reckit-exp-\(getpid())-\(name)").path
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Runs a program, returning its status and its stdout + stderr.
func shell(_ program: String, _ args: [String]) -> (status: Int32, out: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: program)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    do { try p.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
