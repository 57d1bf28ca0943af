import Foundation

/// Where the project's own and the shared test data live.
public enum Fixtures {
    /// The package root, found from this file's path.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared/fixtures/mongo-tools`: real mongod/mongodump data, kept beside the project.
    public static let mongoTools: URL = packageRoot
        .deletingLastPathComponent().appendingPathComponent("shared/fixtures/mongo-tools")

    /// True when the shared fixtures are present; tests that need them are skipped otherwise.
    public static var haveMongoTools: Bool {
        FileManager.default.fileExists(atPath: mongoTools.path)
    }

    public static func mongoTools(_ relative: String) -> String {
        mongoTools.appendingPathComponent(relative).path
    }

    /// A fresh temporary directory, removed by the caller (or left for the OS).
    public static func temporaryDirectory(_ label: String = "ancre") -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
