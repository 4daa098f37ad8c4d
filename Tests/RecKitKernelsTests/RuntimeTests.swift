import RecKitCore
@testable import RecKitKernels
import RecKitTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Per-task hit counters (each task owns its slot; a duplicate run shows up as a count of 2).
final class Counter: @unchecked Sendable {
    let slots: AlignedBuffer<Int>
    init(_ n: Int) { slots = AlignedBuffer(count: n) }
    func hit(_ i: Int) { slots.pointer[i] += 1 }
    var allOnce: Bool { slots.toArray().allSatisfy { $0 == 1 } }
}

@Suite("Runtime: thread pool, CPU features, OpenBLAS loading, registry")
struct RuntimeTests {
    @Test("parallelFor runs every task exactly once, for many regions and sizes", arguments: [1, 2, 3, 4])
    func parallelForCoverage(threads: Int) {
        let pool = ThreadPool(threads: threads)
        for n in [0, 1, 2, 3, 7, 64, 1000] {
            for _ in 0..<50 {
                let c = Counter(n)
                pool.parallelFor(n) { c.hit($0) }
                #expect(c.allOnce)
            }
        }
    }

    @Test("slots are in range and never shared by two tasks running at once", arguments: [1, 2, 3])
    func slots(threads: Int) {
        let pool = ThreadPool(threads: threads)
        let inUse = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: threads)
        for i in 0..<threads { (inUse + i).initialize(to: Atomic(0)) }
        defer { inUse.deinitialize(count: threads); inUse.deallocate() }
        let clashes = Atomic<Int>(0), outOfRange = Atomic<Int>(0)
        for _ in 0..<20 {
            let c = Counter(100)
            pool.parallelFor(100) { (task: Int, slot: Int) in
                guard slot >= 0 && slot < threads else { outOfRange.add(1, ordering: .relaxed); return }
                if inUse[slot].add(1, ordering: .acquiringAndReleasing).newValue != 1 { clashes.add(1, ordering: .relaxed) }
                var x = 0
                for k in 0..<(task % 7) * 200 { x &+= k }  // uneven tasks, so threads overlap in varied ways
                c.slots.pointer[task] += 1 + (x == -1 ? 1 : 0)
                inUse[slot].subtract(1, ordering: .acquiringAndReleasing)
            }
            #expect(c.allOnce)
        }
        #expect(clashes.load(ordering: .relaxed) == 0)
        #expect(outOfRange.load(ordering: .relaxed) == 0)
    }

    @Test("nested parallelFor runs serially instead of deadlocking")
    func nested() {
        let pool = ThreadPool(threads: 2)
        let c = Counter(16)
        pool.parallelFor(4) { i in pool.parallelFor(4) { j in c.hit(i * 4 + j) } }
        #expect(c.allOnce)
    }

    @Test("pools are created and torn down cleanly (workers joined, including sleeping ones)")
    func lifecycle() {
        for i in 0..<20 {
            let pool = ThreadPool(threads: 3)
            if i % 5 == 0 { usleep(10_000) }  // let workers reach the sleeping state
            let c = Counter(8)
            pool.parallelFor(8) { c.hit($0) }
            #expect(c.allOnce)
        }
    }

    @Test("split gives contiguous, covering, balanced ranges")
    func split() {
        for total in [0, 1, 5, 100] {
            for parts in [1, 2, 3, 8, 200] {
                let r = ThreadPool.split(total, into: parts)
                #expect(r.first?.lowerBound == 0 && r.last?.upperBound == total)
                for (a, b) in zip(r, r.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
                let sizes = r.map(\.count)
                #expect(sizes.max()! - sizes.min()! <= 1)
            }
        }
    }

    @Test("OpenBLAS core type: the user's OPENBLAS_CORETYPE wins; otherwise a correct AVX kernel, never Prescott on AVX-512")
    func openBLASCoreType() throws {
        let userValue = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        let blas = try BLASRuntime.shared.get()
        if let userValue {
            #expect(blas.coreTypeFromUser)
            #expect(blas.requestedCoreType == userValue)
        } else {
            #expect(!blas.coreTypeFromUser)
            #expect(getenv("OPENBLAS_CORETYPE") == nil, "RecKit must not leave the variable set")
            if let expected = CPUFeatures.host.openBLASCoreType {
                #expect(blas.coreName.lowercased() == expected.lowercased(), "OpenBLAS chose \(blas.coreName), config \(blas.config)")
                #expect(blas.coreName.lowercased() != "prescott")
            }
        }
        #expect(blas.threads == 1, "OpenBLAS must run single-threaded inside RecKit's pool")
    }

    @Test("core type mapping from CPU features")
    func coreTypeMapping() {
        var f = CPUFeatures()
        #expect(f.openBLASCoreType == nil)
        f.avx2 = true; f.fma = true
        #expect(f.openBLASCoreType == "Haswell")
        f.avx512f = true; f.avx512bw = true; f.avx512dq = true; f.avx512vl = true
        #expect(f.openBLASCoreType == "SkylakeX")
        f.avx512bf16 = true
        #expect(f.openBLASCoreType == "Cooperlake")
    }

    @Test("registry: one entry per kernel, both variants present, environment selects the path")
    func registry() {
        let names = KernelRegistry.catalogue.map(\.name)
        #expect(Set(names).count == names.count && names.count == 18)
        for n in ["bf16_gemm", "linear_forward_bf16", "linear_backward_bf16", "to_bf16", "from_bf16", "quantized_embedding_bag_forward"] {
            #expect(names.contains(n), "catalogue lacks \(n)")
        }
        let env = getenv(KernelVariant.environmentKey).map { String(cString: $0) }
        #expect(KernelVariant.active == (env?.lowercased() == "reference" ? .reference : .optimized))
    }

    @Test("Kernels.* runs the active variant, and not the other: GEMM and sigmoid give each variant's own bits")
    func dispatchRunsTheActiveVariant() throws {
        // OpenBLAS's blocked, FMA sums and the SIMD exp round differently from the plain loops, so each variant leaves
        // its own fingerprint: the entry point must match the active one bit for bit and differ from the other.
        let pool = ThreadPool(threads: 2)
        var data = TestData(seed: 17)
        let (m, n, k) = (8, 8, 1000)
        let a = data.buffer(m * k), b = data.buffer(k * n)
        func gemm(_ run: (GEMMArguments) throws -> Void) rethrows -> [UInt32] {
            let c = AlignedBuffer<Float>(count: m * n)
            try run(GEMMArguments(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: c.pointer, ldc: n))
            return c.toArray().map(\.bitPattern)
        }
        let viaAPI = try gemm { try Kernels.gemm($0, pool: pool) }
        let active = gemm { KernelRegistry.gemm.active($0, pool) }
        let other = gemm { KernelRegistry.gemm.variant(KernelVariant.active == .reference ? .optimized : .reference)($0, pool) }
        #expect(active != other, "the variants must differ on this input for the test to tell them apart")
        #expect(viaAPI == active, "Kernels.gemm did not run the \(KernelVariant.active) variant")
        // The linear layer (packed micro-kernel vs plain loops), the same way.
        let (rows, inF, outF) = (70, 600, 37)
        let x = data.buffer(rows * inF), w = data.buffer(outF * inF), bias = data.buffer(outF)
        func linear(_ run: (LinearForwardArguments) throws -> Void) rethrows -> [UInt32] {
            let y = AlignedBuffer<Float>(count: rows * outF)
            try run(LinearForwardArguments(input: MatrixView(base: x.pointer, rows: rows, columns: inF), weight: w.pointer, bias: bias.pointer,
                                           output: MatrixView(base: y.pointer, rows: rows, columns: outF), activation: .relu))
            return y.toArray().map(\.bitPattern)
        }
        let apiY = try linear { try Kernels.linearForward($0, pool: pool) }
        let otherY = linear { KernelRegistry.linearForward.variant(KernelVariant.active == .reference ? .optimized : .reference)($0, pool) }
        #expect(apiY == linear { KernelRegistry.linearForward.active($0, pool) })
        #expect(apiY != otherY, "linear: the entry point ran the other variant (or they agree)")
    }

    @Test("Kernels.* dispatch agrees with the active variant of the registry")
    func dispatch() throws {
        let pool = ThreadPool(threads: 2)
        let c = BagCase(seed: 3, rows: 40, dim: 16, bags: 30, maxLength: 4)
        let viaAPI = AlignedBuffer<Float>(count: 30 * 16)
        try c.withBags(useOffsets: true) { bags in
            try Kernels.embeddingBagForward(table: c.view, bags: bags, mode: .sum,
                                            output: MatrixView(base: viaAPI.pointer, rows: 30, columns: 16), pool: pool)
        }
        let direct = runForward(KernelVariant.active, c, mode: .sum, useOffsets: true, pool: pool)
        assertClose(viaAPI.toArray(), direct.out, .exact, "dispatch")
    }
}
