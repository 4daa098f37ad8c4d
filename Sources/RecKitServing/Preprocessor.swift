import Foundation
import RecKitCore
import RecKitData

/// A batch of preprocessed rows, ready for a model: dense features (rows × denseWidth, already transformed) and, per
/// sparse feature (the schema's order and names), the ids of every row as a jagged list (`offsets[f]`, rows + 1),
/// with per-id weights for weighted features.
public struct PreparedRows: Sendable, Equatable {
    public private(set) var count = 0
    public let denseWidth: Int
    public let keys: [String]
    public private(set) var dense: [Float] = []
    public private(set) var ids: [[Int64]]
    public private(set) var offsets: [[Int32]]
    /// Per feature: one weight per id for weighted features, empty otherwise.
    public private(set) var weights: [[Float]]
    let weighted: [Bool]

    public init(denseWidth: Int, keys: [String], weighted: [Bool]? = nil) {
        self.denseWidth = denseWidth
        self.keys = keys
        ids = Array(repeating: [], count: keys.count)
        offsets = Array(repeating: [0], count: keys.count)
        weights = Array(repeating: [], count: keys.count)
        self.weighted = weighted ?? Array(repeating: false, count: keys.count)
    }

    /// Starts a row with its `features` dense values `value(j)` (a lone 0 when the model has no dense features: its
    /// dense input is one column wide). The ids follow (`appendID` per feature and id, then `endRow`). Nothing is
    /// allocated per row; after a throw the batch holds a partial row and must be discarded (the request fails).
    mutating func appendDense<E: Error>(_ features: Int, _ value: (Int) throws(E) -> Float) throws(E) {
        for j in 0..<features { dense.append(try value(j)) }
        if features == 0 { dense.append(0) }
    }

    /// Adds one id (and its weight, for a weighted feature) to feature `f` of the current row.
    mutating func appendID(_ f: Int, _ id: Int64, weight: Float = 1) {
        ids[f].append(id)
        if weighted[f] { weights[f].append(weight) }
    }

    /// Ends the current row.
    mutating func endRow() {
        for f in 0..<ids.count { offsets[f].append(Int32(truncatingIfNeeded: ids[f].count)) }
        count += 1
    }

    /// Appends `other`'s rows after these (batching requests of the same model together).
    public mutating func append(_ other: PreparedRows) {
        dense += other.dense
        for f in 0..<ids.count {
            let base = Int32(truncatingIfNeeded: ids[f].count)
            ids[f] += other.ids[f]
            weights[f] += other.weights[f]
            offsets[f] += other.offsets[f].dropFirst().map { $0 + base }
        }
        count += other.count
    }

    /// Rows `range` as their own batch: O(rows + ids of the range) — the offsets give each feature's id range
    /// directly, never re-summed from the first row.
    public func slice(_ range: Range<Int>) -> PreparedRows {
        var out = PreparedRows(denseWidth: denseWidth, keys: keys, weighted: weighted)
        out.count = range.count
        out.dense = Array(dense[(range.lowerBound * denseWidth)..<(range.upperBound * denseWidth)])
        for f in 0..<ids.count {
            let s = Int(offsets[f][range.lowerBound]), e = Int(offsets[f][range.upperBound])
            out.ids[f] = Array(ids[f][s..<e])
            if weighted[f] { out.weights[f] = Array(weights[f][s..<e]) }
            let base = offsets[f][range.lowerBound]
            out.offsets[f] = offsets[f][range.lowerBound...range.upperBound].map { $0 - base }
        }
        return out
    }

    /// The rows as a model batch (keys = the schema's feature names; no labels).
    public var batch: Batch {
        Batch(labels: [], dense: dense, sparse: KeyedJaggedTensor(keys: keys, values: ids, offsets: offsets, weights: weights))
    }
}

/// The training-time preprocessing, applied to raw request rows: the checkpoint's `DatasetSchema` (dense transform,
/// raw-id scheme, categorical mapping by hash, vocabulary or identity) and its saved vocabularies.
///
/// Accepted forms (see `docs/openapi.json`):
/// * positional JSON `{"rows": [{"dense": [int|null × D], "categorical": [value × S]}]}`;
/// * named JSON `{"instances": [{"I1": 3, "C1": "68fd1e64", ...}]}` — feature names from the schema, absent = missing;
/// * TSV: Criteo test-format lines (39 tab-separated columns, no label), for Criteo-trained models.
/// A one-hot feature's value is one id (string or integer; null = missing); a multi-hot feature's is a list of ids,
/// each `"id:weight"` or an id (weight 1) for a weighted feature — exactly what its training rows held.
public final class Preprocessor: @unchecked Sendable {
    public let schema: DatasetSchema
    public let tableSizes: [Int]
    /// Rows one request may hold (more: 413).
    public let maxRows: Int
    private let encoder: CategoricalEncoder?
    private let denseIndex: [String: Int]
    private let sparseIndex: [String: Int]
    private let keys: [String]
    private let weighted: [Bool]

    public init(schema: DatasetSchema, vocabularies: [[UInt64]], maxRows: Int = 65_536) throws(RequestError) {
        self.schema = schema
        self.maxRows = max(1, maxRows)
        tableSizes = schema.sparse.map(\.cardinality)
        do { encoder = try CategoricalEncoder.forSchema(schema, vocabularies: vocabularies) } catch {
            throw RequestError(.unavailable, "the checkpoint's preprocessing cannot be rebuilt: \(error)")
        }
        denseIndex = Dictionary(schema.denseNames.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        sparseIndex = Dictionary(schema.sparse.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        keys = schema.sparse.map(\.name)
        weighted = schema.sparse.map(\.weighted)
    }

    public var denseWidth: Int { max(schema.denseNames.count, 1) }

    func emptyRows() -> PreparedRows { PreparedRows(denseWidth: denseWidth, keys: keys, weighted: weighted) }

    func checkCount(_ n: Int, _ what: String) throws(RequestError) {
        guard n > 0 else { throw RequestError(.invalid, "empty batch: \(what) has no rows") }
        guard n <= maxRows else {
            throw RequestError(.tooLarge, "\(n) rows in one request; the limit is \(maxRows) (--max-rows-per-request): split the request")
        }
    }

    // MARK: JSON

    /// A JSON value as written (null is nil): integers, other numbers and strings are kept apart so errors can say
    /// which was wrong.
    enum JSONScalar {
        case integer(Int64), number(Double), string(String), list([RequestJSON]), other(String)

        init?(_ v: RequestJSON) {
            switch v {
            case .null: return nil
            case .string(let s): self = .string(s)
            case .integer(let i): self = .integer(i)
            case .number(let d): self = .number(d)
            case .bool: self = .other("a boolean")
            case .array(let a): self = .list(a)
            case .object: self = .other("an object")
            }
        }
    }

    /// Parses a JSON body in the positional or the named form.
    public func prepareJSON(_ body: [UInt8]) throws(RequestError) -> PreparedRows {
        guard !body.isEmpty else { throw RequestError(.invalid, "empty body: send {\"rows\": [...]} or {\"instances\": [...]}") }
        let top = try RequestJSON.parse(body)
        guard case .object(let members) = top else {
            throw RequestError(.invalid, "body must be a JSON object with \"rows\" or \"instances\"")
        }
        let names = members.map(\.key)
        for key in ["rows", "instances"] where names.contains(key) {
            guard members.count == 1 else {
                throw RequestError(.invalid, "unexpected keys beside \"\(key)\": \(names.filter { $0 != key }.sorted())")
            }
            guard case .array(let list) = members[0].value else { throw RequestError(.invalid, "\"\(key)\" must be an array") }
            try checkCount(list.count, "\"\(key)\"")
            return key == "rows" ? try positional(list) : try named(list)
        }
        throw RequestError(.invalid, "body must have \"rows\" (positional) or \"instances\" (named features); got keys \(names.sorted())")
    }

    private func positional(_ rows: [RequestJSON]) throws(RequestError) -> PreparedRows {
        var out = emptyRows()
        let nd = schema.denseNames.count, ns = schema.sparse.count
        for (r, rowValue) in rows.enumerated() {
            guard case .object(let members) = rowValue else {
                throw RequestError(.invalid, "rows[\(r)] must be an object with \"dense\" and \"categorical\"")
            }
            var dense: [RequestJSON] = [], cats: [RequestJSON] = []
            for m in members {
                let k = m.key
                switch (k, m.value) {
                case ("dense", .array(let a)): dense = a
                case ("categorical", .array(let a)): cats = a
                case ("dense", _), ("categorical", _): throw RequestError(.invalid, "rows[\(r)].\(k) must be an array")
                default: throw RequestError(.invalid, "rows[\(r)]: unknown key '\(k)' (expected \"dense\" and \"categorical\")")
                }
            }
            guard dense.count == nd else { throw RequestError(.invalid, "rows[\(r)].dense has \(dense.count) values, the model expects \(nd)") }
            try out.appendDense(nd) { (j) throws(RequestError) in try denseValue(JSONScalar(dense[j]), "rows[\(r)].dense[\(j)]") }
            guard cats.count == ns else { throw RequestError(.invalid, "rows[\(r)].categorical has \(cats.count) values, the model expects \(ns)") }
            for f in 0..<ns { try sparseValue(f, JSONScalar(cats[f]), "rows[\(r)].categorical[\(f)]", into: &out) }
            out.endRow()
        }
        return out
    }

    private func named(_ instances: [RequestJSON]) throws(RequestError) -> PreparedRows {
        var out = emptyRows()
        let nd = schema.denseNames.count, ns = schema.sparse.count
        var dense = [JSONScalar?](repeating: nil, count: nd)
        var cats = [JSONScalar?](repeating: nil, count: ns)
        for (r, instValue) in instances.enumerated() {
            guard case .object(let inst) = instValue else { throw RequestError(.invalid, "instances[\(r)] must be an object of features") }
            for j in 0..<nd { dense[j] = nil }
            for f in 0..<ns { cats[f] = nil }
            for m in inst {
                let name = m.key, v = m.value
                if let j = denseIndex[name] { dense[j] = JSONScalar(v) }
                else if let f = sparseIndex[name] { cats[f] = JSONScalar(v) }
                else {
                    throw RequestError(.invalid, "instances[\(r)]: unknown feature '\(name.prefix(64))' (the model's features: \(featureList))")
                }
            }
            try out.appendDense(nd) { (j) throws(RequestError) in try denseValue(dense[j], "instances[\(r)].\(schema.denseNames[j])") }
            for f in 0..<ns { try sparseValue(f, cats[f], "instances[\(r)].\(schema.sparse[f].name)", into: &out) }
            out.endRow()
        }
        return out
    }

    private var featureList: String {
        let names = schema.denseNames + schema.sparse.map(\.name)
        return names.count > 8 ? "\(names.prefix(4).joined(separator: ", ")), …, \(names.suffix(2).joined(separator: ", "))"
            : names.joined(separator: ", ")
    }

    /// Dense raw values are integer counts (Criteo); null = missing. Transformed exactly as in training.
    private func denseValue(_ v: JSONScalar?, _ at: @autoclosure () -> String) throws(RequestError) -> Float {
        switch v {
        case nil: return PreprocessingSpec.transformDense(nil)
        case .integer(let i)?: return PreprocessingSpec.transformDense(i)
        case .number(let x)?:
            if !x.isFinite { throw RequestError(.invalid, "\(at()): \(x) is not a finite number") }
            throw RequestError(.invalid, "\(at()): expected an integer count, got \(x)")
        case .string(let s)?:
            throw RequestError(.invalid, "\(at()): expected an integer or null, got the string \"\(s.prefix(40))\"")
        case .list?:
            throw RequestError(.invalid, "\(at()): expected an integer or null, got an array")
        case .other(let what)?:
            throw RequestError(.invalid, "\(at()): expected an integer or null, got \(what)")
        }
    }

    /// Adds feature f's ids of the current row: one id for a one-hot feature (missing → raw key 0, as in training);
    /// a list for a multi-hot one (missing → no ids).
    private func sparseValue(_ f: Int, _ v: JSONScalar?, _ at: @autoclosure () -> String, into out: inout PreparedRows) throws(RequestError) {
        let feature = schema.sparse[f]
        guard feature.multiHot else {
            if case .list? = v { throw RequestError(.invalid, "\(at()): \(feature.name) is one-hot: send one id, not a list") }
            out.appendID(f, try encode(f, try rawKey(v, at()), at()))
            return
        }
        switch v {
        case nil: return
        case .list(let items)?:
            for (i, item) in items.enumerated() {
                if feature.weighted, case .string(let s) = item, let colon = s.lastIndex(of: ":") {
                    let w = Float(s[s.index(after: colon)...])
                    guard let w, w.isFinite else { throw RequestError(.invalid, "\(at())[\(i)]: weight in \"\(s.prefix(40))\" is not a finite number") }
                    let key = try rawKey(.string(String(s[..<colon])), "\(at())[\(i)]")
                    out.appendID(f, try encode(f, key, "\(at())[\(i)]"), weight: w)
                } else {
                    let key = try rawKey(JSONScalar(item), "\(at())[\(i)]")
                    out.appendID(f, try encode(f, key, "\(at())[\(i)]"), weight: 1)
                }
            }
        default:
            throw RequestError(.invalid, "\(at()): \(feature.name) is multi-hot: send a list of ids\(feature.weighted ? " (\"id:weight\" or id)" : "")")
        }
    }

    private func rawKey(_ v: JSONScalar?, _ at: @autoclosure () -> String) throws(RequestError) -> UInt64 {
        switch v {
        case nil: return 0
        case .string(let s)?:
            guard let k = RawKeys.key(s, rawIDs: schema.preprocessing.rawIDs) else {
                throw RequestError(.invalid, "\(at()): \"\(s.prefix(40))\" is not a valid \(schema.preprocessing.rawIDs) id")
            }
            return k
        case .integer(let i)?:
            guard i >= 0 else { throw RequestError(.invalid, "\(at()): negative id \(i)") }
            return UInt64(i)
        case .number(let x)?:
            throw RequestError(.invalid, "\(at()): expected an id (string or integer), got \(x)")
        case .list?:
            throw RequestError(.invalid, "\(at()): expected an id (string or integer), got an array")
        case .other(let what)?:
            throw RequestError(.invalid, "\(at()): expected an id (string or integer), got \(what)")
        }
    }

    @inline(__always) private func encode(_ f: Int, _ key: UInt64, _ at: @autoclosure () -> String) throws(RequestError) -> Int64 {
        if let encoder { return encoder.encode(f, key) }
        guard key < UInt64(tableSizes[f]) else {
            throw RequestError(.invalid, "\(at()): id \(key) is out of range 0..<\(tableSizes[f]) (the model uses ids as given)")
        }
        return Int64(key)
    }

    // MARK: TSV

    /// Criteo test-format lines (39 tab-separated columns: 13 integers, 26 hex ids; empty = missing). Blank lines
    /// are skipped; a final newline is optional.
    public func prepareTSV(_ body: [UInt8]) throws(RequestError) -> PreparedRows {
        guard schema.source == "criteo" else {
            throw RequestError(.invalid, "the TSV form is for Criteo-format models; this model was trained on \(schema.source) data (use JSON)")
        }
        var out = emptyRows()
        var format = CriteoFormat()
        let header = [UInt8](repeating: 9, count: 38)  // 38 tabs = the unlabeled (test-file) layout
        _ = try? header.withUnsafeBufferPointer { try format.header($0, file: "request") }
        var row = RawRow()
        var lineNumber = 0
        var start = 0
        try body.withUnsafeBufferPointer { (b) throws(RequestError) in
            while start < b.count {
                var end = start
                while end < b.count && b[end] != 10 { end += 1 }
                lineNumber += 1
                var stop = end
                if stop > start && b[stop - 1] == 13 { stop -= 1 }  // CRLF
                if stop > start {
                    if out.count >= maxRows { try checkCount(maxRows + 1, "the TSV body") }
                    let line = UnsafeBufferPointer(rebasing: b[start..<stop])
                    do throws(FieldIssue) { try format.parse(line, into: &row) } catch {
                        throw RequestError(.invalid, "line \(lineNumber), column \(error.column): \(error.reason)")
                    }
                    out.appendDense(row.dense.count) { PreprocessingSpec.transformDense(row.dense[$0]) }
                    for f in 0..<row.categorical.count { out.appendID(f, try encode(f, row.categorical[f], "line \(lineNumber), C\(f + 1)")) }
                    out.endRow()
                }
                start = end + 1
            }
        }
        try checkCount(out.count, "the TSV body")
        return out
    }
}
