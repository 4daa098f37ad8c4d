import Foundation
import Logging
import RecKitCore
import RecKitKernels

/// Fits a CF model from interaction files, with the λ search on a validation split (`--lambda auto`).
public enum CFFit {
    public struct Options: Sendable {
        public var kind: CFModelKind
        /// λ for EASE / ∞-AE; nil = the model's default.
        public var lambda: Float?
        /// Search λ over `grid` on the validation split (nDCG@10, context = train).
        public var autoLambda = false
        public var grid: [Float]?
        public var bpr = BPRModel.Options()
        /// Use the rating column as each entry's value (a soft Distill-CF summary) instead of 1 (EASE and ∞-AE
        /// read the values; popularity and BPR-MF count interactions).
        public var weighted = false
        public init(kind: CFModelKind) { self.kind = kind }
    }

    /// Defaults chosen on ML-1M (∞-AE split, validation nDCG@10; docs/cf.md) — EASE λ and ∞-AE's λ·tr(K)/U.
    public static func defaultLambda(_ kind: CFModelKind) -> Float { kind == .ease ? 800 : 5 }
    /// The `--lambda auto` grids: EASE's λ is an absolute ridge, ∞-AE's is relative to the mean kernel diagonal.
    public static func defaultGrid(_ kind: CFModelKind) -> [Float] {
        // ∞-AE: down to 0.01 (relative to the mean kernel diagonal) — fit on the full ML-1M data the best λ is 5,
        // but small or soft data (Distill-CF summaries) are best fit with λ ≤ 0.5.
        kind == .ease ? [50, 100, 200, 300, 500, 800, 1200, 2000, 4000] : [0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 1, 2, 3, 5, 8, 12, 20, 50]
    }

    public struct Report: Sendable, Encodable {
        public var model: String
        public var lambda: Double?
        public var users: Int
        public var items: Int
        public var interactions: Int
        public var fitSeconds: Double
        /// λ tried and their validation nDCG@10 (auto search only).
        public var search: [SearchPoint]
        /// Validation metrics of the chosen model (when a validation file was given).
        public var validation: RankingEvaluation.Result?

        public struct SearchPoint: Sendable, Encodable {
            public var lambda: Double
            public var ndcg10: Double
            enum CodingKeys: String, CodingKey { case lambda; case ndcg10 = "ndcg@10" }
        }
        enum CodingKeys: String, CodingKey {
            case model, lambda, users, items, interactions, search, validation
            case fitSeconds = "fit_seconds"
        }
    }

    /// The λ search of `--lambda auto` (EASE or ∞-AE): fits `kind` on `train` for every λ of `grid`, the Gram / kernel
    /// matrix computed once (it does not depend on λ), scores each on `valid` (nDCG@10, `context` excluded from the
    /// ranking) and returns the best. A λ too small for the factorization in fp32 is skipped with a warning, not
    /// fatal; `each(step, λ, nDCG@10)` is called for every λ fitted.
    public static func searchLambda(_ kind: CFModelKind, train: InteractionMatrix, users: IDMap, items: IDMap, context: Interactions,
                                    valid: Interactions, grid: [Float], algebra: DenseAlgebra, pool: ThreadPool, logger: Logger,
                                    each: (Int, Float, Double) -> Void = { _, _, _ in }) throws(CFError) -> (model: any CFModel, lambda: Float, ndcg10: Double) {
        guard kind == .ease || kind == .infae else { throw .invalidOptions("λ is searched for ease and infae only") }
        let shared = kind == .ease ? try EASEModel.gramMatrix(train, algebra: algebra) : try InfiniteAEModel.kernelMatrix(train, algebra: algebra, pool: pool)
        var best: (model: any CFModel, lambda: Float, ndcg10: Double)?
        var lastFailure: CFError?
        for (step, lambda) in grid.enumerated() {
            let candidate: any CFModel
            do throws(CFError) {
                candidate = kind == .ease
                    ? try EASEModel.fit(gram: shared, train: train, users: users, items: items, lambda: lambda, algebra: algebra)
                    : try InfiniteAEModel.fit(kernel: shared, train: train, users: users, items: items, lambda: lambda, algebra: algebra)
            } catch {
                guard case .numerical = error else { throw error }
                logger.warning("λ \(lambda): \(error); skipped")
                lastFailure = error
                continue
            }
            let ndcg = try RankingEvaluation.evaluate(model: candidate, context: context, test: valid, ks: [10], algebra: algebra, pool: pool)
                .metrics["ndcg@10"] ?? .nan
            each(step, lambda, ndcg)
            if best == nil || ndcg > best!.ndcg10 { best = (candidate, lambda, ndcg) }
        }
        guard let best else { throw lastFailure ?? .invalidOptions("the λ grid is empty") }
        return best
    }

    public static func fit(train events: Interactions, valid: Interactions?, options: Options, algebra: DenseAlgebra, pool: ThreadPool,
                           logger: Logger) throws(CFError) -> (model: any CFModel, report: Report) {
        let users = IDMap(events.users), items = IDMap(events.items)
        let train = InteractionMatrix(events, users: users, items: items, weighted: options.weighted)
        logger.info("fitting \(options.kind.rawValue) on \(users.count) users × \(items.count) items, \(train.nonZeros) interactions")
        let clock = ContinuousClock.now
        var search: [Report.SearchPoint] = []
        var model: any CFModel
        if options.autoLambda && (options.kind == .ease || options.kind == .infae) {
            guard let valid else { throw .invalidOptions("--lambda auto needs --valid FILE") }
            let grid = options.grid ?? defaultGrid(options.kind)
            model = try searchLambda(options.kind, train: train, users: users, items: items, context: events, valid: valid, grid: grid,
                                     algebra: algebra, pool: pool, logger: logger) { step, lambda, ndcg in
                search.append(.init(lambda: Double(lambda), ndcg10: ndcg))
                let elapsed = (ContinuousClock.now - clock).seconds
                logger.info("λ \(lambda): validation nDCG@10 \(String(format: "%.4f", ndcg)) [\(step + 1)/\(grid.count), \(String(format: "%.1f", elapsed)) s, ETA \(String(format: "%.0f", elapsed / Double(step + 1) * Double(grid.count - step - 1))) s]")
            }.model
        } else {
            switch options.kind {
            case .pop: model = PopularityModel(train: train, users: users, items: items)
            case .ease: model = try EASEModel.fit(train: train, users: users, items: items, lambda: options.lambda ?? defaultLambda(.ease), algebra: algebra)
            case .infae: model = try InfiniteAEModel.fit(train: train, users: users, items: items, lambda: options.lambda ?? defaultLambda(.infae),
                                                         algebra: algebra, pool: pool)
            case .bpr:
                var seen = 0
                model = try BPRModel.fit(train: train, users: users, items: items, options: options.bpr) { epoch, _, _ in
                    seen = epoch + 1
                    if seen % 5 == 0 || seen == options.bpr.epochs {
                        let elapsed = (ContinuousClock.now - clock).seconds
                        logger.info("BPR epoch \(seen)/\(options.bpr.epochs), \(String(format: "%.1f", elapsed)) s, ETA \(String(format: "%.0f", elapsed / Double(seen) * Double(options.bpr.epochs - seen))) s")
                    }
                }
            }
        }
        let seconds = (ContinuousClock.now - clock).seconds
        let validation = try valid.map { v throws(CFError) in
            try RankingEvaluation.evaluate(model: model, context: events, test: v, ks: [10, 20, 100], algebra: algebra, pool: pool)
        }
        let report = Report(model: options.kind.rawValue, lambda: model.hyperparameters["lambda"], users: users.count, items: items.count,
                            interactions: train.nonZeros, fitSeconds: seconds, search: search, validation: validation)
        return (model, report)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
