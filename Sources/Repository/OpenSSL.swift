import COpenSSL

// Every call into libcrypto goes through this file (STYLE.md "C interop").

/// Thin wrappers over OpenSSL's one-shot primitives.
enum Crypto {
    static let sha256Length = 32

    /// SHA-256 of `data`.
    static func sha256(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: sha256Length)
        var size: UInt32 = 0
        let ok = digest.withUnsafeMutableBufferPointer { out in
            EVP_Digest(data.baseAddress, data.count, out.baseAddress, &size, EVP_sha256(), nil)
        }
        precondition(ok == 1 && size == 32, "EVP_Digest(SHA-256) failed")
        return digest
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { sha256($0) }
    }

    /// HMAC-SHA256 of `data` under `key`.
    static func hmacSHA256(key: UnsafeRawBufferPointer, _ data: UnsafeRawBufferPointer) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: sha256Length)
        var size: UInt32 = 0
        mac.withUnsafeMutableBufferPointer { out in
            // A zero-length key or message still needs a non-null pointer.
            var dummy: UInt8 = 0
            let result = withUnsafeMutablePointer(to: &dummy) { dummyPtr in
                HMAC(
                    EVP_sha256(), key.baseAddress ?? UnsafeRawPointer(dummyPtr), Int32(key.count),
                    data.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(dummyPtr),
                    data.count, out.baseAddress, &size)
            }
            precondition(result != nil && size == 32, "HMAC-SHA256 failed")
        }
        return mac
    }

    static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        key.withUnsafeBytes { k in data.withUnsafeBytes { hmacSHA256(key: k, $0) } }
    }

    /// HKDF-SHA256 (RFC 5869) built on HMAC: extract, then expand to `count` bytes.
    static func hkdfSHA256(key ikm: [UInt8], salt: [UInt8], info: [UInt8], count: Int) -> [UInt8] {
        precondition(count <= 255 * sha256Length)
        // RFC 5869 §2.2: an absent salt is HashLen zeros.
        let prk = hmacSHA256(key: salt.isEmpty ? [UInt8](repeating: 0, count: sha256Length) : salt, ikm)
        var output: [UInt8] = []
        output.reserveCapacity(count + sha256Length)
        var block: [UInt8] = []
        var counter: UInt8 = 1
        while output.count < count {
            block = hmacSHA256(key: prk, block + info + [counter])
            output += block
            counter &+= 1
        }
        return Array(output.prefix(count))
    }

    /// scrypt (RFC 7914) of `passphrase` and `salt`, its lanes on parallel threads (`Scrypt`).
    /// - Throws: `CryptoFailure` for parameters scrypt does not allow.
    static func scrypt(passphrase: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64, count: Int) throws -> [UInt8] {
        try Scrypt.derive(passphrase: passphrase, salt: salt, n: n, r: r, p: p, count: count)
    }

    /// `count` bytes from OpenSSL's CSPRNG.
    static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return bytes }
        let ok = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
        precondition(ok == 1, "RAND_bytes failed")
        return bytes
    }
}

/// A failure inside OpenSSL (bad parameters, failed authentication); callers map it to a `RepositoryError`.
struct CryptoFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
    static let authentication = CryptoFailure("authentication failed")
}

/// An AES-256-GCM key with its OpenSSL cipher context, reused across messages.
///
/// Not thread-safe: one thread uses an instance at a time (packs own one each;
/// readers make their own). The key schedule is computed once in `init`.
final class AESGCM: @unchecked Sendable {
    static let keyLength = 32
    static let nonceLength = 12
    static let tagLength = 16

    private let context: OpaquePointer

    init(key: [UInt8]) {
        precondition(key.count == Self.keyLength, "AES-256 needs a 32-byte key")
        guard let context = EVP_CIPHER_CTX_new() else { fatalError("EVP_CIPHER_CTX_new failed") }
        self.context = context
        let ok = key.withUnsafeBufferPointer {
            EVP_CipherInit_ex(context, EVP_aes_256_gcm(), nil, $0.baseAddress, nil, 1)
        }
        precondition(ok == 1, "EVP_CipherInit_ex(aes-256-gcm) failed")
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// Encrypts `plaintext` and appends ciphertext then the 16-byte tag to `output`.
    func seal(
        _ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], aad: UnsafeRawBufferPointer,
        appendingTo output: inout [UInt8]
    ) {
        precondition(nonce.count == Self.nonceLength)
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: plaintext.count + Self.tagLength))
        output.withUnsafeMutableBufferPointer { buffer in
            let out = buffer.baseAddress! + start
            var ok = nonce.withUnsafeBufferPointer { EVP_CipherInit_ex(context, nil, nil, nil, $0.baseAddress, 1) } == 1
            var written: Int32 = 0
            if aad.count > 0 {
                if EVP_CipherUpdate(context, nil, &written, aad.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(aad.count)) != 1 { ok = false }
            }
            var produced = 0
            var remaining = plaintext.count
            // EVP lengths are Int32: feed large inputs in pieces.
            while remaining > 0 {
                let piece = min(remaining, 1 << 30)
                let input = plaintext.baseAddress!.assumingMemoryBound(to: UInt8.self) + produced
                if EVP_CipherUpdate(context, out + produced, &written, input, Int32(piece)) != 1 { ok = false }
                produced += Int(written)
                remaining -= piece
            }
            if EVP_CipherFinal_ex(context, out + produced, &written) != 1 { ok = false }
            produced += Int(written)
            if EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(Self.tagLength), out + produced) != 1 { ok = false }
            precondition(ok && produced == plaintext.count, "AES-GCM seal failed")
        }
    }

    func seal(_ plaintext: [UInt8], nonce: [UInt8], aad: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(plaintext.count + Self.tagLength)
        plaintext.withUnsafeBytes { p in aad.withUnsafeBytes { seal(p, nonce: nonce, aad: $0, appendingTo: &output) } }
        return output
    }

    /// Decrypts ciphertext-then-tag and checks the tag.
    /// - Throws: `CryptoFailure.authentication` when the tag does not match (wrong key, altered bytes or AAD).
    func open(_ sealed: UnsafeRawBufferPointer, nonce: [UInt8], aad: UnsafeRawBufferPointer) throws -> [UInt8] {
        precondition(nonce.count == Self.nonceLength)
        guard sealed.count >= Self.tagLength else { throw CryptoFailure.authentication }
        let length = sealed.count - Self.tagLength
        var output = [UInt8](repeating: 0, count: length)
        let input = sealed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let ok: Bool = output.withUnsafeMutableBufferPointer { buffer in
            // An empty array may have no storage; decrypt into a scratch byte then.
            var scratch: UInt8 = 0
            return withUnsafeMutablePointer(to: &scratch) { scratchPtr in
                let out = buffer.baseAddress ?? scratchPtr
                var ok = nonce.withUnsafeBufferPointer { EVP_CipherInit_ex(context, nil, nil, nil, $0.baseAddress, 0) } == 1
                var written: Int32 = 0
                if aad.count > 0 {
                    if EVP_CipherUpdate(context, nil, &written, aad.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(aad.count)) != 1 { ok = false }
                }
                var produced = 0
                var remaining = length
                while remaining > 0 {
                    let piece = min(remaining, 1 << 30)
                    if EVP_CipherUpdate(context, out + produced, &written, input + produced, Int32(piece)) != 1 { ok = false }
                    produced += Int(written)
                    remaining -= piece
                }
                let tag = UnsafeMutableRawPointer(mutating: input + length)
                if EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(Self.tagLength), tag) != 1 { ok = false }
                guard ok else { return false }
                return EVP_CipherFinal_ex(context, out + produced, &written) == 1
            }
        }
        guard ok else { throw CryptoFailure.authentication }
        return output
    }

    func open(_ sealed: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        try sealed.withUnsafeBytes { s in try aad.withUnsafeBytes { try open(s, nonce: nonce, aad: $0) } }
    }
}
