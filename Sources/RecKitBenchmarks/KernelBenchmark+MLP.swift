import CBLAS
import RecKitCore
import RecKitKernels

/// One fully connected layer's buffers for the MLP benchmark.
struct BenchLayer {
    let inFeatures: Int, outFeatures: Int
    let activation: Activation
    let needsGradInput: Bool
    let weight: AlignedBuffer<Float>, bias: AlignedBuffer<Float>
    let gradWeight: AlignedBuffer<Float>, gradBias: AlignedBuffer<Float>
    let output: AlignedBuffer<Float>, gradOutput: AlignedBuffer<Float>

    init(_ k: Int, _ n: Int, batch: Int, activation: Activation, needsGradInput: Bool, rng: inout SeededRandom) {
        inFeatures = k; outFeatures = n
        self.activation = activation
        self.needsGradInput = needsGradInput
        let scale = (2 / Float(k)).squareRoot()
        weight = AlignedBuffer((0..<(n * k)).map { _ in (rng.nextUniform() * 2 - 1) * scale })
        bias = AlignedBuffer(count: n)
        gradWeight = AlignedBuffer(count: n * k)
        gradBias = AlignedBuffer(count: n)
        output = AlignedBuffer(count: batch * n)
        gradOutput = AlignedBuffer(count: batch * n)
    }

    /// GEMM multiply-adds ×2 of forward and backward at batch `m`.
    func flops(m: Int) -> (forward: Double, backward: Double) {
        let f = 2.0 * Double(m) * Double(inFeatures) * Double(outFeatures)
        return (f, needsGradInput ? 2 * f : f)
    }
}

/// A stack of layers run forward then backward through `Kernels` (what a model does, minus the model).
struct BenchMLP {
    let layers: [BenchLayer]
    let input: AlignedBuffer<Float>
    let gradInput: AlignedBuffer<Float>
    let batch: Int

    init(sizes: [Int], batch: Int, lastActivation: Activation, gradInputOfFirst: Bool, rng: inout SeededRandom) {
        var ls: [BenchLayer] = []
        for i in 0..<(sizes.count - 1) {
            let last = i == sizes.count - 2
            ls.append(BenchLayer(sizes[i], sizes[i + 1], batch: batch, activation: last ? lastActivation : .relu,
                                 needsGradInput: i > 0 || gradInputOfFirst, rng: &rng))
        }
        layers = ls
        self.batch = batch
        input = AlignedBuffer((0..<(batch * sizes[0])).map { _ in rng.nextUniform() })
        gradInput = AlignedBuffer(count: batch * sizes[0])
    }

    var flops: Double { layers.reduce(0) { $0 + $1.flops(m: batch).forward + $1.flops(m: batch).backward } }

    func inputView(_ i: Int) -> MatrixView {
        i == 0 ? MatrixView(base: input.pointer, rows: batch, columns: layers[0].inFeatures)
            : MatrixView(base: layers[i - 1].output.pointer, rows: batch, columns: layers[i].inFeatures)
    }

    func forward(pool: ThreadPool) throws {
        for (i, l) in layers.enumerated() {
            try Kernels.linearForward(LinearForwardArguments(
                input: inputView(i), weight: l.weight.pointer, bias: l.bias.pointer,
                output: MatrixView(base: l.output.pointer, rows: batch, columns: l.outFeatures), activation: l.activation), pool: pool)
        }
    }

    /// Backward from `layers.last.gradOutput` (filled by the caller) down to the first layer.
    func backward(pool: ThreadPool) throws {
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let l = layers[i]
            let gradIn: MatrixView? = l.needsGradInput
                ? MatrixView(base: i == 0 ? gradInput.pointer : layers[i - 1].gradOutput.pointer, rows: batch, columns: l.inFeatures)
                : nil
            try Kernels.linearBackward(LinearBackwardArguments(
                input: inputView(i), weight: l.weight.pointer,
                output: MatrixView(base: l.output.pointer, rows: batch, columns: l.outFeatures),
                gradOutput: MatrixView(base: l.gradOutput.pointer, rows: batch, columns: l.outFeatures),
                gradInput: gradIn, gradWeight: l.gradWeight.pointer, gradBias: l.gradBias.pointer,
                activation: l.activation), pool: pool)
        }
    }

    /// The same GEMMs as forward + backward, as plain `cblas_sgemm` calls with OpenBLAS's own threads.
    func rawGEMMs(_ blas: BLASRuntime) {
        let m = Int32(batch)
        for (i, l) in layers.enumerated() {
            let x = inputView(i)
            blas.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, Int32(l.outFeatures), Int32(l.inFeatures), 1,
                       x.base, Int32(x.rowStride), l.weight.pointer, Int32(l.inFeatures), 0, l.output.pointer, Int32(l.outFeatures))
        }
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let l = layers[i], x = inputView(i)
            let n = Int32(l.outFeatures), k = Int32(l.inFeatures)
            blas.sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, m, 1, l.gradOutput.pointer, n, x.base,
                       Int32(x.rowStride), 0, l.gradWeight.pointer, k)
            if l.needsGradInput {
                let gx = i == 0 ? gradInput.pointer : layers[i - 1].gradOutput.pointer
                blas.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1, l.gradOutput.pointer, n,
                           l.weight.pointer, k, 0, gx, k)
            }
        }
    }
}
