/// A malformed BSON document or Extended JSON text.
///
/// `offset` is the byte offset inside the document where reading stopped, so a
/// message can point at the bad byte of a large file.
public struct BSONError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let truncated = Code("truncated")
        public static let badLength = Code("badLength")
        public static let badCString = Code("badCString")
        public static let badType = Code("badType")
        public static let badString = Code("badString")
        public static let badValue = Code("badValue")
        public static let tooDeep = Code("tooDeep")
        public static let badJSON = Code("badJSON")
    }

    public let code: Code
    public let offset: Int
    public let message: String

    public init(_ code: Code, at offset: Int, _ message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    public var description: String { "invalid BSON at byte \(offset): \(message)" }
}
