/// Why a request was refused, with the HTTP status it maps to. Every message names the offending row and field.
public struct RequestError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The body is not parseable at all (broken JSON, not UTF-8): 400.
        case malformed
        /// Parseable but wrong: field counts or types, unknown features, NaN/inf, empty batch, ids out of range: 422.
        case invalid
        /// The body exceeds the configured limit: 413.
        case tooLarge
        /// The server is shutting down or has no model: 503.
        case unavailable
        /// The model produced something unusable (a non-finite score): 500.
        case internalError = "internal"
        /// Admin access without a valid token: 401.
        case unauthorized
        /// Admin access to something outside what is allowed (a path outside --model-dir): 403.
        case forbidden
        /// A reload names a model the model directory does not hold: 404.
        case notFound = "not_found"
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }

    public var status: Int {
        switch kind {
        case .malformed: return 400
        case .invalid: return 422
        case .tooLarge: return 413
        case .unavailable: return 503
        case .internalError: return 500
        case .unauthorized: return 401
        case .forbidden: return 403
        case .notFound: return 404
        }
    }

    public var description: String { message }
}
