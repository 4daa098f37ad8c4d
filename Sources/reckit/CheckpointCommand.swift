import ArgumentParser
import Foundation
import RecKitCheckpoint
import RecKitCore

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Inspect or convert checkpoints.", subcommands: [CheckpointInspect.self, CheckpointConvert.self])
}

struct CheckpointInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Model kind, configuration, step, optimizers and every tensor (dtype, shape, bytes).")

    @Argument(help: "A checkpoint (.safetensors).")
    var path: String

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    struct Tensor: Encodable { var name: String; var dtype: String; var shape: [Int]; var bytes: Int }
    struct Report: Encodable {
        var path: String
        var model: String
        var config: JSONValue
        var step: Int
        var seed: UInt64
        var optimizer: String?
        var sparseOptimizer: String?
        var quantization: String?
        /// Where the tables lived when the checkpoint was written (tiered tables and their caches), nil: all in RAM.
        var storage: JSONValue?
        var bytes: Int
        var tensors: [Tensor]
        enum CodingKeys: String, CodingKey {
            case path, model, config, step, seed, optimizer, quantization, storage, bytes, tensors
            case sparseOptimizer = "sparse_optimizer"
        }
    }

    func run() throws {
        let reader: CheckpointReader
        do throws(CheckpointError) { reader = try Checkpoint.open(path) } catch { throw CLIError(message: error.description, code: 65) }
        let m = reader.metadata
        let tensors = reader.entries.sorted { $0.name < $1.name }.map { Tensor(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape, bytes: $0.byteCount) }
        let r = Report(path: path, model: m.model.rawValue, config: JSONValue(m.config), step: m.step, seed: m.seed,
                       optimizer: m.denseOptimizer?.kind, sparseOptimizer: m.sparseOptimizer?.kind, quantization: m.quantization?.rawValue,
                       storage: m.storage.map(JSONValue.init), bytes: reader.fileSize, tensors: tensors)
        if json { try printJSON(r); return }
        print("\(path): \(m.model.rawValue), step \(m.step), seed \(m.seed), \(reader.fileSize) bytes")
        print("config: \(String(decoding: m.config, as: UTF8.self))")
        print("optimizers: dense \(m.denseOptimizer?.kind ?? "none"), sparse \(m.sparseOptimizer?.kind ?? "none")\(m.quantization.map { "; tables quantized to \($0.rawValue)" } ?? "")")
        if let storage = m.storage { print("storage when written: \(String(decoding: storage, as: UTF8.self))") }
        for t in tensors {
            print("  " + t.name.padding(toLength: 44, withPad: " ", startingAt: 0) + t.dtype.padding(toLength: 5, withPad: " ", startingAt: 0)
                  + "[" + t.shape.map(String.init).joined(separator: ", ") + "]  \(t.bytes) bytes")
        }
    }
}

struct CheckpointConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert", abstract: "Convert a checkpoint of RecKit's first (positional) format to the safetensors format.")

    @Argument(help: "The old checkpoint.")
    var source: String

    @Argument(help: "The new checkpoint to write.")
    var destination: String

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run() throws {
        let r: LegacyCheckpoint.Report
        do throws(CheckpointError) { r = try LegacyCheckpoint.convert(from: source, to: destination) } catch {
            throw CLIError(message: error.description, code: 65)
        }
        if json { try printJSON(r); return }
        print("converted \(source) (\(r.model), \(r.tensors) tensors) to \(destination)")
    }
}

/// Arbitrary JSON (a checkpoint's configuration) re-encoded as itself.
struct JSONValue: Encodable {
    let value: Any?
    init(_ data: Data) { value = try? JSONSerialization.jsonObject(with: data) }
    init(any: Any?) { value = any }
    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch value {
        case let d as [String: Any]:
            var k = encoder.container(keyedBy: Key.self)
            for (key, v) in d { try k.encode(JSONValue(any: v), forKey: Key(key)) }
        case let a as [Any]:
            var u = encoder.unkeyedContainer()
            for v in a { try u.encode(JSONValue(any: v)) }
        case let n as NSNumber:
            if String(cString: n.objCType) == "c" || String(cString: n.objCType) == "B" { try c.encode(n.boolValue) }
            else if n.stringValue.contains(".") || n.stringValue.contains("e") { try c.encode(n.doubleValue) } else { try c.encode(n.int64Value) }
        case let s as String: try c.encode(s)
        default: try c.encodeNil()
        }
    }
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
