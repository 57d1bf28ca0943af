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

extension Repository {
    /// The key of the leaf-boundary hash: derived from the id key, so boundaries are
    /// as secret as blob ids.
    public var boundaryKey: [UInt8] {
        Crypto.hkdfSHA256(key: master.idKey, salt: [], info: Array("ancre leaf boundary".utf8), count: 16)
    }
}
