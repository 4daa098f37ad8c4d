// swift-tools-version:6.0
// RecKit: a CPU recommendation engine. The module graph is the `modules` table below (one-way dependencies);
// README.md's module map is generated from it, and a test fails when the two differ.
import PackageDescription

// RecKit builds on Linux only: it uses Glibc, and Debian's OpenBLAS, oneDNN and Open MPI (scripts/bootstrap.sh).
#if !os(Linux)
fatalError("RecKit builds on Linux only (Glibc; Debian's OpenBLAS and oneDNN): see README.md")
#endif

/// Every RecKit library module with the RecKit modules it depends on (lower layers first) and its external
/// dependencies (package products). Each one is also a product other packages can depend on.
let modules: [(name: String, dependencies: [String], external: [String])] = [
    ("RecKitCore", [], []),
    ("RecKitKernels", ["RecKitCore", "CRecKitShims", "CBLAS", "CDNNL"], []),
    ("RecKitEmbeddings", ["RecKitCore", "RecKitKernels"], []),
    ("RecKitData", ["RecKitCore", "CRecKitShims"], ["Crypto"]),
    ("RecKitCarbon", [], []),
    ("RecKitCF", ["RecKitCore", "RecKitKernels", "RecKitData", "CBLAS", "CRecKitShims"], ["Logging"]),
    ("RecKitModels", ["RecKitCore", "RecKitKernels", "RecKitEmbeddings"], []),
    ("RecKitTiered", ["RecKitCore", "RecKitKernels", "RecKitEmbeddings", "RecKitData", "CLibURing", "CRecKitShims"], []),
    ("RecKitCheckpoint", ["RecKitCore", "RecKitKernels", "RecKitEmbeddings", "RecKitModels", "RecKitData", "CRecKitShims"], []),
    ("RecKitTraining", ["RecKitCore", "RecKitKernels", "RecKitEmbeddings", "RecKitModels", "RecKitData", "RecKitCheckpoint", "RecKitTiered",
                        "CRecKitShims"], []),
    ("RecKitExperiments", ["RecKitCore", "RecKitModels", "RecKitTraining", "RecKitCarbon", "CRecKitShims"], []),
    ("RecKitDistributed", ["RecKitCore", "RecKitKernels", "RecKitEmbeddings", "RecKitModels", "RecKitData", "RecKitCheckpoint", "RecKitTraining",
                           "CMPI"], []),
    ("RecKitServing", ["RecKitCore", "RecKitKernels", "RecKitEmbeddings", "RecKitData", "RecKitModels", "RecKitCheckpoint", "RecKitTiered"], []),
    ("RecKitServer", ["RecKitServing", "RecKitCarbon"], ["Hummingbird", "Metrics", "Prometheus", "ServiceLifecycle", "Logging"]),
    ("RecKitBenchmarks", ["RecKitCore", "RecKitKernels", "RecKitEmbeddings", "RecKitData", "RecKitModels", "RecKitTiered", "RecKitTraining", "RecKitCarbon", "RecKitServing", "CBLAS",
                          "RecKitServer"], ["Logging"]),
]

/// The package each external product comes from.
let externalPackage = [
    "Hummingbird": "hummingbird", "HummingbirdTesting": "hummingbird", "Metrics": "swift-metrics", "Prometheus": "swift-prometheus",
    "ServiceLifecycle": "swift-service-lifecycle", "Crypto": "swift-crypto", "Logging": "swift-log", "ArgumentParser": "swift-argument-parser",
]

func dependencies(_ local: [String], _ external: [String]) -> [Target.Dependency] {
    local.map { .target(name: $0) } + external.map { .product(name: $0, package: externalPackage[$0]!) }
}

/// Release builds get `-target-cpu` from `scripts/build.sh` on the command line, never here:
/// `unsafeFlags` would forbid using RecKit as a dependency, and plain `swift build`/`swift test` must work.
let package = Package(
    name: "RecKit",
    products: [.executable(name: "reckit", targets: ["reckit"])]
        + modules.map { .library(name: $0.name, targets: [$0.name]) },
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // SHA-256 for Croissant checksums (RecKitData): Apple's swift-crypto (already in the graph through swift-nio-ssl/Hummingbird).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
    ],
    targets: [
        // Thin C / system-library targets, used only where named in `modules`.
        .target(name: "CRecKitShims", exclude: ["README.md"]),
        .systemLibrary(name: "CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLibURing", pkgConfig: "liburing", providers: [.apt(["liburing-dev"])]),
        .target(name: "CDNNL", exclude: ["README.md"], linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "CMPI", exclude: ["README.md"], linkerSettings: [.linkedLibrary("dl")]),
    ] + modules.map { .target(name: $0.name, dependencies: dependencies($0.dependencies, $0.external), exclude: ["README.md"]) } + [
        .executableTarget(
            name: "reckit",
            dependencies: dependencies(["RecKitCore", "RecKitKernels", "RecKitData", "RecKitCarbon", "RecKitBenchmarks", "RecKitModels",
                                        "RecKitEmbeddings", "RecKitCheckpoint", "RecKitTraining", "RecKitServing", "RecKitServer", "RecKitTiered", "RecKitCF", "RecKitExperiments", "RecKitDistributed"],
                                       ["ArgumentParser", "Logging"])
        ),
        .target(name: "RecKitTestSupport", dependencies: ["RecKitCore"], path: "Tests/RecKitTestSupport"),
        .testTarget(name: "RecKitCoreTests", dependencies: ["RecKitCore", "RecKitTestSupport"]),
        .testTarget(name: "RecKitKernelsTests", dependencies: ["RecKitKernels", "RecKitCore", "RecKitTestSupport", "CRecKitShims"]),
        .testTarget(name: "RecKitEmbeddingsTests", dependencies: ["RecKitEmbeddings", "RecKitModels", "RecKitKernels", "RecKitCore", "RecKitTestSupport"]),
        .testTarget(name: "RecKitCheckpointTests", dependencies: ["RecKitCheckpoint", "RecKitModels", "RecKitEmbeddings", "RecKitKernels",
                                                                  "RecKitData", "RecKitCore", "RecKitTestSupport", "CRecKitShims"]),
        .testTarget(name: "RecKitTieredTests", dependencies: ["RecKitTiered", "RecKitEmbeddings", "RecKitKernels", "RecKitCore", "RecKitTestSupport"]),
        .testTarget(name: "RecKitDataTests", dependencies: ["RecKitData", "RecKitCore", "RecKitTestSupport"]),
        .testTarget(name: "RecKitCFTests", dependencies: ["RecKitCF", "RecKitData", "RecKitKernels", "RecKitCore", "RecKitTestSupport"]),
        .testTarget(name: "RecKitExperimentsTests", dependencies: ["RecKitExperiments", "RecKitTraining", "RecKitModels", "RecKitData",
                                                                   "RecKitCarbon", "RecKitCore", "RecKitTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "RecKitDistributedTests", dependencies: ["RecKitDistributed", "RecKitTraining", "RecKitModels", "RecKitEmbeddings",
                                                                   "RecKitCheckpoint", "RecKitData", "RecKitKernels", "RecKitCore", "RecKitTestSupport"]),
        .testTarget(name: "RecKitCarbonTests", dependencies: ["RecKitCarbon", "RecKitTestSupport"]),
        .testTarget(name: "RecKitModelsTests", dependencies: ["RecKitModels", "RecKitEmbeddings", "RecKitKernels", "RecKitTraining", "RecKitCore",
                                                              "RecKitTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "IntegrationTests", dependencies: ["RecKitData", "RecKitModels", "RecKitKernels", "RecKitCore"]),
        .testTarget(name: "RecKitTrainingTests", dependencies: ["RecKitTraining", "RecKitCheckpoint", "RecKitEmbeddings", "RecKitModels", "RecKitData", "RecKitTiered",
                                                                "RecKitKernels", "RecKitCore", "RecKitTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ReckitCLITests", dependencies: ["reckit", "RecKitCore"]),
        .testTarget(name: "RecKitServingTests", dependencies: dependencies(
            ["RecKitServing", "RecKitServer", "RecKitData", "RecKitModels", "RecKitEmbeddings", "RecKitCheckpoint", "RecKitTraining", "RecKitCore",
             "RecKitKernels", "RecKitBenchmarks", "RecKitTiered", "RecKitTestSupport"], ["HummingbirdTesting"])),
    ]
)
