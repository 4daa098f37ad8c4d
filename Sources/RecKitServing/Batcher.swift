/// Dynamic batching as a value-type state machine: requests (each with a row count) queue up in arrival order;
/// `next(now:)` says whether to run a batch now, and which requests form it, or until when to wait.
///
/// Rules (all times in nanoseconds of a monotonic clock supplied by the caller, so tests drive time explicitly):
/// * A batch is the longest prefix of the queue whose rows fit in `maxBatch` and whose requests share one `group` (the
///   model that preprocessed them: a batch never mixes models) — at least one request, so a single request larger
///   than `maxBatch` runs alone (the engine splits it into model-sized chunks).
/// * It runs as soon as the queued rows reach `maxBatch`, or when the oldest queued request has waited
///   `maxWait`; otherwise the caller sleeps until that deadline (or the next enqueue).
/// * Requests are never reordered or dropped; `drain()` hands out everything (shutdown).
public struct Batcher<ID: Hashable & Sendable>: Sendable {
    public struct Config: Sendable, Equatable {
        public var maxBatch: Int
        public var maxWaitNanos: UInt64
        public init(maxBatch: Int, maxWaitNanos: UInt64) {
            self.maxBatch = max(1, maxBatch); self.maxWaitNanos = maxWaitNanos
        }
    }

    public struct Pending: Sendable, Equatable {
        public let id: ID
        public let rows: Int
        public let arrival: UInt64
        public let group: UInt64
    }

    public enum Decision: Sendable, Equatable {
        /// Run these requests now, as one batch, in this order.
        case run([ID])
        /// Nothing is due: sleep until this time (or until the next enqueue).
        case wait(until: UInt64)
        /// The queue is empty.
        case idle
    }

    public let config: Config
    /// Queued requests, oldest first (`head` skips the ones already handed out).
    private var queue: [Pending] = []
    private var head = 0
    public private(set) var queuedRows = 0

    public init(config: Config) { self.config = config }

    public var queuedRequests: Int { queue.count - head }
    public var isEmpty: Bool { head == queue.count }

    public mutating func enqueue(_ id: ID, rows: Int, group: UInt64 = 0, now: UInt64) {
        queue.append(Pending(id: id, rows: max(rows, 0), arrival: now, group: group))
        queuedRows += max(rows, 0)
    }

    /// What to do at `now`: call after every enqueue, on wake-up, and when a batch finished.
    public mutating func next(now: UInt64) -> Decision {
        guard head < queue.count else { return .idle }
        let deadline = queue[head].arrival &+ config.maxWaitNanos
        if queuedRows >= config.maxBatch || now >= deadline { return .run(takeBatch()) }
        return .wait(until: deadline)
    }

    /// Everything still queued, oldest first (for shutdown: run or fail them, never drop silently).
    public mutating func drain() -> [ID] {
        let ids = queue[head...].map(\.id)
        queue.removeAll(keepingCapacity: true)
        head = 0
        queuedRows = 0
        return ids
    }

    private mutating func takeBatch() -> [ID] {
        var ids: [ID] = []
        var rows = 0
        let group = queue[head].group
        while head < queue.count {
            let p = queue[head]
            if !ids.isEmpty && (rows + p.rows > config.maxBatch || p.group != group) { break }
            ids.append(p.id)
            rows += p.rows
            head += 1
        }
        queuedRows -= rows
        if head == queue.count || head > 1024 {  // compact the consumed prefix now and then
            queue.removeFirst(head)
            head = 0
        }
        return ids
    }
}
