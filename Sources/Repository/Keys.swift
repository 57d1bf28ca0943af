import Foundation

/// The repository's master secret: an encryption key and an id key, 32 bytes each.
///
/// Never printed: `description` is redacted.
struct MasterKey: Sendable, CustomStringConvertible {
    let encryptionKey: [UInt8]
    let idKey: [UInt8]

    static func random() -> MasterKey {
        MasterKey(encryptionKey: Crypto.randomBytes(32), idKey: Crypto.randomBytes(32))
    }

    init(encryptionKey: [UInt8], idKey: [UInt8]) {
        precondition(encryptionKey.count == 32 && idKey.count == 32)
        self.encryptionKey = encryptionKey
        self.idKey = idKey
    }

    init?(serialized: [UInt8]) {
        guard serialized.count == 64 else { return nil }
        self.init(encryptionKey: Array(serialized[0..<32]), idKey: Array(serialized[32..<64]))
    }

    var serialized: [UInt8] { encryptionKey + idKey }
    var description: String { "MasterKey(redacted)" }

    /// A subkey of the encryption key for one pack or sealed file (FORMAT.md "Keys").
    func subkey(salt: [UInt8], info: String) -> [UInt8] {
        Crypto.hkdfSHA256(key: encryptionKey, salt: salt, info: Array(info.utf8), count: 32)
    }
}

/// scrypt cost parameters for deriving a key-encryption key from a passphrase.
public struct KDFParameters: Sendable, Equatable, Codable {
    /// CPU/memory cost, a power of two.
    public var n: UInt64
    /// Block size.
    public var r: UInt64
    /// Parallelism.
    public var p: UInt64

    public init(n: UInt64, r: UInt64 = 8, p: UInt64 = 1) {
        precondition(n > 1 && n & (n - 1) == 0, "scrypt N must be a power of two")
        self.n = n
        self.r = r
        self.p = p
    }

    /// Parameters that take about 0.5 s on this machine, measured now (takes about 0.1 s to measure).
    public static var calibrated: KDFParameters { calibrated(target: .milliseconds(500)) }

    /// Parameters that take about `target` on this machine with at most 64 MiB of
    /// memory: N = 2^16 (r = 8), with p raised until the time is reached.
    ///
    /// Memory is capped because every `open` pays it: an uncapped N reaching 0.5 s
    /// needed 256 MiB, the whole budget of an import. p adds work, not memory per lane;
    /// `Scrypt` runs two lanes at a time, so an unlock holds 128 MiB for about half the
    /// calibrated time (the target is one core's work, which is what an attacker pays).
    public static func calibrated(target: Duration) -> KDFParameters {
        let probe = KDFParameters(n: 1 << 14)
        let clock = ContinuousClock()
        let elapsed = clock.measure { _ = try? probe.derive(passphrase: [0], salt: [UInt8](repeating: 0, count: 32)) }
        // One lane at N = 2^16 costs four probes.
        let lane = max(elapsed * 4, .microseconds(1))
        let lanes = max(1, min(64, Int((target / lane).rounded())))
        return KDFParameters(n: 1 << 16, r: 8, p: UInt64(lanes))
    }

    func derive(passphrase: [UInt8], salt: [UInt8]) throws -> [UInt8] {
        try Crypto.scrypt(passphrase: passphrase, salt: salt, n: n, r: r, p: p, count: 32)
    }
}

/// A key slot as listed to users; it holds no secret.
public struct KeySlotInfo: Sendable, Equatable {
    /// The slot's id (its key is `keys/<id>`).
    public var id: String
    public var created: Date
    public var hostname: String
    public var label: String
    public var kdf: KDFParameters
}

/// One `keys/<id>` object: the master secret sealed under a passphrase-derived key (FORMAT.md "Key slots").
struct KeySlot: Codable {
    var version: Int
    var kdf: String
    var n: UInt64
    var r: UInt64
    var p: UInt64
    var salt: String  // base64
    var nonce: String  // base64
    var sealed: String  // base64, master secret ciphertext + tag
    var created: Date
    var hostname: String
    var label: String

    static let aadPrefix = "ancre key slot v1 "

    static func make(master: MasterKey, passphrase: [UInt8], kdf: KDFParameters, repositoryID: String, label: String) throws -> KeySlot {
        let salt = Crypto.randomBytes(32)
        let nonce = Crypto.randomBytes(AESGCM.nonceLength)
        let kek = try kdf.derive(passphrase: passphrase, salt: salt)
        let sealed = AESGCM(key: kek).seal(master.serialized, nonce: nonce, aad: Array((aadPrefix + repositoryID).utf8))
        return KeySlot(
            version: 1, kdf: "scrypt", n: kdf.n, r: kdf.r, p: kdf.p,
            salt: Data(salt).base64EncodedString(), nonce: Data(nonce).base64EncodedString(),
            sealed: Data(sealed).base64EncodedString(), created: Date(),
            hostname: ProcessInfo.processInfo.hostName, label: label)
    }

    /// The master secret, or `nil` when the passphrase does not open this slot.
    /// - Throws: `RepositoryError` `.invalidFormat` for a malformed slot.
    func open(passphrase: [UInt8], repositoryID: String, slotID: String) throws -> MasterKey? {
        guard version == 1, kdf == "scrypt", let salt = Data(base64Encoded: salt), let nonce = Data(base64Encoded: nonce),
            nonce.count == AESGCM.nonceLength, let sealed = Data(base64Encoded: sealed),
            n > 1, n & (n - 1) == 0, n <= 1 << 24, r > 0, r <= 64, p > 0, p <= 64
        else {
            throw RepositoryError(.invalidFormat, "key slot '\(slotID)' is malformed")
        }
        let kek: [UInt8]
        do {
            kek = try KDFParameters(n: n, r: r, p: p).derive(passphrase: passphrase, salt: Array(salt))
        } catch {
            throw RepositoryError(.invalidFormat, "key slot '\(slotID)' has unusable scrypt parameters", underlying: error)
        }
        guard let plain = try? AESGCM(key: kek).open(Array(sealed), nonce: Array(nonce), aad: Array((Self.aadPrefix + repositoryID).utf8)) else {
            return nil
        }
        return MasterKey(serialized: plain)
    }

    var info: (created: Date, hostname: String, label: String, kdf: KDFParameters) {
        (created, hostname, label, KDFParameters(n: n, r: r, p: p))
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        e.dateEncodingStrategy = .iso8601
        return e
    }()
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()
}

/// Parameters of the key-defined tree (ARCHITECTURE.md §3), fixed at `init` so every
/// snapshot of a repository cuts leaves and nodes the same way.
///
/// A boundary falls after a document (or node entry) whose keyed `_id` hash has its low
/// `maskBits` bits all zero, respecting the minimum and maximum sizes. The hash key is
/// derived from the secret id key, so no separate chunker salt is stored.
public struct ChunkerParameters: Sendable, Equatable, Codable {
    public var leafMaskBits: Int
    public var leafMinBytes: Int
    public var leafMaxBytes: Int
    public var nodeMaskBits: Int
    public var nodeMinEntries: Int
    public var nodeMaxEntries: Int

    public init(leafMaskBits: Int, leafMinBytes: Int, leafMaxBytes: Int, nodeMaskBits: Int, nodeMinEntries: Int, nodeMaxEntries: Int) {
        self.leafMaskBits = leafMaskBits
        self.leafMinBytes = leafMinBytes
        self.leafMaxBytes = leafMaxBytes
        self.nodeMaskBits = nodeMaskBits
        self.nodeMinEntries = nodeMinEntries
        self.nodeMaxEntries = nodeMaxEntries
    }

    /// Leaves of about 32 KiB for documents of a few hundred bytes; nodes of about 64 entries.
    public static let `default` = ChunkerParameters(
        leafMaskBits: 6, leafMinBytes: 8 << 10, leafMaxBytes: 128 << 10,
        nodeMaskBits: 6, nodeMinEntries: 8, nodeMaxEntries: 512)
}

/// The `config` object: plaintext JSON that holds no secret (FORMAT.md "Config").
public struct RepositoryConfig: Sendable, Equatable, Codable {
    /// The format version this code writes and reads.
    public static let currentVersion = 1

    public var version: Int
    /// 64 hex digits, random at `init`.
    public var id: String
    public var chunker: ChunkerParameters
}
