import RecKitCore
import RecKitServing
import Testing

/// The batcher state machine, time driven explicitly.
@Suite("Batcher: dynamic batching state machine")
struct BatcherTests {
    typealias B = Batcher<Int>

    @Test("empty queue is idle; a lone request waits exactly max-wait, then runs")
    func waitThenRun() {
        var b = B(config: .init(maxBatch: 8, maxWaitNanos: 1_000))
        #expect(b.next(now: 0) == .idle)
        b.enqueue(1, rows: 1, now: 100)
        #expect(b.next(now: 100) == .wait(until: 1_100))
        #expect(b.next(now: 1_099) == .wait(until: 1_100))
        #expect(b.next(now: 1_100) == .run([1]))
        #expect(b.next(now: 1_200) == .idle)
        #expect(b.queuedRows == 0 && b.isEmpty)
    }

    @Test("a full batch runs at once; the batch is the longest prefix that fits")
    func fullAndPrefix() {
        var b = B(config: .init(maxBatch: 4, maxWaitNanos: 1_000_000))
        b.enqueue(1, rows: 2, now: 0)
        #expect(b.next(now: 0) == .wait(until: 1_000_000))
        b.enqueue(2, rows: 2, now: 5)
        #expect(b.next(now: 5) == .run([1, 2]))
        b.enqueue(3, rows: 3, now: 10)
        b.enqueue(4, rows: 3, now: 11)  // 6 rows queued ≥ 4: run, but only 3 fits with the first
        #expect(b.next(now: 11) == .run([3]))
        #expect(b.next(now: 12) == .wait(until: 1_000_011))
        #expect(b.next(now: 1_000_011) == .run([4]))
    }

    @Test("a request larger than max batch runs alone; max-wait 0 never waits")
    func oversizeAndZeroWait() {
        var b = B(config: .init(maxBatch: 4, maxWaitNanos: 0))
        b.enqueue(1, rows: 10, now: 0)
        b.enqueue(2, rows: 1, now: 0)
        #expect(b.next(now: 0) == .run([1]))
        #expect(b.next(now: 0) == .run([2]))
        #expect(b.next(now: 0) == .idle)
    }

    @Test("drain hands out everything in order")
    func drain() {
        var b = B(config: .init(maxBatch: 100, maxWaitNanos: 1_000))
        for i in 0..<5 { b.enqueue(i, rows: 1, now: UInt64(i)) }
        #expect(b.drain() == [0, 1, 2, 3, 4])
        #expect(b.next(now: 10_000) == .idle && b.queuedRows == 0)
    }

    @Test("random schedules: every request runs exactly once, in arrival order; batches respect max batch and max wait",
          arguments: [1, 2, 3, 4, 5])
    func property(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        let maxBatch = 1 + rng.nextBelow(64), maxWait = UInt64(rng.nextBelow(5_000))
        var b = B(config: .init(maxBatch: maxBatch, maxWaitNanos: maxWait))
        var now: UInt64 = 0
        var rows: [Int: Int] = [:], arrival: [Int: UInt64] = [:]
        var ran: [Int] = []
        var id = 0
        for _ in 0..<2_000 {
            now += UInt64(rng.nextBelow(400))
            if rng.nextBelow(3) > 0 {
                let r = 1 + rng.nextBelow(2 * maxBatch)
                b.enqueue(id, rows: r, now: now)
                rows[id] = r; arrival[id] = now
                id += 1
            }
            while true {
                switch b.next(now: now) {
                case .run(let ids):
                    let total = ids.reduce(0) { $0 + rows[$1]! }
                    #expect(ids.count == 1 || total <= maxBatch, "batch \(ids) has \(total) rows > \(maxBatch)")
                    // Ran because it was full or its oldest request was due.
                    #expect(total >= maxBatch || now >= arrival[ids[0]]! + maxWait || b.queuedRows > 0 || ids.count == 1)
                    ran += ids
                    continue
                case .wait(let until):
                    #expect(until > now)
                case .idle:
                    break
                }
                break
            }
        }
        ran += b.drain()
        #expect(ran == Array(0..<id))
    }
}
