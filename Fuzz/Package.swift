// swift-tools-version: 6.0
import PackageDescription

// libFuzzer driver for Fovea's parsers (FoveaFuzzing in the main package). Built and run by
// scripts/fuzz.sh with `-sanitize=fuzzer,address`; a package of its own so the main build never
// carries sanitizer flags.
let package = Package(
    name: "FoveaFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "Fovea", path: "..")],
    targets: [
        .executableTarget(name: "fovea-fuzz", dependencies: [.product(name: "FoveaFuzzing", package: "Fovea")]),
    ]
)
