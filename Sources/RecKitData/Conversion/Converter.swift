import Foundation

/// Options of `reckit data convert`.
public struct ConvertOptions: Sendable {
    public var format: InputFormat
    public var inputs: [String]
    public var output: String
    public var onError: ErrorPolicy = .skip
    /// Hash categoricals modulo this size instead of building a vocabulary.
    public var maxIndRange: Int?
    /// Vocabulary minimum count (default 1: every id seen gets a row).
    public var minCount: Int?
    public var shardRows = 1 << 20
    public var maxLineBytes = 1 << 20

    public init(format: InputFormat, inputs: [String], output: String) {
        self.format = format; self.inputs = inputs; self.output = output
    }
}

/// The JSON `reckit data convert --json` prints.
public struct ConvertReport: Codable, Sendable {
    public var rows: Int
    public var skipped: Int
    public var bytesIn: Int
    public var seconds: Double
    /// The first 10 malformed rows (file, line, column, reason).
    public var errors: [RowIssue]
    public var shards: Int
    public var output: String
    public var mbPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case rows, skipped, seconds, errors, shards, output
        case bytesIn = "bytes_in"
        case mbPerSecond = "mb_per_s"
    }
}

/// Progress of a conversion: bytes done of total, for rate and ETA.
public struct ConvertProgress: Sendable {
    public var pass: Int
    public var bytesDone: Int
    public var bytesTotal: Int
    public var rows: Int
    public var seconds: Double
}

/// Streams text inputs into a shard dataset in bounded memory: one shard of `shardRows` rows in memory at a
/// time (plus the vocabularies in vocabulary mode, which need a first pass over the inputs).
public enum Converter {
    public static func run(_ o: ConvertOptions, progress: ((ConvertProgress) -> Void)? = nil) throws(DataError) -> ConvertReport {
        let t0 = Date()
        guard !o.inputs.isEmpty else { throw .invalidOptions("no input files") }
        if let m = o.maxIndRange, m < 1 { throw .invalidOptions("--max-ind-range must be ≥ 1") }
        if let k = o.minCount, k < 1 { throw .invalidOptions("--min-count must be ≥ 1") }
        if o.maxIndRange != nil && o.minCount != nil { throw .invalidOptions("use either --max-ind-range (hashing) or --min-count (vocabulary), not both") }
        var totalBytes = 0
        for path in o.inputs {
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: path), let size = attrs[.size] as? Int else {
                throw .io(path: path, reason: "no such file")
            }
            totalBytes += size
        }
        do { try FileManager.default.createDirectory(atPath: o.output, withIntermediateDirectories: true) } catch {
            throw .io(path: o.output, reason: "cannot create output directory: \(error.localizedDescription)")
        }
        var format = try makeFormat(o)
        try primeHeader(&format, o)
        let categoricalCount = format.categoricalNames.count + (format.multiHotName == nil ? 0 : 1)
        let mode: CategoricalEncoder.Mode = o.maxIndRange.map { .hash(modulo: $0) } ?? .vocabulary(minCount: o.minCount ?? 1)
        let encoder = CategoricalEncoder(mode: mode, featureCount: categoricalCount)
        var issues = IssueLog(policy: o.onError)

        if case .vocabulary = mode {
            var seen = 0
            try scan(o, &format, pass: 1, totalBytes: totalBytes, t0: t0, progress: progress, issues: nil) { row in
                for (f, k) in row.categorical.enumerated() { encoder.observe(f, k) }
                for (k, _) in row.multi { encoder.observe(categoricalCount - 1, k) }
                seen += 1
            }
            encoder.finalize()
        }
        let schema = makeSchema(format, encoder: encoder, o: o)
        var cols = ShardColumns(denseCount: format.denseNames.count, sparseCount: categoricalCount)
        var shards: [Manifest.Shard] = []
        var rows = 0
        func flush() throws(DataError) {
            if cols.rowCount == 0 { return }
            let name = String(format: "shard-%05d.rks", shards.count)
            let path = o.output + "/" + name
            try ShardFile.write(cols, schema: schema, to: path)
            let bytes = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
            shards.append(.init(file: name, rows: cols.rowCount, bytes: bytes))
            cols.removeAll()
        }
        let multiFeature = format.multiHotName == nil ? nil : categoricalCount - 1
        var flushError: DataError?
        try scan(o, &format, pass: 2, totalBytes: totalBytes, t0: t0, progress: progress, issues: &issues) { row in
            if schema.hasLabel { cols.labels.append(row.label) }
            for v in row.dense { cols.dense.append(PreprocessingSpec.transformDense(v)) }
            for (f, k) in row.categorical.enumerated() { cols.ids[f].append(encoder.encode(f, k)) }
            if let mf = multiFeature {
                cols.lengths[mf].append(Int32(row.multi.count))
                for (k, w) in row.multi { cols.ids[mf].append(encoder.encode(mf, k)); cols.weights[mf].append(w) }
            }
            if schema.hasTimestamps { cols.timestamps.append(row.timestamp) }
            cols.commitRow()
            rows += 1
            if cols.rowCount >= o.shardRows {
                do throws(DataError) { try flush() } catch { flushError = error }
            }
        }
        if let flushError { throw flushError }
        try flush()
        guard rows > 0 else {
            throw .emptyInput(path: o.inputs.joined(separator: ", "),
                              reason: "no valid rows (\(issues.skipped) malformed)\(issues.first.map { "; first: \($0)" } ?? "")")
        }
        if case .vocabulary = mode { try encoder.writeVocabulary(to: o.output) }
        try Manifest(schema: schema, shards: shards).write(to: o.output)
        let seconds = Date().timeIntervalSince(t0)
        return ConvertReport(rows: rows, skipped: issues.skipped, bytesIn: totalBytes, seconds: seconds,
                             errors: issues.firstTen, shards: shards.count, output: o.output,
                             mbPerSecond: Double(totalBytes) / 1e6 / max(seconds, 1e-9))
    }

    static func makeFormat(_ o: ConvertOptions) throws(DataError) -> any RowFormat {
        switch o.format {
        case .criteo: return CriteoFormat()
        case .avazu: return AvazuFormat()
        case .interactions: return InteractionsFormat()
        case .libfm: return LibFMFormat(fixedFields: try LibFMLayout.scan(o.inputs, maxLineBytes: o.maxLineBytes))
        }
    }

    /// Shows the format the first line of the first non-empty input, so formats whose columns come from a header
    /// (Avazu) know them before the schema is built.
    static func primeHeader(_ format: inout any RowFormat, _ o: ConvertOptions) throws(DataError) {
        for path in o.inputs {
            var firstLine: [UInt8]?
            let reader = LineReader(path: path, maxLineBytes: o.maxLineBytes)
            try reader.forEachLine { (line, _, status) throws(DataError) in
                if status != .tooLong { firstLine = Array(line) }
                return false
            }
            if let firstLine {
                _ = try firstLine.withUnsafeBufferPointer { (b) throws(DataError) in try format.header(b, file: path) }
                return
            }
        }
    }

    static func makeSchema(_ f: any RowFormat, encoder: CategoricalEncoder, o: ConvertOptions) -> DatasetSchema {
        let cards = encoder.cardinalities
        var sparse = f.categoricalNames.enumerated().map { SparseFeature(name: $0.element, cardinality: cards[$0.offset]) }
        if let m = f.multiHotName { sparse.append(SparseFeature(name: m, cardinality: cards.last!, multiHot: true, weighted: true)) }
        let cat: PreprocessingSpec.Categorical
        switch encoder.mode {
        case .hash(let m): cat = .hash(modulo: m)
        case .vocabulary(let k): cat = .vocabulary(minCount: k, sizes: cards)
        }
        return DatasetSchema(source: f.name, hasLabel: f.hasLabel, denseNames: f.denseNames, sparse: sparse,
                             hasTimestamps: f.hasTimestamps,
                             preprocessing: PreprocessingSpec(categorical: cat, rawIDs: f.rawIDs))
    }

    /// One pass over all inputs: parses every line, reports malformed rows to `issues` (pass 2) and hands good
    /// rows to `body`.
    static func scan(_ o: ConvertOptions, _ format: inout any RowFormat, pass: Int, totalBytes: Int, t0: Date,
                     progress: ((ConvertProgress) -> Void)?, issues: UnsafeMutablePointer<IssueLog>?,
                     _ body: (RawRow) -> Void) throws(DataError) {
        try withUnsafeMutablePointer(to: &format) { (fp) throws(DataError) in
            var row = RawRow()
            var bytesBefore = 0
            var rows = 0
            var lastReport = Date()
            let checkUTF8 = o.format == .avazu || o.format == .interactions
            for path in o.inputs {
                let reader = LineReader(path: path, maxLineBytes: o.maxLineBytes)
                var first = true
                var sawAny = false
                try reader.forEachLine { (line, number, status) throws(DataError) in
                    sawAny = true
                    func problem(_ column: Int?, _ reason: String) throws(DataError) {
                        try issues?.pointee.record(RowIssue(file: path, line: number, column: column, reason: reason))
                    }
                    if status == .tooLong { try problem(nil, "line longer than \(o.maxLineBytes) bytes"); return true }
                    if first {
                        first = false
                        if try fp.pointee.header(line, file: path) { return true }
                    }
                    if line.isEmpty && status == .unterminated { return true }
                    if checkUTF8 && FieldParsing.hasNonASCII(line) && !FieldParsing.isValidUTF8(line) {
                        try problem(nil, "invalid UTF-8")
                        return true
                    }
                    do throws(FieldIssue) {
                        try fp.pointee.parse(line, into: &row)
                    } catch {
                        var reason = error.reason
                        if FieldParsing.hasNonASCII(line) && !FieldParsing.isValidUTF8(line) { reason = "invalid UTF-8 (\(reason))" }
                        if status == .unterminated { reason += " (truncated last line?)" }
                        try problem(error.column, reason)
                        return true
                    }
                    body(row)
                    rows += 1
                    if rows & 0xFFFF == 0, let progress, Date().timeIntervalSince(lastReport) > 1 {
                        lastReport = Date()
                        progress(ConvertProgress(pass: pass, bytesDone: bytesBefore + reader.bytesRead, bytesTotal: totalBytes,
                                                 rows: rows, seconds: Date().timeIntervalSince(t0)))
                    }
                    return true
                }
                if !sawAny { try issues?.pointee.record(RowIssue(file: path, line: 0, column: nil, reason: "empty file")) }
                bytesBefore += reader.bytesRead
            }
        }
    }
}

/// Malformed-row bookkeeping under a policy: count and keep the first 10, or stop at the first.
struct IssueLog {
    let policy: ErrorPolicy
    var skipped = 0
    var firstTen: [RowIssue] = []
    var first: RowIssue? { firstTen.first }

    init(policy: ErrorPolicy) { self.policy = policy }

    mutating func record(_ issue: RowIssue) throws(DataError) {
        if policy == .fail { throw .malformedRow(issue) }
        skipped += 1
        if firstTen.count < 10 { firstTen.append(issue) }
    }
}
