/// An error from the repository layer: a stable code, a message that says what
/// happened and what to do, and the underlying cause when there is one.
///
/// Descriptions never contain passphrases or key material.
public struct RepositoryError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, stable across releases so the CLI can map it to an exit code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// `init` found a `config` object: a repository already exists there.
        public static let repositoryExists = Code("repositoryExists")
        /// No `config` object: nothing was initialised at this location.
        public static let repositoryNotFound = Code("repositoryNotFound")
        /// No key slot opens with the given passphrase.
        public static let wrongPassphrase = Code("wrongPassphrase")
        /// The index does not know the blob, or a storage object is missing.
        public static let blobNotFound = Code("blobNotFound")
        /// A storage object does not exist.
        public static let objectNotFound = Code("objectNotFound")
        /// A pack the index refers to is missing from storage.
        public static let packMissing = Code("packMissing")
        /// A pack's bytes fail authentication or do not hash to its name.
        public static let packCorrupt = Code("packCorrupt")
        /// A pack is shorter than its index or trailer says.
        public static let packTruncated = Code("packTruncated")
        /// An index file cannot be decrypted or parsed.
        public static let indexCorrupt = Code("indexCorrupt")
        /// A blob decrypted but its content does not hash to its id.
        public static let blobCorrupt = Code("blobCorrupt")
        /// Another process holds a conflicting lock.
        public static let locked = Code("locked")
        /// The storage device is full.
        public static let storageFull = Code("storageFull")
        /// Reading or writing storage failed.
        public static let ioFailure = Code("ioFailure")
        /// The storage refused the credentials or denied the operation (S3 403).
        public static let accessDenied = Code("accessDenied")
        /// Removing the only key slot would make the repository unreadable.
        public static let keySlotLast = Code("keySlotLast")
        /// The key slot to remove does not exist.
        public static let keySlotNotFound = Code("keySlotNotFound")
        /// An object is not in a format this version understands.
        public static let invalidFormat = Code("invalidFormat")
        /// A caller passed an unusable argument (for example a delta base that is itself a delta).
        public static let invalidArgument = Code("invalidArgument")
    }

    public var code: Code
    /// What happened and what to do about it.
    public var message: String
    /// The underlying error, if any (never one carrying secrets).
    public var underlying: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        if let underlying { return "\(message) (\(underlying))" }
        return message
    }
}

/// Matches a `RepositoryError` by code, so callers can write `catch RepositoryError.Code.locked`.
public func ~= (code: RepositoryError.Code, error: any Error) -> Bool {
    (error as? RepositoryError)?.code == code
}
