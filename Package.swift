// swift-tools-version:6.0
// RecKit: a CPU recommendation engine. Module graph (one-way):
//   RecKitCore ← RecKitKernels ← RecKitBenchmarks ← reckit (CLI);  RecKitCore ← RecKitData ← reckit
//   CRecKitShims, CBLAS, CDNNL: thin C / system-library targets used only by RecKitKernels (CDNNL: oneDNN bf16, dlopen'ed).
import PackageDescription

/// Release builds get `-target-cpu` from `scripts/build.sh` on the command line, never here:
/// `unsafeFlags` would forbid using RecKit as a dependency, and plain `swift build`/`swift test` must work.
let package = Package(
    name: "RecKit",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "reckit", targets: ["reckit"]),
        .library(name: "RecKitCore", targets: ["RecKitCore"]),
        .library(name: "RecKitKernels", targets: ["RecKitKernels"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .target(name: "RecKitCore", exclude: ["README.md"]),
        .target(name: "CRecKitShims", exclude: ["README.md"]),
        .systemLibrary(name: "CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CDNNL", exclude: ["README.md"], linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "RecKitKernels", dependencies: ["RecKitCore", "CRecKitShims", "CBLAS", "CDNNL"], exclude: ["README.md"]),
        .target(name: "RecKitEmbeddings", dependencies: ["RecKitCore", "RecKitKernels"], exclude: ["README.md"]),
        .target(name: "RecKitData", dependencies: ["RecKitCore", "CRecKitShims"], exclude: ["README.md"]),
        .target(name: "RecKitCarbon", exclude: ["README.md"]),
        .target(name: "RecKitModels", dependencies: ["RecKitCore", "RecKitKernels", "RecKitEmbeddings"], exclude: ["README.md"]),
        .target(name: "RecKitCheckpoint", dependencies: ["RecKitCore", "RecKitKernels", "RecKitEmbeddings", "RecKitModels", "RecKitData", "CRecKitShims"],
                exclude: ["README.md"]),
        .target(name: "RecKitTraining", dependencies: ["RecKitCore", "RecKitKernels", "RecKitEmbeddings", "RecKitModels", "RecKitData", "RecKitCheckpoint", "CRecKitShims"],
                exclude: ["README.md"]),
        // Serving: batching, preprocessing and the inference thread (no HTTP), then the Hummingbird server on top.
        .target(name: "RecKitServing", dependencies: ["RecKitCore", "RecKitKernels", "RecKitData", "RecKitModels", "RecKitCheckpoint"],
                exclude: ["README.md"]),
        .target(
            name: "RecKitServer",
            dependencies: ["RecKitServing", "RecKitCarbon",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Metrics", package: "swift-metrics"),
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "Logging", package: "swift-log")],
            exclude: ["README.md"]
        ),
        .target(
            name: "RecKitBenchmarks",
            dependencies: ["RecKitCore", "RecKitKernels", "RecKitData", "RecKitModels", "RecKitTraining", "RecKitCarbon",
                           "RecKitServing", "RecKitServer", .product(name: "Logging", package: "swift-log")],
            exclude: ["README.md"]
        ),
        .executableTarget(
            name: "reckit",
            dependencies: [
                "RecKitCore", "RecKitKernels", "RecKitData", "RecKitCarbon", "RecKitBenchmarks", "RecKitModels", "RecKitTraining",
                "RecKitServing", "RecKitServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "RecKitTestSupport", dependencies: ["RecKitCore"], path: "Tests/RecKitTestSupport"),
        .testTarget(name: "RecKitCoreTests", dependencies: ["RecKitCore", "RecKitTestSupport"]),
        .testTarget(
            name: "RecKitKernelsTests",
            dependencies: ["RecKitKernels", "RecKitCore", "RecKitTestSupport", "CRecKitShims"]
        ),
        .testTarget(name: "RecKitEmbeddingsTests", dependencies: ["RecKitEmbeddings", "RecKitModels", "RecKitKernels", "RecKitCore", "RecKitTestSupport"]),
        .testTarget(name: "RecKitCheckpointTests", dependencies: ["RecKitCheckpoint", "RecKitModels", "RecKitEmbeddings", "RecKitKernels",
                                                                  "RecKitData", "RecKitCore", "RecKitTestSupport", "CRecKitShims"]),
        .testTarget(name: "RecKitDataTests", dependencies: ["RecKitData", "RecKitCore", "RecKitTestSupport"]),
        .testTarget(name: "RecKitCarbonTests", dependencies: ["RecKitCarbon", "RecKitTestSupport"]),
        .testTarget(name: "RecKitModelsTests", dependencies: ["RecKitModels", "RecKitEmbeddings", "RecKitKernels", "RecKitCore", "RecKitTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "IntegrationTests", dependencies: ["RecKitData", "RecKitModels", "RecKitKernels", "RecKitCore"]),
        .testTarget(name: "RecKitTrainingTests", dependencies: ["RecKitTraining", "RecKitCheckpoint", "RecKitEmbeddings", "RecKitModels", "RecKitData",
                                                                "RecKitKernels", "RecKitCore", "RecKitTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ReckitCLITests", dependencies: ["reckit"]),
        .testTarget(name: "RecKitServingTests", dependencies: ["RecKitServing", "RecKitServer", "RecKitData", "RecKitModels", "RecKitEmbeddings", "RecKitCheckpoint",
                                                               "RecKitTraining", "RecKitCore", "RecKitKernels", "RecKitTestSupport",
                                                               .product(name: "HummingbirdTesting", package: "hummingbird")]),
    ]
)
