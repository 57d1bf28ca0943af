import COpenSSL

/// A streaming digest over OpenSSL's EVP interface: MD5 for content checksums that must
/// equal what MongoDB's `dbHash` reports (MD5 of a collection's documents in `_id`
/// order; not for security), SHA-256 for pack names hashed as the pack is filled.
///
/// One owner of the OpenSSL digest context; use it from one thread at a time.
public final class StreamingDigest: @unchecked Sendable {
    public enum Algorithm: Sendable { case md5, sha256 }
    private let context: OpaquePointer

    public init(_ algorithm: Algorithm) {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, algorithm == .md5 ? EVP_md5() : EVP_sha256(), nil)
    }

    private init(copying other: StreamingDigest) {
        context = EVP_MD_CTX_new()
        EVP_MD_CTX_copy_ex(context, other.context)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 0 { EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) }
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// A hasher in the same state, to go on from or finish without spending this one.
    public func copy() -> StreamingDigest { StreamingDigest(copying: self) }

    /// Lower-case hex of the digest; the hasher is spent afterwards.
    public func finalize() -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return encodeHex(digest.prefix(Int(length)))
    }
}

/// The content checksum a snapshot manifest records for each collection at capture time:
/// the sum (mod 2^64) of every document's XXH64, with the document count beside it.
///
/// A sum does not depend on order, so a capture adds documents as it meets them (an import
/// in file order, a backup in cursor order) and a drill adds the snapshot's documents as
/// it reads them back. XXH64 runs at memory speed; the MD5 that `dbHash` compares is
/// computed by drills from the repository instead, where it costs a restore nothing. Not
/// for security: the repository's AEAD and keyed ids guard against tampering; this
/// catches a capture or a read that lost or changed a document.
public struct DocumentChecksum: Sendable, Equatable, CustomStringConvertible {
    public private(set) var sum: UInt64 = 0

    /// How `description` starts; a manifest's checksum without it is an MD5 (before 2026-11).
    public static let prefix = "xxh64sum:"

    public init() {}

    public mutating func add(_ document: UnsafeRawBufferPointer) { sum &+= XXH64.hash(document) }

    public mutating func add(_ document: [UInt8]) { document.withUnsafeBytes { add($0) } }

    /// "xxh64sum:" and 16 lower-case hex digits.
    public var description: String {
        let hex = String(sum, radix: 16)
        return Self.prefix + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// XXH64 (seed 0), as specified by the xxHash project: a fast non-cryptographic hash.
public enum XXH64 {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) private static func round(_ acc: UInt64, _ lane: UInt64) -> UInt64 {
        (acc &+ lane &* p2).rotl(31) &* p1
    }

    @inline(__always) private static func merge(_ acc: UInt64, _ v: UInt64) -> UInt64 {
        (acc ^ round(0, v)) &* p1 &+ p4
    }

    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let count = bytes.count
        guard let base = bytes.baseAddress else { return avalanche(p5) }
        @inline(__always) func load64(_ at: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        @inline(__always) func load32(_ at: Int) -> UInt64 { UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        var at = 0
        var acc: UInt64
        if count >= 32 {
            var v1 = p1 &+ p2, v2 = p2, v3: UInt64 = 0, v4 = 0 &- p1
            while at + 32 <= count {
                v1 = round(v1, load64(at))
                v2 = round(v2, load64(at + 8))
                v3 = round(v3, load64(at + 16))
                v4 = round(v4, load64(at + 24))
                at += 32
            }
            acc = v1.rotl(1) &+ v2.rotl(7) &+ v3.rotl(12) &+ v4.rotl(18)
            acc = merge(merge(merge(merge(acc, v1), v2), v3), v4)
        } else {
            acc = p5
        }
        acc &+= UInt64(count)
        while at + 8 <= count {
            acc = (acc ^ round(0, load64(at))).rotl(27) &* p1 &+ p4
            at += 8
        }
        if at + 4 <= count {
            acc = (acc ^ (load32(at) &* p1)).rotl(23) &* p2 &+ p3
            at += 4
        }
        while at < count {
            acc = (acc ^ (UInt64(base.load(fromByteOffset: at, as: UInt8.self)) &* p5)).rotl(11) &* p1
            at += 1
        }
        return avalanche(acc)
    }

    public static func hash(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { hash($0) } }

    @inline(__always) private static func avalanche(_ value: UInt64) -> UInt64 {
        var h = value
        h ^= h &>> 33
        h &*= p2
        h ^= h &>> 29
        h &*= p3
        h ^= h &>> 32
        return h
    }
}

/// The SHA-256 and MD5 of one object's bytes, computed in one pass over them.
///
/// A copy needs both for every object: the SHA-256 checks the object against its name
/// and is the payload hash S3's SigV4 signs; the MD5 is S3's `Content-MD5` and what its
/// ETag answers. Hashing both chunk by chunk reads each byte from memory once.
public struct ObjectDigests: Sendable, Equatable {
    public let sha256: [UInt8]
    public let md5: [UInt8]

    /// Bytes hashed per step: small enough that the chunk is still in cache for the second digest.
    static let chunk = 256 << 10

    public init(of bytes: UnsafeRawBufferPointer) {
        let contexts = (EVP_MD_CTX_new()!, EVP_MD_CTX_new()!)
        defer {
            EVP_MD_CTX_free(contexts.0)
            EVP_MD_CTX_free(contexts.1)
        }
        EVP_DigestInit_ex(contexts.0, EVP_sha256(), nil)
        EVP_DigestInit_ex(contexts.1, EVP_md5(), nil)
        var offset = 0
        while offset < bytes.count {
            let count = min(Self.chunk, bytes.count - offset)
            let start = bytes.baseAddress! + offset
            EVP_DigestUpdate(contexts.0, start, count)
            EVP_DigestUpdate(contexts.1, start, count)
            offset += count
        }
        var sha = [UInt8](repeating: 0, count: 32)
        var md5 = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(contexts.0, &sha, &length)
        EVP_DigestFinal_ex(contexts.1, &md5, &length)
        self.sha256 = sha
        self.md5 = md5
    }

    public init(of bytes: [UInt8]) { self = bytes.withUnsafeBytes { ObjectDigests(of: $0) } }

    public init(of bytes: ArraySlice<UInt8>) { self = bytes.withUnsafeBytes { ObjectDigests(of: $0) } }
}

extension Repository {
    /// The key of the leaf-boundary hash: derived from the id key, so boundaries are
    /// as secret as blob ids.
    public var boundaryKey: [UInt8] {
        Crypto.hkdfSHA256(key: master.idKey, salt: [], info: Array("ancre leaf boundary".utf8), count: 16)
    }
}
