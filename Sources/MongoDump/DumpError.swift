import BSON

/// An error reading or writing a dump directory or archive.
///
/// The description names the file, the namespace and the byte offset when they are
/// known, so a damaged dump can be inspected with a hex dump at the right place.
public struct DumpError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, as a stable code; new codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The file could not be opened, read or written.
        public static let io = Code("io")
        /// A path that should exist (dump directory, file) does not.
        public static let notFound = Code("notFound")
        /// The archive does not start with the mongodump magic number.
        public static let badMagic = Code("badMagic")
        /// The archive header or a namespace header lacks a field or has the wrong type.
        public static let badHeader = Code("badHeader")
        /// A prelude entry (namespace metadata in an archive) is malformed.
        public static let badPrelude = Code("badPrelude")
        /// Four bytes are neither a document length nor the 0xFFFFFFFF terminator, or a
        /// terminator is missing or misplaced.
        public static let badFraming = Code("badFraming")
        /// The file ends in the middle of a document or a segment.
        public static let truncated = Code("truncated")
        /// A document is not valid BSON.
        public static let malformedDocument = Code("malformedDocument")
        /// A namespace's CRC-64 in its EOF header differs from that of its documents.
        public static let crcMismatch = Code("crcMismatch")
        /// Collection metadata is not valid Extended JSON or has fields of the wrong type.
        public static let badMetadata = Code("badMetadata")
        /// A metadata file names a collection whose `.bson` file is missing.
        public static let missingData = Code("missingData")
        /// An archive holds data for a namespace its prelude does not list, or data after its EOF.
        public static let unknownNamespace = Code("unknownNamespace")
        /// An archive ends before a namespace's EOF header.
        public static let unfinishedNamespace = Code("unfinishedNamespace")
        /// The dump is gzip-compressed; Ancre reads uncompressed dumps only.
        public static let unsupportedCompression = Code("unsupportedCompression")
        /// A `DocumentLocation` does not belong to this source.
        public static let badLocation = Code("badLocation")
        /// The writer was used out of order (document after a namespace's end, unknown namespace, ...).
        public static let misuse = Code("misuse")
    }

    public let code: Code
    public let message: String
    /// The file concerned, if any.
    public let path: String?
    /// The namespace concerned, if any.
    public let namespace: Namespace?
    /// Byte offset in `path` where the problem was found, if meaningful.
    public let offset: Int64?
    /// The error that caused this one (a `BSONError`, an errno description).
    public let underlying: (any Error & Sendable)?

    public init(
        _ code: Code, _ message: String, path: String? = nil, namespace: Namespace? = nil,
        offset: Int64? = nil, underlying: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.namespace = namespace
        self.offset = offset
        self.underlying = underlying
    }

    public var description: String {
        var out = ""
        if let path { out += "\(path): " }
        if let namespace { out += "namespace \(namespace): " }
        if let offset { out += "at byte \(offset): " }
        out += message
        // A BSONError's text is already in the message, with an offset relative to its document.
        if let underlying, !(underlying is BSONError) { out += " (\(underlying))" }
        return out
    }

    /// The same error with a path, namespace or offset filled in where it had none.
    func adding(path: String? = nil, namespace: Namespace? = nil) -> DumpError {
        DumpError(code, message, path: self.path ?? path, namespace: self.namespace ?? namespace,
                  offset: offset, underlying: underlying)
    }
}

/// The current `errno` as an error, for `DumpError.underlying`.
struct SystemError: Error, CustomStringConvertible, Sendable {
    let errno: Int32
    let description: String
}
