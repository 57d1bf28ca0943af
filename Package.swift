// swift-tools-version:6.1
import PackageDescription

// Layers, bottom to top (ARCHITECTURE.md §1): C bridges, BSON, Repository,
// MongoDump/Mongo, Capture/Recovery, the `ancre` executable. A target depends only
// on targets below it.
let package = Package(
    name: "Ancre",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ancre", targets: ["ancre"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C bridges: system libraries from Debian, each with a shim of static inline wrappers.
        .systemLibrary(
            name: "CMongoC", pkgConfig: "libmongoc-1.0",
            providers: [.apt(["libmongoc-dev", "libbson-dev"])]),
        .systemLibrary(
            name: "CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(
            name: "COpenSSL", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),

        .target(name: "BSON", dependencies: ["CMongoC"]),
        .target(
            name: "Repository",
            dependencies: ["CZstd", "COpenSSL", .product(name: "Logging", package: "swift-log")],
            exclude: ["FORMAT.md"]),
        .target(name: "MongoDump", dependencies: ["BSON"]),
        .target(
            name: "Mongo",
            dependencies: ["BSON", "CMongoC", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "Capture",
            dependencies: [
                "BSON", "Repository", "MongoDump", "Mongo",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "Recovery",
            dependencies: [
                "BSON", "Repository", "MongoDump", "Mongo", "Capture",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "Operations",
            dependencies: [
                "BSON", "Repository", "Mongo", "Capture", "Recovery",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "ancre",
            dependencies: [
                "BSON", "Repository", "MongoDump", "Mongo", "Capture", "Recovery", "Operations",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Test support: in-memory backend, weak KDF, fixture paths, process runners.
        .target(name: "TestSupport", dependencies: ["Repository", "BSON"], path: "Tests/TestSupport"),

        .testTarget(name: "BSONTests", dependencies: ["BSON", "TestSupport"]),
        .testTarget(name: "RepositoryTests", dependencies: ["Repository", "COpenSSL", "TestSupport"]),
        .testTarget(name: "MongoDumpTests", dependencies: ["MongoDump", "BSON", "TestSupport"]),
        .testTarget(name: "MongoTests", dependencies: ["Mongo", "BSON", "TestSupport"]),
        .testTarget(name: "CaptureTests", dependencies: ["Capture", "Repository", "BSON", "MongoDump", "Mongo", "TestSupport"]),
        .testTarget(name: "RecoveryTests", dependencies: ["Recovery", "Capture", "Repository", "BSON", "Mongo", "MongoDump", "TestSupport"]),
        .testTarget(name: "OperationsTests", dependencies: ["Operations", "Recovery", "Capture", "Repository", "BSON", "Mongo", "MongoDump", "TestSupport"]),
        .testTarget(name: "AncreTests", dependencies: ["TestSupport", "MongoDump", "BSON", "Repository"]),
    ]
)
