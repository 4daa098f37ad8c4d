import RecKitCore
import RecKitKernels

/// The collaborative-filtering models RecKit fits.
public enum CFModelKind: String, Codable, Sendable, CaseIterable {
    /// Item popularity in the training data (the same ranking for every user).
    case pop
    /// EASE (Steck, WWW 2019): closed-form item–item linear autoencoder.
    case ease
    /// ∞-AE (Sachdeva et al., NeurIPS 2022): kernel ridge regression with an infinitely wide autoencoder's NTK.
    case infae
    /// BPR-MF (Rendle et al., UAI 2009): matrix factorization trained with the pairwise BPR loss.
    case bpr
}

/// A fitted CF model: scores every item for a user given that user's context (the items they interacted with).
///
/// Notation: U training users, I items, B users scored at once.
public protocol CFModel: Sendable {
    var kind: CFModelKind { get }
    /// Training users (raw ids) and items (raw ids); scores are over `items`.
    var users: IDMap { get }
    var items: IDMap { get }
    /// Training interactions per item [I] (popularity; the PSP metric's propensities come from it).
    var itemCounts: [Int] { get }
    /// Hyper-parameters worth reporting (e.g. `lambda`).
    var hyperparameters: [String: Double] { get }

    /// Scores [rows.count × I] for rows `rows` of `context` (a matrix over `items`); `userIndex[k]` is the
    /// training-user index of row `rows.lowerBound + k`, or −1 for a user unseen in training.
    func score(context: InteractionMatrix, rows: Range<Int>, userIndex: [Int32], into out: UnsafeMutablePointer<Float>,
               algebra: DenseAlgebra, pool: ThreadPool) throws(CFError)

    /// The model's named tensors (for `CFModelFile`).
    func tensors() -> [CFTensor]
}

/// Item popularity: score(u, i) = number of training users of item i.
public struct PopularityModel: CFModel {
    public let kind = CFModelKind.pop
    public let users: IDMap
    public let items: IDMap
    public let itemCounts: [Int]
    public var hyperparameters: [String: Double] { [:] }

    public init(train: InteractionMatrix, users: IDMap, items: IDMap) {
        self.users = users; self.items = items; itemCounts = train.columnCounts()
    }

    init(users: IDMap, items: IDMap, itemCounts: [Int]) { self.users = users; self.items = items; self.itemCounts = itemCounts }

    public func score(context: InteractionMatrix, rows: Range<Int>, userIndex: [Int32], into out: UnsafeMutablePointer<Float>,
                      algebra: DenseAlgebra, pool: ThreadPool) throws(CFError) {
        let pop = itemCounts.map(Float.init)
        for k in 0..<rows.count { (out + k * pop.count).update(from: pop, count: pop.count) }
    }

    public func tensors() -> [CFTensor] { [] }
}
