import RecKitEmbeddings
import RecKitKernels

/// DLRM's architecture (Naumov et al. 2019; the reference `dlrm_s_pytorch.py`).
public struct DLRMConfig: ModelConfiguration, Equatable {
    public static let kind = ModelKind.dlrm
    public var denseCount: Int
    public var sparse: [SparseFeatureSpec]
    public var embeddingDim: Int
    /// Bottom MLP hidden sizes; its input is `denseCount`, its output `embeddingDim`.
    public var bottomHidden: [Int]
    /// Top MLP hidden sizes; its input is D + P, its output 1 logit.
    public var topHidden: [Int]
    public var includeDiagonal = false

    public init(denseCount: Int, sparse: [SparseFeatureSpec], embeddingDim: Int, bottomHidden: [Int], topHidden: [Int],
                includeDiagonal: Bool = false) {
        self.denseCount = denseCount; self.sparse = sparse; self.embeddingDim = embeddingDim
        self.bottomHidden = bottomHidden; self.topHidden = topHidden; self.includeDiagonal = includeDiagonal
    }

    /// Features named C1…Cn.
    public init(denseCount: Int, tableSizes: [Int], embeddingDim: Int, bottomHidden: [Int], topHidden: [Int],
                includeDiagonal: Bool = false) {
        self.init(denseCount: denseCount, sparse: SparseFeatureSpec.criteo(tableSizes), embeddingDim: embeddingDim,
                  bottomHidden: bottomHidden, topHidden: topHidden, includeDiagonal: includeDiagonal)
    }

    /// The Criteo Kaggle reference config: dim 16, bottom 13-512-256-64-16, top 367-512-256-1.
    public static func criteoKaggle(tableSizes: [Int]) -> DLRMConfig {
        DLRMConfig(denseCount: 13, tableSizes: tableSizes, embeddingDim: 16, bottomHidden: [512, 256, 64], topHidden: [512, 256])
    }

    /// F = 1 + T interacting vectors.
    public var vectorCount: Int { 1 + sparse.count }
    /// D + P, the top MLP's input width.
    public var interactionWidth: Int {
        DotInteraction(vectorCount: vectorCount, dim: embeddingDim, includeDiagonal: includeDiagonal).outputWidth
    }

    public func validate() throws(ModelError) {
        try validateFeatures(dim: embeddingDim)
        try validateHidden(bottomHidden, "bottom MLP")
        try validateHidden(topHidden, "top MLP")
        guard sparse.count <= 4096 else { throw .config("\(sparse.count) sparse features: DLRM's interaction is quadratic, at most 4096") }
    }

    public var embeddingTables: [(collection: String, spec: EmbeddingTableSpec)] {
        tables(dim: embeddingDim).map { ("embeddings", $0) }
    }

    public func makeModel(initialization: ModelInitialization, sparseOptimizer: SparseOptimizerKind?,
                          quantization: QuantizedDType?, storage: (any RowStorageProvider)?) throws(ModelError) -> any CTRModel {
        try DLRM(config: self, initialization: initialization, sparseOptimizer: sparseOptimizer, quantization: quantization, storage: storage)
    }
}
