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
    public var shardRows = 1 << 19
    public var maxLineBytes = 1 << 20
    /// Map categoricals with this encoder (a trained model's vocabulary or hashing) instead of building one:
    /// how prediction and evaluation transform raw rows exactly as training did.
    public var fixedEncoder: CategoricalEncoder?
    /// Replace a non-empty output directory (otherwise refused).
    public var overwrite = false

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
        let staging = try DatasetStaging(output: o.output, overwrite: o.overwrite)
        var format = try makeFormat(o)
        try primeHeader(&format, o)
        let categoricalCount = format.categoricalNames.count + (format.multiHotName == nil ? 0 : 1)
        let mode: CategoricalEncoder.Mode = o.fixedEncoder?.mode ?? o.maxIndRange.map { .hash(modulo: $0) } ?? .vocabulary(minCount: o.minCount ?? 1)
        let encoder = o.fixedEncoder ?? CategoricalEncoder(mode: mode, featureCount: categoricalCount)
        guard encoder.featureCount == categoricalCount else {
            throw .invalidOptions("the model expects \(encoder.featureCount) categorical features, \(o.format.rawValue) rows have \(categoricalCount)")
        }
        var issues = IssueLog(policy: o.onError)

        let multiFeature = format.multiHotName == nil ? nil : categoricalCount - 1
        let shape = RowShape(hasLabel: format.hasLabel, denseCount: format.denseNames.count,
                             categoricalCount: categoricalCount, multiFeature: multiFeature, hasTimestamps: format.hasTimestamps)
        if case .vocabulary = mode, o.fixedEncoder == nil {
            try scanBlocks(o, &format, pass: 1, shape: shape, encoder: nil, totalBytes: totalBytes, t0: t0,
                           progress: progress, issues: nil) { (block) throws(DataError) in
                for f in 0..<categoricalCount { encoder.merge(f, keys: block.firstSeen[f], counts: block.counts[f]) }
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
            let path = staging.directory + "/" + name
            try ShardFile.write(cols, schema: schema, to: path)
            let bytes = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
            shards.append(.init(file: name, rows: cols.rowCount, bytes: bytes))
            cols.removeAll()
        }
        // The first write error (disk full, ...) stops the scan at once.
        try scanBlocks(o, &format, pass: 2, shape: shape, encoder: encoder, totalBytes: totalBytes, t0: t0,
                       progress: progress, issues: &issues) { (block) throws(DataError) in
            guard let part = block.columns else { return }
            var done = 0
            while done < part.rowCount {
                let take = min(o.shardRows - cols.rowCount, part.rowCount - done)
                cols.append(part, rows: done..<(done + take))
                done += take
                rows += take
                if cols.rowCount >= o.shardRows { try flush() }
            }
        }
        try flush()
        guard rows > 0 else {
            throw .emptyInput(path: o.inputs.joined(separator: ", "),
                              reason: "no valid rows (\(issues.skipped) malformed)\(issues.first.map { "; first: \($0)" } ?? "")")
        }
        if case .vocabulary = mode, o.fixedEncoder == nil { try encoder.writeVocabulary(to: staging.directory) }
        try Manifest(schema: schema, shards: shards).write(to: staging.directory)
        try staging.commit()
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

    /// One pass over all inputs, block-parallel: a `BlockReader` cuts each file into ~4 MiB blocks of whole
    /// lines; groups of blocks are parsed concurrently (each worker with its own copy of the format), and the
    /// results are merged strictly in file order — rows, first-seen vocabulary order and malformed-row reports
    /// are exactly those of a sequential pass.
    static func scanBlocks(_ o: ConvertOptions, _ format: inout any RowFormat, pass: Int, shape: RowShape,
                           encoder: CategoricalEncoder?, totalBytes: Int, t0: Date,
                           progress: ((ConvertProgress) -> Void)?, issues: UnsafeMutablePointer<IssueLog>?,
                           _ merge: (BlockResult) throws(DataError) -> Void) throws(DataError) {
        let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        var bytesBefore = 0, rows = 0
        var lastReport = Date()
        for path in o.inputs {
            let reader = try BlockReader(path: path, maxLineBytes: o.maxLineBytes)
            var firstBlock = true
            var sawAny = false
            var done = false
            while !done {
                var group: [BlockJob] = []
                while group.count < workers * 2 {
                    guard let event = try reader.next() else { done = true; break }
                    sawAny = true
                    switch event {
                    case .tooLong(let line):
                        group.append(BlockJob(tooLongLine: line))
                    case let .block(bytes, firstLine, tail):
                        var skipFirst = false
                        if firstBlock {
                            firstBlock = false
                            let end = bytes.firstIndex(of: 0x0A) ?? bytes.count
                            var len = end
                            if len > 0 && bytes[len - 1] == 0x0D { len -= 1 }
                            skipFirst = try bytes.withUnsafeBufferPointer { (b) throws(DataError) in
                                try format.header(UnsafeBufferPointer(rebasing: b[0..<len]), file: path)
                            }
                        }
                        group.append(BlockJob(bytes: bytes, firstLine: firstLine, unterminatedTail: tail, skipFirstLine: skipFirst))
                    }
                }
                if group.isEmpty { break }
                let formatCopy = format
                let jobs = group
                let results = ParallelResults<BlockResult>(count: jobs.count)
                DispatchQueue.concurrentPerform(iterations: jobs.count) { i in
                    var f = formatCopy
                    results.set(i, parseBlock(jobs[i], path: path, format: &f, pass: pass, shape: shape, encoder: encoder, o: o))
                }
                for r in results.values {
                    for issue in r.issues { try issues?.pointee.record(issue) }
                    try merge(r)
                    rows += r.rows
                }
                if let progress, Date().timeIntervalSince(lastReport) > 1 {
                    lastReport = Date()
                    progress(ConvertProgress(pass: pass, bytesDone: bytesBefore + reader.bytesRead, bytesTotal: totalBytes,
                                             rows: rows, seconds: Date().timeIntervalSince(t0)))
                }
            }
            if !sawAny { try issues?.pointee.record(RowIssue(file: path, line: 0, column: nil, reason: "empty file")) }
            bytesBefore += reader.bytesRead
        }
    }

    /// Parses one block: rows into columns (pass 2) or key counts (pass 1), issues in line order.
    static func parseBlock(_ job: BlockJob, path: String, format: inout any RowFormat, pass: Int, shape: RowShape,
                           encoder: CategoricalEncoder?, o: ConvertOptions) -> BlockResult {
        var result = BlockResult(shape: shape, pass: pass)
        if let line = job.tooLongLine {
            result.issues.append(RowIssue(file: path, line: line, column: nil, reason: "line longer than \(o.maxLineBytes) bytes"))
            return result
        }
        let checkUTF8 = o.format == .avazu || o.format == .interactions
        var row = RawRow()
        job.bytes.withUnsafeBufferPointer { all in
            var start = 0
            var number = job.firstLine
            while start < all.count {
                let nl = all[start...].firstIndex(of: 0x0A) ?? all.count
                let unterminated = nl == all.count && job.unterminatedTail
                var len = nl - start
                if len > 0 && all[start + len - 1] == 0x0D { len -= 1 }
                let line = UnsafeBufferPointer(rebasing: all[start..<(start + len)])
                defer { start = nl + 1; number += 1 }
                if number == job.firstLine && job.skipFirstLine { continue }
                if line.isEmpty && unterminated { continue }
                if len > o.maxLineBytes {
                    result.issues.append(RowIssue(file: path, line: number, column: nil, reason: "line longer than \(o.maxLineBytes) bytes"))
                    continue
                }
                if checkUTF8 && FieldParsing.hasNonASCII(line) && !FieldParsing.isValidUTF8(line) {
                    result.issues.append(RowIssue(file: path, line: number, column: nil, reason: "invalid UTF-8"))
                    continue
                }
                do throws(FieldIssue) {
                    try format.parse(line, into: &row)
                } catch {
                    var reason = error.reason
                    if FieldParsing.hasNonASCII(line) && !FieldParsing.isValidUTF8(line) { reason = "invalid UTF-8 (\(reason))" }
                    if unterminated { reason += " (truncated last line?)" }
                    result.issues.append(RowIssue(file: path, line: number, column: error.column, reason: reason))
                    continue
                }
                result.add(row, encoder: encoder)
            }
        }
        return result
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

/// The column layout of converted rows.
struct RowShape: Sendable {
    var hasLabel: Bool
    var denseCount: Int
    var categoricalCount: Int
    var multiFeature: Int?
    var hasTimestamps: Bool
}

/// One unit of parallel work: a block of lines, or a too-long line to report in order.
struct BlockJob: @unchecked Sendable {
    var bytes: [UInt8] = []
    var firstLine = 0
    var unterminatedTail = false
    var skipFirstLine = false
    var tooLongLine: Int?

    init(bytes: [UInt8], firstLine: Int, unterminatedTail: Bool, skipFirstLine: Bool) {
        self.bytes = bytes; self.firstLine = firstLine; self.unterminatedTail = unterminatedTail; self.skipFirstLine = skipFirstLine
    }
    init(tooLongLine: Int) { self.tooLongLine = tooLongLine }
}

/// What parsing a block produced.
struct BlockResult: @unchecked Sendable {
    var columns: ShardColumns?
    /// Pass 1: per feature, keys in first-seen order and their counts in this block.
    var firstSeen: [[UInt64]] = []
    var counts: [[UInt64: Int64]] = []
    var issues: [RowIssue] = []
    var rows = 0
    let shape: RowShape

    init(shape: RowShape, pass: Int) {
        self.shape = shape
        if pass == 1 {
            firstSeen = Array(repeating: [], count: shape.categoricalCount)
            counts = Array(repeating: [:], count: shape.categoricalCount)
        } else {
            columns = ShardColumns(denseCount: shape.denseCount, sparseCount: shape.categoricalCount)
        }
    }

    mutating func add(_ row: RawRow, encoder: CategoricalEncoder?) {
        rows += 1
        guard let encoder, columns != nil else {
            for (f, k) in row.categorical.enumerated() { observe(f, k) }
            if let mf = shape.multiFeature { for (k, _) in row.multi { observe(mf, k) } }
            return
        }
        var c = columns.take()!  // move out: no copy-on-write or optional checks per value
        if shape.hasLabel { c.labels.append(row.label) }
        PreprocessingSpec.smallLog1p.withUnsafeBufferPointer { table in
            for v in row.dense { c.dense.append(PreprocessingSpec.transformDense(v, table: table)) }
        }
        for (f, k) in row.categorical.enumerated() { c.ids[f].append(encoder.encode(f, k)) }
        if let mf = shape.multiFeature {
            c.lengths[mf].append(Int32(row.multi.count))
            for (k, w) in row.multi { c.ids[mf].append(encoder.encode(mf, k)); c.weights[mf].append(w) }
        }
        if shape.hasTimestamps { c.timestamps.append(row.timestamp) }
        c.commitRow()
        columns = c
    }

    @inline(__always) mutating func observe(_ f: Int, _ k: UInt64) {
        if let c = counts[f][k] { counts[f][k] = c &+ 1 } else { counts[f][k] = 1; firstSeen[f].append(k) }
    }
}

/// Per-index results written by concurrent workers.
final class ParallelResults<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: T) { lock.withLock { slots[i] = v } }
    var values: [T] { lock.withLock { slots.compactMap { $0 } } }
}
