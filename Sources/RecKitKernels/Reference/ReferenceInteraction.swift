/// Plain-loop twin of the DLRM dot interaction. Dots accumulate in l order with fused multiply-adds (as the
/// optimized kernel's FMA units do), so the forward twins agree bit for bit.
enum ReferenceInteraction {
    static func forward(_ a: InteractionArguments, output: MatrixView, pool: ThreadPool) throws(KernelError) {
        try a.validate(output: output)
        let f = a.vectorCount, d = a.dim
        for b in 0..<a.features.rows {
            let x = a.features.row(b), out = output.row(b)
            for j in 0..<d { out[j] = x[j] }
            var p = d
            for i in 0..<f {
                for j in 0..<(a.includeDiagonal ? i + 1 : i) {
                    var acc: Float = 0
                    for l in 0..<d { acc = acc.addingProduct(x[i * d + l], x[j * d + l]) }
                    out[p] = acc
                    p += 1
                }
            }
        }
    }

    /// gradFeatures = ∂L/∂features given gradOutput = ∂L/∂output (overwrites gradFeatures).
    static func backward(_ a: InteractionArguments, gradOutput: MatrixView, gradFeatures: MatrixView,
                         pool: ThreadPool) throws(KernelError) {
        try a.validate(output: gradOutput)
        guard gradFeatures.rows == a.features.rows, gradFeatures.columns == a.features.columns else {
            throw .shapeMismatch("interaction gradFeatures must match features")
        }
        let f = a.vectorCount, d = a.dim
        for b in 0..<a.features.rows {
            let x = a.features.row(b), go = gradOutput.row(b), gx = gradFeatures.row(b)
            for l in 0..<(f * d) { gx[l] = 0 }
            for l in 0..<d { gx[l] = go[l] }
            var p = d
            for i in 0..<f {
                for j in 0..<(a.includeDiagonal ? i + 1 : i) {
                    let gz = go[p]
                    for l in 0..<d {
                        gx[i * d + l] += gz * x[j * d + l]
                        gx[j * d + l] += gz * x[i * d + l]
                    }
                    p += 1
                }
            }
        }
    }
}
