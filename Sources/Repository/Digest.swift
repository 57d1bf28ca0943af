import COpenSSL

/// A streaming MD5, for content checksums that must equal what MongoDB's `dbHash`
/// reports (MD5 of a collection's documents in `_id` order). Not for security.
///
/// One owner of the OpenSSL digest context; use it from one thread at a time.
public final class MD5: @unchecked Sendable {
    private let context: OpaquePointer

    public init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_md5(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 0 { EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) }
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// A hasher in the same state, to go on from or finish without spending this one.
    public func copy() -> MD5 {
        let other = MD5()
        EVP_MD_CTX_copy_ex(other.context, context)
        return other
    }

    /// Lower-case hex of the digest; the hasher is spent afterwards.
    public func finalize() -> String {
        var digest = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return encodeHex(digest)
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
