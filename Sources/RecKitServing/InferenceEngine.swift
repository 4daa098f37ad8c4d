import Foundation
import RecKitCore
import RecKitKernels
import RecKitModels
#if canImport(Glibc)
import Glibc
#endif

/// Runs the model on a dedicated inference thread (never on the HTTP event loop), batching concurrent requests
/// with `Batcher`: callers `await score(rows, model:)`; the thread collects requests until `maxBatch` rows are queued
/// or the oldest has waited `maxWait`, scores them as one batch on its own `ThreadPool`, and resumes each caller with
/// its scores. Every request is scored by the model that preprocessed it (a batch only holds requests of one model,
/// and the response names that model's version), so a `reload` between preprocessing and scoring never mixes one
/// model's ids with another's tables. `shutdown()` stops intake, scores everything queued, then joins the thread.
public final class InferenceEngine: @unchecked Sendable {
    public struct Options: Sendable {
        public var maxBatch = 256
        public var maxWaitMicros = 1_000
        /// Threads of the model's kernel pool (the inference thread is one of them).
        public var threads = 2
        public init() {}
    }

    public struct Scores: Sendable {
        public var scores: [Float]
        public var modelVersion: String
        /// Rows in the batch this request was scored in (its own plus its neighbours').
        public var batchRows: Int
    }

    /// One executed batch, reported to `onBatch` (metrics).
    public struct BatchEvent: Sendable {
        public var rows: Int
        public var requests: Int
        public var seconds: Double
    }

    private struct Waiter {
        var rows: PreparedRows
        var model: ServedModel
        var continuation: CheckedContinuation<Result<Scores, RequestError>, Never>
    }

    public let options: Options
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var batcher: Batcher<Int>
    private var waiters: [Int: Waiter] = [:]
    private var nextID = 0
    private var current: ServedModel
    private var accepting = true
    private var finished = false
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)
    private let onBatch: (@Sendable (BatchEvent) -> Void)?
    private var counters = (batches: 0, rows: 0)
    /// Batches executed and rows scored so far.
    public var batchesRun: Int { pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }; return counters.batches }
    public var rowsScored: Int { pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }; return counters.rows }
    /// Requests accepted into the queue so far (scored or not).
    public var requestsAccepted: Int { pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }; return nextID }

    public init(model: ServedModel, options: Options, onBatch: (@Sendable (BatchEvent) -> Void)? = nil) {
        self.options = options
        self.current = model
        self.onBatch = onBatch
        batcher = Batcher(config: .init(maxBatch: options.maxBatch, maxWaitNanos: UInt64(max(options.maxWaitMicros, 0)) * 1_000))
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
        let t = Thread { [unowned self] in self.loop() }
        t.name = "reckit-inference"
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    deinit {
        shutdown()
        pthread_cond_destroy(cond); pthread_mutex_destroy(mutex)
        cond.deallocate(); mutex.deallocate()
    }

    /// The model currently serving.
    public var model: ServedModel {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return current
    }

    /// Scores `rows`, preprocessed by `model`'s preprocessor, with that model, batched with concurrent callers of the
    /// same model.
    public func score(_ rows: PreparedRows, model: ServedModel) async -> Result<Scores, RequestError> {
        await withCheckedContinuation { (c: CheckedContinuation<Result<Scores, RequestError>, Never>) in
            pthread_mutex_lock(mutex)
            guard accepting else {
                pthread_mutex_unlock(mutex)
                c.resume(returning: .failure(RequestError(.unavailable, "the server is shutting down")))
                return
            }
            let id = nextID
            nextID += 1
            waiters[id] = Waiter(rows: rows, model: model, continuation: c)
            batcher.enqueue(id, rows: rows.count, group: model.generation, now: Self.now())
            pthread_cond_signal(cond)
            pthread_mutex_unlock(mutex)
        }
    }

    /// Serves `model` from the next batch on; requests already being scored finish on the old one.
    public func reload(_ model: ServedModel) {
        pthread_mutex_lock(mutex)
        current = model
        pthread_mutex_unlock(mutex)
    }

    /// Stops intake, scores everything still queued, and waits for the inference thread to end. Idempotent.
    public func shutdown() {
        pthread_mutex_lock(mutex)
        let first = accepting
        accepting = false
        pthread_cond_signal(cond)
        pthread_mutex_unlock(mutex)
        if first && thread != nil { done.wait() }
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    private func loop() {
        let pool = ThreadPool(threads: options.threads, idle: .polite)  // the event loops share these cores
        var workspaces: [UInt64: ModelWorkspace] = [:]  // per model generation; this thread's only
        pthread_mutex_lock(mutex)
        while true {
            var decision = batcher.next(now: Self.now())
            if !accepting, case .wait = decision { decision = .run(batcher.drain()) }  // shutting down: no more waiting
            switch decision {
            case .idle:
                if !accepting {
                    finished = true
                    pthread_mutex_unlock(mutex)
                    done.signal()
                    return
                }
                pthread_cond_wait(cond, mutex)
            case .wait(let until):
                var ts = timespec(tv_sec: Int(until / 1_000_000_000), tv_nsec: Int(until % 1_000_000_000))
                _ = pthread_cond_timedwait(cond, mutex, &ts)
            case .run(let ids):
                let batch = ids.compactMap { id in waiters.removeValue(forKey: id) }
                let live = current.generation
                pthread_mutex_unlock(mutex)
                run(batch, pool: pool, workspaces: &workspaces, live: live)
                pthread_mutex_lock(mutex)
            }
        }
    }

    private func run(_ batch: [Waiter], pool: ThreadPool, workspaces: inout [UInt64: ModelWorkspace], live: UInt64) {
        guard let model = batch.first?.model else { return }
        let t0 = Self.now()
        var rows = batch[0].rows
        for w in batch.dropFirst() { rows.append(w.rows) }
        // Workspaces of models no longer served (and not this batch's) are dropped.
        for g in workspaces.keys where g != live && g != model.generation { workspaces[g] = nil }
        let workspace = workspaces[model.generation] ?? model.makeWorkspace()
        workspaces[model.generation] = workspace
        let result: Result<[Float], RequestError>
        do throws(RequestError) {
            result = .success(try model.score(rows, workspace: workspace, pool: pool))
        } catch {
            // Preprocessing validated shapes and ids, so this is a model/input mismatch or a broken model: report, never crash.
            result = .failure(error)
        }
        // Count the batch before anyone hears back, so a client that has its scores also sees them in the counters
        // and /metrics (resuming first let a test read 63 of 64 rows).
        pthread_mutex_lock(mutex)
        counters.batches += 1
        counters.rows += rows.count
        pthread_mutex_unlock(mutex)
        onBatch?(BatchEvent(rows: rows.count, requests: batch.count, seconds: Double(Self.now() - t0) / 1e9))
        var offset = 0
        for w in batch {
            switch result {
            case .success(let scores):
                let mine = Array(scores[offset..<(offset + w.rows.count)])
                w.continuation.resume(returning: .success(Scores(scores: mine, modelVersion: model.version, batchRows: rows.count)))
            case .failure(let e):
                w.continuation.resume(returning: .failure(e))
            }
            offset += w.rows.count
        }
    }
}
