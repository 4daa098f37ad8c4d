import RecKitCore
import RecKitKernels

/// DLRM's pairwise dot interaction of F vectors of dimension D (see `InteractionArguments`): the output is the
/// first (dense) vector followed by the P dot products ⟨v_i, v_j⟩, i > j (i ≥ j with the diagonal). No parameters.
public struct DotInteraction: Sendable {
    public let vectorCount: Int
    public let dim: Int
    public let includeDiagonal: Bool

    public init(vectorCount: Int, dim: Int, includeDiagonal: Bool) {
        self.vectorCount = vectorCount; self.dim = dim; self.includeDiagonal = includeDiagonal
    }

    /// D + P.
    public var outputWidth: Int {
        let f = vectorCount
        return dim + (includeDiagonal ? f * (f + 1) / 2 : f * (f - 1) / 2)
    }

    /// output (B × (D + P)) from features (B × F·D).
    public func forward(_ features: MatrixView, output: MatrixView, pool: ThreadPool) throws(KernelError) {
        try Kernels.interactionForward(arguments(features), output: output, pool: pool)
    }

    /// gradFeatures (B × F·D) from gradOutput (B × (D + P)) and the forward's features.
    public func backward(_ features: MatrixView, gradOutput: MatrixView, gradFeatures: MatrixView, pool: ThreadPool) throws(KernelError) {
        try Kernels.interactionBackward(arguments(features), gradOutput: gradOutput, gradFeatures: gradFeatures, pool: pool)
    }

    func arguments(_ features: MatrixView) -> InteractionArguments {
        InteractionArguments(features: features, vectorCount: vectorCount, dim: dim, includeDiagonal: includeDiagonal)
    }
}
