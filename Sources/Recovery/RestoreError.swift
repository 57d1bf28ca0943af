/// An error while restoring: loading a snapshot into a target or replaying the oplog.
/// A stable code to match on and a message that says what happened and what to do.
public struct RestoreError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A `$v:2` update diff is malformed (empty, a field named twice, sections out of order).
        /// The target time is in a gap or outside every restorable window.
        public static let notRestorable = Code("notRestorable")
        /// The target could not be parsed.
        public static let badTarget = Code("badTarget")
        public static let invalidDiff = Code("invalidDiff")
        /// An oplog entry lacks a field replay needs (`ts`, `op`, `ns`, `o`, `o2._id`).
        public static let invalidEntry = Code("invalidEntry")
        /// The target server refused an oplog entry; the message names the entry.
        public static let applyFailed = Code("applyFailed")
        /// A target collection already holds documents and `--drop` was not given.
        public static let targetNotEmpty = Code("targetNotEmpty")
        /// Loading a snapshot's documents, collections, views or indexes failed.
        public static let loadFailed = Code("loadFailed")
        /// A collection's loaded document count differs from the snapshot's.
        public static let countMismatch = Code("countMismatch")
        /// An `--nsInclude`/`--nsExclude`/`--nsFrom`/`--nsTo` pattern cannot be used.
        public static let badPattern = Code("badPattern")
        /// The operation is not supported in the chosen replay mode.
        public static let unsupported = Code("unsupported")
    }

    public let code: Code
    public let message: String
    /// The error that caused this one (a `MongoError`, a repository error), if any.
    public let underlying: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }
}
