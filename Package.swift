// swift-tools-version: 6.0
import PackageDescription

// The engine is split along the data flow (see docs/ARCHITECTURE in README):
// Core (tensors, kernels, BLAS) ← IO (checkpoint formats), KV, Pruning ← Models ← Runtime ← CLI.
// On Linux matrix products go through OpenBLAS (found with pkg-config); on
// Apple platforms through Accelerate, picked at compile time in FoveaCore/BLAS.swift.
let blasDependency: [Target.Dependency] = [
    .target(name: "CBLAS", condition: .when(platforms: [.linux]))
]

// With FOVEA_OPTIMISED_DEBUG=1 (scripts/test.sh and scripts/demo.sh set it) the kernels are compiled
// optimised even in debug builds: the tests run real models (SmolLM2, DINOv2, the real-parts LLaVA)
// through them, and unoptimised loops made one fovea-dino-smol question take 3.4× the user CPU time
// (12.5 s against 3.7 s by `time fovea generate`, one scene question). It takes unsafe flags, which
// SwiftPM refuses in a package used as a dependency, so without the variable (an app depending on
// Fovea) there are none: release builds are optimised anyway.
let optimisedDebug = Context.environment["FOVEA_OPTIMISED_DEBUG"] == "1"
let optimisedKernels: [SwiftSetting] = optimisedDebug ? [.unsafeFlags(["-O"], .when(configuration: .debug))] : []
let optimisedC: [CSetting] = optimisedDebug ? [.unsafeFlags(["-O2"], .when(configuration: .debug))] : []

let package = Package(
    name: "Fovea",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Fovea", targets: ["FoveaCore", "FoveaIO", "FoveaKV", "FoveaPruning", "FoveaModels", "FoveaRuntime"]),
        .library(name: "FoveaServer", targets: ["FoveaServer"]),
        .executable(name: "fovea", targets: ["fovea"]),
        // The parsers the fuzzers drive (Fuzz/ builds them with libFuzzer; the tests replay their corpora).
        .library(name: "FoveaFuzzing", targets: ["FoveaFuzzing"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // HeapModule: the priority queue of SentencePiece's score-ordered merges.
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        // fovea serve: the HTTP server, its metrics in Prometheus's format, signal handling, and
        // SHA-256 for the vision-feature cache's keys.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Block-quantised matrix-vector kernels (ggml's Q8_0/Q4_0/Q4_1), intrinsics chosen at run time
        // per function (AVX2, AVX-512 VNNI), a scalar twin for the tests. Optimised in every build.
        .target(name: "CQuant", cSettings: optimisedC),
        .target(name: "FoveaCore", dependencies: blasDependency + ["CQuant"], swiftSettings: optimisedKernels),
        // libpng and libjpeg-turbo (Debian's libpng-dev, libjpeg-dev) behind a small C file that keeps
        // their longjmp error handling away from Swift.
        .target(
            name: "CImageCodecs",
            linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg")]
        ),
        .target(name: "FoveaIO", dependencies: ["FoveaCore", "CImageCodecs", .product(name: "HeapModule", package: "swift-collections")]),
        .target(name: "FoveaKV", dependencies: ["FoveaCore"], swiftSettings: optimisedKernels),
        // Visual-token pruners and in-LLM hooks: small protocols over typed contexts, no model types.
        .target(name: "FoveaPruning", dependencies: ["FoveaCore", "FoveaKV"]),
        .target(name: "FoveaModels", dependencies: ["FoveaCore", "FoveaIO", "FoveaKV", "FoveaPruning"]),
        .target(name: "FoveaRuntime", dependencies: ["FoveaCore", "FoveaIO", "FoveaModels", "FoveaKV", "FoveaPruning"]),
        // The OpenAI-compatible server over the session API (routes, wire types, the inference
        // worker, metrics); `fovea serve` starts it.
        .target(name: "FoveaServer", dependencies: [
            "FoveaRuntime", "FoveaCore", "FoveaIO", "FoveaKV", "FoveaModels", "FoveaPruning",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(
            name: "fovea",
            dependencies: ["FoveaRuntime", "FoveaServer", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .target(name: "FoveaFuzzing", dependencies: ["FoveaRuntime", "FoveaServer"]),
        // Fixture lookup and tolerance helpers shared by the test targets.
        .target(name: "FoveaTestSupport", dependencies: ["FoveaCore", "FoveaIO"]),
        .testTarget(name: "FoveaCoreTests", dependencies: ["FoveaCore", "FoveaTestSupport"]),
        .testTarget(name: "FoveaIOTests", dependencies: ["FoveaIO", "FoveaTestSupport"]),
        .testTarget(name: "FoveaModelsTests", dependencies: ["FoveaModels", "FoveaPruning", "FoveaRuntime", "FoveaTestSupport"]),
        .testTarget(name: "FoveaRuntimeTests", dependencies: ["FoveaRuntime", "FoveaFuzzing", "FoveaTestSupport"]),
        .testTarget(name: "FoveaServerTests", dependencies: ["FoveaServer", "FoveaRuntime", "FoveaTestSupport"]),
        .testTarget(name: "FoveaKVTests", dependencies: ["FoveaKV", "FoveaPruning", "FoveaModels", "FoveaRuntime", "FoveaTestSupport"]),
        .testTarget(name: "FoveaPruningTests", dependencies: ["FoveaPruning", "FoveaKV", "FoveaModels", "FoveaRuntime", "FoveaTestSupport"]),
    ]
)
