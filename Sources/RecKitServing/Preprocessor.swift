import Foundation
import RecKitData

/// A batch of preprocessed rows, ready for a model: dense features (rows × denseWidth, already transformed) and, per
/// sparse feature, the ids of every row (jagged: `lengths[f][row]` ids each, concatenated in row order).
public struct PreparedRows: Sendable, Equatable {
    public private(set) var count = 0
    public let denseWidth: Int
    public private(set) var dense: [Float] = []
    public private(set) var ids: [[Int32]]
    public private(set) var lengths: [[Int32]]

    public init(denseWidth: Int, features: Int) {
        self.denseWidth = denseWidth
        ids = Array(repeating: [], count: features)
        lengths = Array(repeating: [], count: features)
    }

    /// Starts a row with its `features` dense values `value(j)` (a lone 0 when the model has no dense features: its
    /// dense input is one column wide). `appendIDs` completes the row. Nothing is allocated per row; after a throw
    /// the batch holds a partial row and must be discarded (the request fails).
    mutating func appendDense<E: Error>(_ features: Int, _ value: (Int) throws(E) -> Float) throws(E) {
        for j in 0..<features { dense.append(try value(j)) }
        if features == 0 { dense.append(0) }
    }

    /// Completes the row started by `appendDense` with one id per sparse feature, `id(f)`.
    mutating func appendIDs<E: Error>(_ id: (Int) throws(E) -> Int32) throws(E) {
        for f in 0..<ids.count {
            ids[f].append(try id(f))
            lengths[f].append(1)
        }
        count += 1
    }

    /// Appends `other`'s rows after these (batching requests together).
    public mutating func append(_ other: PreparedRows) {
        dense += other.dense
        for f in 0..<ids.count { ids[f] += other.ids[f]; lengths[f] += other.lengths[f] }
        count += other.count
    }

    /// Rows `range` as their own batch.
    public func slice(_ range: Range<Int>) -> PreparedRows {
        var out = PreparedRows(denseWidth: denseWidth, features: ids.count)
        out.count = range.count
        out.dense = Array(dense[(range.lowerBound * denseWidth)..<(range.upperBound * denseWidth)])
        for f in 0..<ids.count {
            let start = lengths[f][..<range.lowerBound].reduce(0) { $0 + Int($1) }
            let n = lengths[f][range].reduce(0) { $0 + Int($1) }
            out.ids[f] = Array(ids[f][start..<(start + n)])
            out.lengths[f] = Array(lengths[f][range])
        }
        return out
    }
}

/// The training-time preprocessing, applied to raw request rows: the checkpoint's `DatasetSchema` (dense transform,
/// raw-id scheme, categorical mapping by hash, vocabulary or identity) and its saved vocabularies.
///
/// Accepted forms (see `docs/openapi.yaml`):
/// * positional JSON `{"rows": [{"dense": [int|null × D], "categorical": [string|null × S]}]}`;
/// * named JSON `{"instances": [{"I1": 3, "C1": "68fd1e64", ...}]}` — feature names from the schema, absent = missing;
/// * TSV: Criteo test-format lines (39 tab-separated columns, no label), for Criteo-trained models.
public final class Preprocessor: @unchecked Sendable {
    public let schema: DatasetSchema
    public let tableSizes: [Int]
    private let encoder: CategoricalEncoder?
    private let denseIndex: [String: Int]
    private let sparseIndex: [String: Int]

    public init(schema: DatasetSchema, vocabularies: [[UInt64]], tableSizes: [Int]) throws(RequestError) {
        self.schema = schema
        self.tableSizes = tableSizes
        switch schema.preprocessing.categorical {
        case .hash(let m): encoder = CategoricalEncoder(mode: .hash(modulo: m), featureCount: schema.sparse.count)
        case .vocabulary(let k, _):
            guard vocabularies.count == schema.sparse.count else {
                throw RequestError(.unavailable, "the checkpoint lacks the vocabularies its preprocessing needs")
            }
            encoder = CategoricalEncoder(minCount: k, vocabularies: vocabularies)
        case .identity: encoder = nil
        }
        denseIndex = Dictionary(uniqueKeysWithValues: schema.denseNames.enumerated().map { ($1, $0) })
        sparseIndex = Dictionary(uniqueKeysWithValues: schema.sparse.enumerated().map { ($1.name, $0) })
    }

    public var denseWidth: Int { max(schema.denseNames.count, 1) }

    // MARK: JSON

    /// A JSON scalar as written (null is nil): integers, other numbers and strings are kept apart so errors can say
    /// which was wrong.
    enum JSONScalar: Sendable {
        case integer(Int64), number(Double), string(String), other(String)

        init?(_ v: RequestJSON) {
            switch v {
            case .null: return nil
            case .string(let s): self = .string(s)
            case .integer(let i): self = .integer(i)
            case .number(let d): self = .number(d)
            case .bool: self = .other("a boolean")
            case .array: self = .other("an array")
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
        let keys = members.map(\.key)
        for key in ["rows", "instances"] where keys.contains(key) {
            guard members.count == 1 else {
                throw RequestError(.invalid, "unexpected keys beside \"\(key)\": \(keys.filter { $0 != key }.sorted())")
            }
            guard case .array(let list) = members[0].value else { throw RequestError(.invalid, "\"\(key)\" must be an array") }
            return key == "rows" ? try positional(list) : try named(list)
        }
        throw RequestError(.invalid, "body must have \"rows\" (positional) or \"instances\" (named features); got keys \(keys.sorted())")
    }

    private func positional(_ rows: [RequestJSON]) throws(RequestError) -> PreparedRows {
        guard !rows.isEmpty else { throw RequestError(.invalid, "empty batch: \"rows\" has no rows") }
        var out = PreparedRows(denseWidth: denseWidth, features: schema.sparse.count)
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
            try out.appendIDs { (f) throws(RequestError) in try sparseID(f, JSONScalar(cats[f]), "rows[\(r)].categorical[\(f)]") }
        }
        return out
    }

    private func named(_ instances: [RequestJSON]) throws(RequestError) -> PreparedRows {
        guard !instances.isEmpty else { throw RequestError(.invalid, "empty batch: \"instances\" has no rows") }
        var out = PreparedRows(denseWidth: denseWidth, features: schema.sparse.count)
        let nd = schema.denseNames.count, ns = schema.sparse.count
        for (r, instValue) in instances.enumerated() {
            guard case .object(let inst) = instValue else { throw RequestError(.invalid, "instances[\(r)] must be an object of features") }
            var dense = [JSONScalar?](repeating: nil, count: nd)
            var cats = [JSONScalar?](repeating: nil, count: ns)
            for m in inst {
                let name = m.key, v = m.value
                if let j = denseIndex[name] { dense[j] = JSONScalar(v) }
                else if let f = sparseIndex[name] { cats[f] = JSONScalar(v) }
                else {
                    throw RequestError(.invalid, "instances[\(r)]: unknown feature '\(name)' (the model's features: \(featureList))")
                }
            }
            try out.appendDense(nd) { (j) throws(RequestError) in try denseValue(dense[j], "instances[\(r)].\(schema.denseNames[j])") }
            try out.appendIDs { (f) throws(RequestError) in try sparseID(f, cats[f], "instances[\(r)].\(schema.sparse[f].name)") }
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
        case .other(let what)?:
            throw RequestError(.invalid, "\(at()): expected an integer or null, got \(what)")
        }
    }

    private func sparseID(_ f: Int, _ v: JSONScalar?, _ at: @autoclosure () -> String) throws(RequestError) -> Int32 {
        let key: UInt64
        switch v {
        case nil: key = 0
        case .string(let s)?:
            guard let k = RawKeys.key(s, rawIDs: schema.preprocessing.rawIDs) else {
                throw RequestError(.invalid, "\(at()): \"\(s.prefix(40))\" is not a valid \(schema.preprocessing.rawIDs) id")
            }
            key = k
        case .integer(let i)?:
            guard i >= 0 else { throw RequestError(.invalid, "\(at()): negative id \(i)") }
            key = UInt64(i)
        case .number(let x)?:
            throw RequestError(.invalid, "\(at()): expected an id (string or integer), got \(x)")
        case .other(let what)?:
            throw RequestError(.invalid, "\(at()): expected an id (string or integer), got \(what)")
        }
        return try encode(f, key, at())
    }

    @inline(__always) private func encode(_ f: Int, _ key: UInt64, _ at: @autoclosure () -> String) throws(RequestError) -> Int32 {
        if let encoder { return encoder.encode(f, key) }
        guard key < UInt64(tableSizes[f]) else {
            throw RequestError(.invalid, "\(at()): id \(key) is out of range 0..<\(tableSizes[f]) (the model uses ids as given)")
        }
        return Int32(key)
    }

    // MARK: TSV

    /// Criteo test-format lines (39 tab-separated columns: 13 integers, 26 hex ids; empty = missing). Blank lines
    /// are skipped; a final newline is optional.
    public func prepareTSV(_ body: [UInt8]) throws(RequestError) -> PreparedRows {
        guard schema.source == "criteo" else {
            throw RequestError(.invalid, "the TSV form is for Criteo-format models; this model was trained on \(schema.source) data (use JSON)")
        }
        var out = PreparedRows(denseWidth: denseWidth, features: schema.sparse.count)
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
                    let line = UnsafeBufferPointer(rebasing: b[start..<stop])
                    do throws(FieldIssue) { try format.parse(line, into: &row) } catch {
                        throw RequestError(.invalid, "line \(lineNumber), column \(error.column): \(error.reason)")
                    }
                    out.appendDense(row.dense.count) { PreprocessingSpec.transformDense(row.dense[$0]) }
                    try out.appendIDs { (f) throws(RequestError) in try encode(f, row.categorical[f], "line \(lineNumber), C\(f + 1)") }
                }
                start = end + 1
            }
        }
        guard out.count > 0 else { throw RequestError(.invalid, "empty batch: the TSV body has no lines") }
        return out
    }

    // MARK: errors

    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }
}
