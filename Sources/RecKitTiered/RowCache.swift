import CRecKitShims
import RecKitCore

/// Which cached row a miss replaces.
///
/// `clock` (default): CLOCK / second chance — a reference bit per slot, set on every use; the hand clears bits
/// until it finds a slot whose bit is clear. `lru`: the least recently used slot (an intrusive doubly linked list,
/// O(1) per use). `lfu`: the least frequently used among 8 slots sampled at random (counts saturate at 65,535 and
/// halve every 64 batches, so old popularity fades), as Redis approximates LFU. `reckit bench tiered --policy`
/// measures them on the same data (docs/tiered.md).
public enum CachePolicy: String, Sendable, Codable, CaseIterable {
    case clock, lru, lfu
}

/// Open-addressing map from row id (≥ 0) to cache slot, linear probing, backward-shift deletion (no tombstones).
/// Capacity is a power of two at least twice the slots, so probes stay short.
struct SlotMap {
    private(set) var keys: AlignedBuffer<Int64>
    private(set) var values: AlignedBuffer<Int32>
    let mask: Int

    init(slots: Int) {
        var capacity = 16
        while capacity < 2 * max(slots, 1) { capacity <<= 1 }
        keys = AlignedBuffer(count: capacity)
        values = AlignedBuffer(count: capacity)
        mask = capacity - 1
        keys.pointer.update(repeating: -1, count: capacity)
    }

    @inline(__always) func home(_ key: Int64) -> Int {
        Int(truncatingIfNeeded: (UInt64(bitPattern: key) &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    /// Brings the line where a probe for `key` starts towards the CPU (issued a few ids ahead of `find`: the map
    /// of a large cache is far bigger than the CPU's caches, so every probe would otherwise wait for DRAM).
    @inline(__always) func prefetch(_ key: Int64) {
        let i = home(key)
        reckit_prefetch(keys.pointer + i)
        reckit_prefetch(values.pointer + i)
    }

    /// The slot of `key`, or −1.
    @inline(__always) func find(_ key: Int64) -> Int32 {
        var i = home(key)
        while true {
            let k = keys.pointer[i]
            if k == key { return values.pointer[i] }
            if k < 0 { return -1 }
            i = (i + 1) & mask
        }
    }

    /// Adds `key` (absent) → `slot`.
    @inline(__always) func insert(_ key: Int64, _ slot: Int32) {
        var i = home(key)
        while keys.pointer[i] >= 0 { i = (i + 1) & mask }
        keys.pointer[i] = key
        values.pointer[i] = slot
    }

    /// Removes `key` (present), shifting later members of its probe run back so lookups never stop early.
    func remove(_ key: Int64) {
        var i = home(key)
        while keys.pointer[i] != key {
            if keys.pointer[i] < 0 { return }
            i = (i + 1) & mask
        }
        var hole = i
        var j = (i + 1) & mask
        while keys.pointer[j] >= 0 {
            let h = home(keys.pointer[j])
            // Move j into the hole when its home is not cyclically within (hole, j].
            let inRange = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j)
            if !inRange {
                keys.pointer[hole] = keys.pointer[j]
                values.pointer[hole] = values.pointer[j]
                hole = j
            }
            j = (j + 1) & mask
        }
        keys.pointer[hole] = -1
    }

    func removeAll() { keys.pointer.update(repeating: -1, count: mask + 1) }
}

/// The bookkeeping of a table's cache: which row each slot holds, the id → slot map, per-slot flags (used by the
/// current batch, dirty, pinned) and the eviction policy's state. Row data lives with the storage.
struct RowCache {
    let capacity: Int
    let policy: CachePolicy
    var map: SlotMap
    /// Row id in each slot, −1 when free.
    var slotID: AlignedBuffer<Int64>
    /// The batch (epoch) that last used each slot: slots of the current batch are never evicted.
    var used: AlignedBuffer<UInt32>
    var dirty: AlignedBuffer<UInt8>
    var pinned: AlignedBuffer<UInt8>
    /// CLOCK reference bits and hand; LFU counts; LRU list (head = most recent).
    var reference: AlignedBuffer<UInt8>
    var hand = 0
    var frequency: AlignedBuffer<UInt16>
    var previous: AlignedBuffer<Int32>, next: AlignedBuffer<Int32>
    var head: Int32 = -1, tail: Int32 = -1
    var free: [Int32]
    var epoch: UInt32 = 0
    var sampler = SeededRandom(seed: 0x7153)
    var dirtyCount = 0

    /// Bytes of bookkeeping per slot (what `--cache-mb` pays besides the row itself).
    static let bytesPerSlot = 8 + 4 + 1 + 1 + 1 + 2 + 8 + 2 * 12

    init(capacity: Int, policy: CachePolicy) {
        self.capacity = capacity
        self.policy = policy
        map = SlotMap(slots: capacity)
        slotID = AlignedBuffer(count: capacity)
        slotID.pointer.update(repeating: -1, count: capacity)
        used = AlignedBuffer(count: capacity)
        dirty = AlignedBuffer(count: capacity)
        pinned = AlignedBuffer(count: capacity)
        reference = AlignedBuffer(count: capacity)
        frequency = AlignedBuffer(count: policy == .lfu ? capacity : 0)
        previous = AlignedBuffer(count: policy == .lru ? capacity : 0)
        next = AlignedBuffer(count: policy == .lru ? capacity : 0)
        free = (0..<Int32(capacity)).reversed().map { $0 }
    }

    /// Starts a batch: slots used from now on belong to it.
    mutating func beginBatch() {
        epoch &+= 1
        if epoch == 0 { used.pointer.update(repeating: 0, count: capacity); epoch = 1 }
        if policy == .lfu, epoch % 64 == 0 {
            for s in 0..<capacity { frequency.pointer[s] >>= 1 }
        }
    }

    /// Brings the flags `touch(s)` writes towards the CPU.
    @inline(__always) func prefetchFlags(_ s: Int32) {
        reckit_prefetch_write(used.pointer + Int(s))
        reckit_prefetch_write(reference.pointer + Int(s))
    }

    /// Records a use of slot `s` by the current batch; true the first time in this batch.
    @inline(__always) mutating func touch(_ s: Int32) -> Bool {
        let i = Int(s)
        reference.pointer[i] = 1
        if policy == .lfu, frequency.pointer[i] < .max { frequency.pointer[i] += 1 }
        guard used.pointer[i] != epoch else { return false }
        used.pointer[i] = epoch
        if policy == .lru { moveToHead(s) }
        return true
    }

    /// A slot for a new row: a free one, or a victim chosen by the policy among slots the current batch has not
    /// used and that are not pinned; nil when every slot is taken by this batch or pinned. The victim's row, if
    /// any, is still recorded in `slotID` (the caller writes it back when dirty, then calls `assign`).
    mutating func takeSlot() -> Int32? {
        if let s = free.popLast() { return s }
        switch policy {
        case .clock:
            var scanned = 0
            while scanned < 2 * capacity {
                let s = hand
                hand = hand + 1 == capacity ? 0 : hand + 1
                scanned += 1
                if used.pointer[s] == epoch || pinned.pointer[s] != 0 { continue }
                if reference.pointer[s] != 0 { reference.pointer[s] = 0; continue }
                return Int32(s)
            }
            return nil
        case .lru:
            var s = tail
            while s >= 0 {
                if used.pointer[Int(s)] != epoch && pinned.pointer[Int(s)] == 0 { return s }
                s = previous.pointer[Int(s)]
            }
            return nil
        case .lfu:
            var best: Int32 = -1
            var tries = 0
            while tries < 64 && (best < 0 || tries < 8) {
                let s = Int(sampler.nextBelow(capacity))
                tries += 1
                if used.pointer[s] == epoch || pinned.pointer[s] != 0 { continue }
                if best < 0 || frequency.pointer[s] < frequency.pointer[Int(best)] { best = Int32(s) }
            }
            if best >= 0 { return best }
            for s in 0..<capacity where used.pointer[s] != epoch && pinned.pointer[s] == 0 { return Int32(s) }
            return nil
        }
    }

    /// Puts row `id` in slot `s` (whose previous row, if any, the caller has written back): updates the map and
    /// the flags, and counts as a use by the current batch.
    mutating func assign(_ s: Int32, id: Int64) {
        let i = Int(s)
        let old = slotID.pointer[i]
        if old >= 0 {
            map.remove(old)
            if dirty.pointer[i] != 0 { dirtyCount -= 1 }
        } else if policy == .lru {
            pushHead(s)
        }
        slotID.pointer[i] = id
        dirty.pointer[i] = 0
        map.insert(id, s)
        if policy == .lfu { frequency.pointer[i] = 0 }
        reference.pointer[i] = 0
        _ = touch(s)
    }

    mutating func markDirty(_ s: Int32) {
        if dirty.pointer[Int(s)] == 0 { dirty.pointer[Int(s)] = 1; dirtyCount += 1 }
    }

    mutating func markClean(_ s: Int32) {
        if dirty.pointer[Int(s)] != 0 { dirty.pointer[Int(s)] = 0; dirtyCount -= 1 }
    }

    /// Forgets every row (their values are being replaced).
    mutating func clear() {
        map.removeAll()
        slotID.pointer.update(repeating: -1, count: capacity)
        dirty.pointer.update(repeating: 0, count: capacity)
        pinned.pointer.update(repeating: 0, count: capacity)
        dirtyCount = 0
        free = (0..<Int32(capacity)).reversed().map { $0 }
        head = -1; tail = -1
    }

    // LRU list.
    private mutating func unlink(_ s: Int32) {
        let p = previous.pointer[Int(s)], n = next.pointer[Int(s)]
        if p >= 0 { next.pointer[Int(p)] = n } else { head = n }
        if n >= 0 { previous.pointer[Int(n)] = p } else { tail = p }
    }

    private mutating func pushHead(_ s: Int32) {
        previous.pointer[Int(s)] = -1
        next.pointer[Int(s)] = head
        if head >= 0 { previous.pointer[Int(head)] = s }
        head = s
        if tail < 0 { tail = s }
    }

    private mutating func moveToHead(_ s: Int32) {
        guard head != s, slotID.pointer[Int(s)] >= 0 else { return }
        unlink(s)
        pushHead(s)
    }
}
