import CRecKitShims
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A persistent pool of pthreads for the kernels' parallel regions.
///
/// `parallelFor(n) { i in ... }` runs tasks `0..<n` on the caller plus `threadCount − 1` workers and returns
/// when all are done. Tasks are handed out dynamically (an atomic counter), so kernels must make each task's
/// result independent of which thread runs it: disjoint outputs, and any reduction done per task in a fixed
/// order. That is what keeps optimized kernels deterministic at any thread count.
///
/// Why not Dispatch or TaskGroup: measured on this 2-core machine, a region costs ~0.3 µs here against
/// 0.6 µs (concurrentPerform, which also did not parallelise items under ~15 µs) and 2–5 µs (TaskGroup).
/// Idle workers spin briefly (`pause`), then yield, then sleep on a condition variable, so an idle pool costs
/// no CPU. OpenBLAS and oneDNN run single-threaded inside tasks (see `BLASRuntime`, `BF16Runtime`), so only this pool's
/// threads exist.
///
/// A `parallelFor` issued from inside a task (nested) or while another thread holds the pool runs serially on
/// the calling thread: correct, never deadlocking.
public final class ThreadPool: @unchecked Sendable {
    /// Threads that execute tasks, the caller included (≥ 1).
    public let threadCount: Int

    private let generation = Atomic<Int>(0)
    private let nextTask = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private var workers: [pthread_t] = []
    /// The current region's body and task count; written by the caller before `generation` is released.
    nonisolated(unsafe) private var job: ((Int, Int) -> Void)?
    nonisolated(unsafe) private var jobCount = 0

    /// Spin iterations before yielding, and yields before sleeping (≈ 50 µs and ≈ 2 ms on this machine).
    private static let spinLimit = 2_000
    private static let yieldLimit = 2_000
    private let spinLimit: Int, yieldLimit: Int

    /// How long idle workers stay awake between regions.
    public enum Idle: Sendable {
        /// Spin ≈ 50 µs, yield ≈ 2 ms, then sleep: regions issued back to back (training steps) start at once.
        case eager
        /// Spin ≈ 5 µs, then sleep: for processes that share the cores with other work (the server's event loops),
        /// where a yielding worker would take CPU from them between batches.
        case polite
    }

    /// A pool with `threads` threads in total (the caller counts as one); `threads` ≤ 1 means serial.
    public init(threads: Int, idle: Idle = .eager) {
        threadCount = max(1, threads)
        (spinLimit, yieldLimit) = idle == .eager ? (Self.spinLimit, Self.yieldLimit) : (200, 0)
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        // Workers reference the pool unretained: deinit joins them before the memory goes away.
        for slot in 1..<threadCount {
            let start = Unmanaged.passRetained(WorkerStart(pool: self, slot: slot)).toOpaque()
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { arg in
                guard let arg else { return nil }
                let start = Unmanaged<WorkerStart>.fromOpaque(arg).takeRetainedValue()
                let (pool, slot) = (start.pool, start.slot)
                pool._withUnsafeGuaranteedRef { $0.workerLoop(slot: slot) }
                return nil
            }, start)
            if rc == 0 { workers.append(tid) } else { Unmanaged<WorkerStart>.fromOpaque(start).release() }
        }
    }

    deinit {
        stopping.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        for t in workers { pthread_join(t, nil) }
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(cond)
        mutex.deallocate()
        cond.deallocate()
    }

    /// Number of hardware threads online (`sysconf`).
    public static var hardwareConcurrency: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Runs `body(i)` for every `i` in `0..<count`, in parallel; returns after all calls finished.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        parallelFor(count) { i, _ in body(i) }
    }

    /// Like `parallelFor(_:_:)`, and also tells each task which thread runs it: `slot` is in `0..<threadCount`
    /// and no two tasks running at the same time share a slot, so per-slot scratch needs no locking. Which tasks
    /// a slot gets depends on timing; results must not.
    public func parallelFor(_ count: Int, _ body: (_ task: Int, _ slot: Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || workers.isEmpty || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            for i in 0..<count { body(i, 0) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            jobCount = count
            nextTask.store(0, ordering: .relaxed)
            pending.store(workers.count, ordering: .relaxed)
            // Sequentially consistent on both sides of the sleep handshake (Dekker): the caller publishes the new
            // generation, then reads `sleepers`; a worker going to sleep counts itself in `sleepers`, then re-reads the
            // generation. With acquire/release alone each side may read the other's old value and the wake-up is lost
            // (x86's locked add happens to be a full fence; weaker memory models do not give that).
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(cond)
                pthread_mutex_unlock(mutex)
            }
            runTasks(escapable, count, slot: 0)
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins < Self.spinLimit * 4 { reckit_cpu_relax() } else { sched_yield() }
            }
            job = nil
        }
        busy.store(false, ordering: .releasing)
    }

    /// Splits `0..<total` into at most `parts` contiguous chunks of at least `minChunk` and runs
    /// `body(range)` on each in parallel. Chunk boundaries depend only on the arguments (deterministic).
    public func parallelChunks(_ total: Int, parts: Int? = nil, minChunk: Int = 1,
                               _ body: (Range<Int>) -> Void) {
        if total <= 0 { return }
        let wanted = parts ?? threadCount
        let n = max(1, min(wanted, total / max(1, minChunk)))
        let chunks = ThreadPool.split(total, into: n)
        parallelFor(chunks.count) { body(chunks[$0]) }
    }

    /// `0..<total` cut into `parts` contiguous, nearly equal ranges (the first ones one longer).
    public static func split(_ total: Int, into parts: Int) -> [Range<Int>] {
        let p = max(1, min(parts, max(total, 1)))
        let base = total / p, extra = total % p
        var result: [Range<Int>] = []
        result.reserveCapacity(p)
        var start = 0
        for i in 0..<p {
            let len = base + (i < extra ? 1 : 0)
            result.append(start..<(start + len))
            start += len
        }
        return result
    }

    @inline(__always) private func runTasks(_ body: (Int, Int) -> Void, _ count: Int, slot: Int) {
        while true {
            let i = nextTask.add(1, ordering: .relaxed).oldValue
            if i >= count { break }
            body(i, slot)
        }
    }

    /// What a new worker thread needs: its pool (unretained, see `init`) and its slot.
    private final class WorkerStart {
        let pool: Unmanaged<ThreadPool>
        let slot: Int
        init(pool: ThreadPool, slot: Int) { self.pool = Unmanaged.passUnretained(pool); self.slot = slot }
    }

    fileprivate func workerLoop(slot: Int) {
        var seen = 0  // the generation at construction: a region issued before this thread ran is not missed
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins < spinLimit {
                    reckit_cpu_relax()
                } else if spins < spinLimit + yieldLimit {
                    sched_yield()
                } else {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(cond, mutex) }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            if let body = job { runTasks(body, jobCount, slot: slot) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}

