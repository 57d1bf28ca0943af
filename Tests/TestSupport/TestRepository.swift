import Repository

extension KDFParameters {
    /// A weak scrypt cost (N = 1024) so tests unlock in about a millisecond. Never for real repositories.
    public static let weakForTesting = KDFParameters(n: 1024, r: 8, p: 1)
}

/// Builders of small repositories for tests.
public enum TestRepository {
    public static let passphrase = "correct horse battery staple"

    /// A new repository on `storage` (in memory by default) with a weak KDF and small packs.
    public static func make(
        storage: any Storage = InMemoryBackend(), packTargetSize: Int = 64 << 10,
        passphrase: String = TestRepository.passphrase
    ) throws -> Repository {
        try Repository.create(
            storage: storage, passphrase: passphrase, kdf: .weakForTesting,
            options: RepositoryOptions(packTargetSize: packTargetSize))
    }

    /// Opens an existing repository with the test passphrase and small packs.
    public static func open(
        storage: any Storage, packTargetSize: Int = 64 << 10, passphrase: String = TestRepository.passphrase,
        ignoreCorruptIndex: Bool = false
    ) throws -> Repository {
        try Repository.open(
            storage: storage, passphrase: passphrase,
            options: RepositoryOptions(packTargetSize: packTargetSize, ignoreCorruptIndex: ignoreCorruptIndex))
    }

    /// Deterministic pseudo-random bytes (xorshift), compressible when `alphabet` is small.
    public static func bytes(count: Int, seed: UInt64, alphabet: Int = 256) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: Int(state % UInt64(alphabet)))
        }
    }
}

extension Repository {
    /// The MD5 of a snapshot collection's documents in `_id` order, read from its tree:
    /// what `dbHash` reports for the same documents on a server.
    public func md5OfDocuments(_ collection: ManifestCollection) throws -> String {
        let md5 = StreamingDigest(.md5)
        if let root = collection.root {
            for leaf in try TreeReader(load: loadBlob).leaves(root: root) {
                try TreeReader.forEachRecord(in: try loadBlob(leaf.child), id: leaf.child) { md5.update($0) }
            }
        }
        return md5.finalize()
    }
}

extension DocumentChecksum {
    /// The checksum of `documents` (BSON bytes each).
    public static func of(_ documents: some Sequence<[UInt8]>) -> String {
        var checksum = DocumentChecksum()
        for d in documents { checksum.add(d) }
        return checksum.description
    }
}
