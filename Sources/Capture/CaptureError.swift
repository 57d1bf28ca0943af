/// An error while capturing data into a snapshot: a stable code and a message that
/// says what happened and what to do.
public struct CaptureError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// Two documents of a collection share an `_id`.
        public static let duplicateID = Code("duplicateID")
        /// Documents reached the tree out of `_id` order (a bug or a changing source).
        public static let unsorted = Code("unsorted")
        /// A document has no `_id` field.
        public static let missingID = Code("missingID")
        /// An oplog entry lacks `ts` or is out of order.
        public static let badOplogEntry = Code("badOplogEntry")
        /// The oplog entries between a snapshot's start and end are no longer all on
        /// the server (the oplog rolled over while the snapshot was read).
        public static let oplogRolledOver = Code("oplogRolledOver")
        /// An include/exclude pattern cannot be used.
        public static let badPattern = Code("badPattern")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
