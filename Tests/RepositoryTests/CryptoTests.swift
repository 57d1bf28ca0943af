import COpenSSL
import Testing
@testable import Repository

private func hex(_ bytes: [UInt8]) -> String { encodeHex(bytes) }
private func bytes(_ hex: String) -> [UInt8] { decodeHex(hex)! }

@Suite struct CryptoTests {
    @Test func sha256KnownAnswer() {
        #expect(hex(Crypto.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(Crypto.sha256([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    /// One pass over chunks gives what separate one-shot digests give, across chunk boundaries.
    @Test(arguments: [0, 3, ObjectDigests.chunk - 1, ObjectDigests.chunk, 3 * ObjectDigests.chunk + 17])
    func objectDigestsEqualSeparateDigests(count: Int) {
        let data = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let digests = ObjectDigests(of: data)
        let md5 = StreamingDigest(.md5)
        md5.update(data)
        #expect(digests.sha256 == Crypto.sha256(data))
        #expect(hex(digests.md5) == md5.finalize())
        #expect(ObjectDigests(of: data[...]) == digests)
        // Pack names are hashed a blob at a time: pieces give the one-shot SHA-256.
        let sha = StreamingDigest(.sha256)
        var offset = 0
        for piece in [1, 7, 4096, count] where offset < count {
            let end = min(count, offset + piece)
            sha.update(Array(data[offset..<end]))
            offset = end
        }
        #expect(sha.finalize() == hex(Crypto.sha256(data)))
    }

    /// Answers of the xxHash project's reference implementation (python-xxhash), for every
    /// tail length the algorithm treats apart (under 32 bytes, 8-byte lanes, 4, 1).
    @Test func xxh64KnownAnswers() {
        #expect(XXH64.hash([UInt8]()) == 0xEF46_DB37_51D8_E999)
        #expect(XXH64.hash(Array("a".utf8)) == 0xD24E_C4F1_A98C_6E5B)
        #expect(XXH64.hash(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
        #expect(XXH64.hash(Array("0123456789abcdef0123456789abcde".utf8)) == 0x1FDF_C63F_EBAC_FDE7)
        #expect(XXH64.hash(Array(repeating: Array(0...255), count: 3).flatMap { $0 } + Array("xyz".utf8)) == 0xE921_A1B4_5BD7_79F8)
    }

    @Test func documentChecksumIgnoresOrderButNotContent() {
        let documents = (0..<50).map { n in (0..<(n * 7 % 61)).map { UInt8(truncatingIfNeeded: $0 &* n) } }
        var forward = DocumentChecksum(), backward = DocumentChecksum()
        for d in documents { forward.add(d) }
        for d in documents.reversed() { backward.add(d) }
        #expect(forward == backward)
        #expect(forward.description.hasPrefix("xxh64sum:") && forward.description.count == 9 + 16)
        var changed = DocumentChecksum()
        for d in documents.dropLast() { changed.add(d) }
        changed.add(documents.last! + [0])
        #expect(changed != forward)
        #expect(DocumentChecksum().description == "xxh64sum:0000000000000000")
    }

    @Test func objectDigestsKnownAnswer() {
        let digests = ObjectDigests(of: Array("abc".utf8))
        #expect(hex(digests.sha256) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(digests.md5) == "900150983cd24fb0d6963f7d28e17f72")
    }

    @Test func hmacRFC4231() {
        // Test case 1
        #expect(hex(Crypto.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8)))
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        // Test case 2
        #expect(hex(Crypto.hmacSHA256(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func hkdfRFC5869() {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        // Test case 1
        #expect(hex(Crypto.hkdfSHA256(key: ikm, salt: bytes("000102030405060708090a0b0c"), info: bytes("f0f1f2f3f4f5f6f7f8f9"), count: 42))
            == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
        // Test case 3: empty salt and info
        #expect(hex(Crypto.hkdfSHA256(key: ikm, salt: [], info: [], count: 42))
            == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    }

    @Test func aesGCMKnownAnswer() throws {
        // McGrew & Viega GCM spec, test cases 13 and 14 (256-bit zero key, zero IV).
        let aead = AESGCM(key: [UInt8](repeating: 0, count: 32))
        let nonce = [UInt8](repeating: 0, count: 12)
        #expect(hex(aead.seal([], nonce: nonce, aad: [])) == "530f8afbc74536b9a963b4f1c4cb738b")
        let sealed = aead.seal([UInt8](repeating: 0, count: 16), nonce: nonce, aad: [])
        #expect(hex(sealed) == "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919")
        #expect(try aead.open(sealed, nonce: nonce, aad: []) == [UInt8](repeating: 0, count: 16))
    }

    @Test func aesGCMRejectsTampering() throws {
        let aead = AESGCM(key: Crypto.randomBytes(32))
        let nonce = Crypto.randomBytes(12)
        let message = Array("the quick brown fox".utf8)
        var sealed = aead.seal(message, nonce: nonce, aad: [1, 2, 3])
        #expect(try aead.open(sealed, nonce: nonce, aad: [1, 2, 3]) == message)
        #expect(throws: CryptoFailure.self) { try aead.open(sealed, nonce: nonce, aad: [1, 2, 4]) }
        sealed[3] ^= 1
        #expect(throws: CryptoFailure.self) { try aead.open(sealed, nonce: nonce, aad: [1, 2, 3]) }
        #expect(throws: CryptoFailure.self) { try aead.open([1, 2], nonce: nonce, aad: []) }
    }

    @Test func scryptRFC7914() throws {
        let key = try Crypto.scrypt(passphrase: [], salt: [], n: 16, r: 1, p: 1, count: 64)
        #expect(hex(key) == "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906")
        let key2 = try Crypto.scrypt(passphrase: Array("password".utf8), salt: Array("NaCl".utf8), n: 1024, r: 8, p: 16, count: 64)
        #expect(hex(key2) == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
    }

    /// The parallel lanes give OpenSSL's result, whatever the thread count and parameters.
    @Test(arguments: [(16 as UInt64, 1 as UInt64, 1 as UInt64), (1024, 8, 4), (2048, 2, 3), (4096, 8, 1), (256, 16, 7)])
    func scryptMatchesOpenSSL(n: UInt64, r: UInt64, p: UInt64) throws {
        let passphrase = Array("correct horse battery staple".utf8)
        let salt = Crypto.randomBytes(32)
        var expected = [UInt8](repeating: 0, count: 32)
        let ok = passphrase.withUnsafeBytes { pass in
            salt.withUnsafeBytes { s in
                expected.withUnsafeMutableBytes { out in
                    EVP_PBE_scrypt(pass.baseAddress!.assumingMemoryBound(to: CChar.self), pass.count,
                                   s.baseAddress!.assumingMemoryBound(to: UInt8.self), s.count, n, r, p, 1 << 30,
                                   out.baseAddress!.assumingMemoryBound(to: UInt8.self), 32)
                }
            }
        }
        #expect(ok == 1)
        for threads in [1, 2, 3, 8] {
            let key = try Scrypt.derive(passphrase: passphrase, salt: salt, n: n, r: r, p: p, count: 32, threads: threads)
            #expect(key == expected, "N=\(n) r=\(r) p=\(p) on \(threads) threads")
        }
    }

    @Test func scryptRejectsImpossibleParameters() {
        #expect(throws: CryptoFailure.self) { try Scrypt.derive(passphrase: [1], salt: [2], n: 1000, r: 8, p: 1, count: 32) }
        #expect(throws: CryptoFailure.self) { try Scrypt.derive(passphrase: [1], salt: [2], n: 1024, r: 0, p: 1, count: 32) }
        #expect(throws: CryptoFailure.self) { try Scrypt.derive(passphrase: [1], salt: [2], n: 1024, r: 8, p: 0, count: 32) }
    }

    @Test func randomBytesDiffer() {
        #expect(Crypto.randomBytes(32) != Crypto.randomBytes(32))
        #expect(Crypto.randomBytes(0).isEmpty)
    }

    @Test func blobIDHexAndOrder() {
        let a = BlobID(bytes: [UInt8](repeating: 0, count: 31) + [1])
        let b = BlobID(bytes: [1] + [UInt8](repeating: 0, count: 31))
        #expect(a < b)
        #expect(BlobID(hex: b.hex) == b)
        #expect(b.bytes.count == 32)
        #expect(BlobID(hex: "zz") == nil)
    }
}

@Suite struct CompressionTests {
    @Test func roundTrip() throws {
        let zstd = ZstdCompressor()
        let unzstd = ZstdDecompressor()
        for input in [[], Array("hello hello hello hello".utf8), TestData.text(count: 100_000, seed: 3)] {
            let packed = try input.withUnsafeBytes { try zstd.compress($0) }
            let back = try packed.withUnsafeBytes { try unzstd.decompress($0, rawLength: input.count) }
            #expect(back == input)
        }
        let text = TestData.text(count: 100_000, seed: 3)
        let packed = try text.withUnsafeBytes { try zstd.compress($0) }
        #expect(packed.count < text.count / 2)
        #expect(throws: CompressionFailure.self) { try packed.withUnsafeBytes { try unzstd.decompress($0, rawLength: text.count - 1) } }
    }

    @Test func patchFromWinsOnSmallChanges() throws {
        let zstd = ZstdCompressor()
        let unzstd = ZstdDecompressor()
        let base = TestData.text(count: 32 << 10, seed: 7)
        var changed = base
        for i in stride(from: 100, to: changed.count, by: 3000) { changed[i] ^= 0x55 }  // ~1% of 1 KiB regions touched
        let whole = try changed.withUnsafeBytes { try zstd.compress($0) }
        let delta = try changed.withUnsafeBytes { c in try base.withUnsafeBytes { try zstd.compress(c, prefix: $0) } }
        let back = try delta.withUnsafeBytes { d in try base.withUnsafeBytes { try unzstd.decompress(d, rawLength: changed.count, prefix: $0) } }
        #expect(back == changed)
        print("patch-from: leaf \(changed.count) B, whole zstd -3 \(whole.count) B, delta \(delta.count) B (\(delta.count * 100 / whole.count)% of whole)")
        #expect(delta.count * 5 < whole.count)
        // The context is reusable after a prefix: plain compression still round-trips.
        let again = try changed.withUnsafeBytes { try zstd.compress($0) }
        #expect(try again.withUnsafeBytes { try unzstd.decompress($0, rawLength: changed.count) } == changed)
        // The wrong prefix does not silently give the right bytes.
        let wrong = TestData.text(count: 32 << 10, seed: 8)
        let result = try? delta.withUnsafeBytes { d in try wrong.withUnsafeBytes { try unzstd.decompress(d, rawLength: changed.count, prefix: $0) } }
        #expect(result != changed)
    }
}

/// Test inputs that compress like documents do.
enum TestData {
    static let words = ["patient", "visit", "dose", "mg", "clinic", "2024-05-01", "_id", "status", "ok", "note", "blood", "pressure"]

    static func text(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var out: [UInt8] = []
        out.reserveCapacity(count + 16)
        while out.count < count {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            out += Array(words[Int(state % UInt64(words.count))].utf8)
            out.append(UInt8(ascii: " "))
            out += Array(String(state % 10_000).utf8)
            out.append(UInt8(ascii: ","))
        }
        return Array(out.prefix(count))
    }
}
