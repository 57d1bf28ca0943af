/// The envelope of index, snapshot, timeline and lock objects (FORMAT.md "Sealed files"):
/// `version (1) | salt (16) | AES-256-GCM ciphertext | tag (16)`, keyed by
/// HKDF(encryption key, salt, "ancre file v1"), nonce zero (each key seals one
/// message), AAD = the object's kind, so a snapshot cannot pass for an index.
enum SealedFile {
    static let version: UInt8 = 1
    static let saltLength = 16
    static let overhead = 1 + saltLength + AESGCM.tagLength
    static let zeroNonce = [UInt8](repeating: 0, count: AESGCM.nonceLength)

    static func seal(_ plaintext: [UInt8], kind: String, key: MasterKey) -> [UInt8] {
        let salt = Crypto.randomBytes(saltLength)
        var out: [UInt8] = [version] + salt
        out.reserveCapacity(overhead + plaintext.count)
        let aead = AESGCM(key: key.subkey(salt: salt, info: "ancre file v1"))
        plaintext.withUnsafeBytes { p in
            Array(kind.utf8).withUnsafeBytes { aead.seal(p, nonce: zeroNonce, aad: $0, appendingTo: &out) }
        }
        return out
    }

    /// - Throws: `CryptoFailure` when the envelope is malformed or fails authentication.
    static func open(_ sealed: [UInt8], kind: String, key: MasterKey) throws -> [UInt8] {
        guard sealed.count >= overhead, sealed[0] == version else { throw CryptoFailure("not a sealed object of a known version") }
        let salt = Array(sealed[1...saltLength])
        let aead = AESGCM(key: key.subkey(salt: salt, info: "ancre file v1"))
        return try sealed.withUnsafeBytes { raw in
            try Array(kind.utf8).withUnsafeBytes {
                try aead.open(UnsafeRawBufferPointer(rebasing: raw[(1 + saltLength)...]), nonce: zeroNonce, aad: $0)
            }
        }
    }
}
