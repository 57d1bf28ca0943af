import COpenSSL
import Foundation

/// scrypt (RFC 7914), with its p lanes run on parallel threads.
///
/// OpenSSL runs the lanes one after another, so unlocking a repository whose key slot
/// was calibrated to about 0.5 s of work (four lanes of 64 MiB each) held one core for
/// that long while the others waited for the key. The lanes are independent by design:
/// here each thread runs its share, so the same work (an attacker's cost is unchanged)
/// ends in about a quarter to a half of the time, at the price of one lane's memory per
/// thread. The two PBKDF2 steps around the lanes come from OpenSSL; tests compare the
/// whole against OpenSSL's `EVP_PBE_scrypt` and RFC 7914's vectors.
enum Scrypt {
    /// Lanes run at once by default.
    static var defaultThreads: Int { min(2, ProcessInfo.processInfo.activeProcessorCount) }

    /// The derived key.
    /// - Parameter threads: at most this many lanes at once (one lane's memory, 128·r·N bytes, each).
    ///   Two by default, even on larger machines: unlocking then needs 128 MiB at N = 2^16,
    ///   whatever the core count, and already takes half the sequential time.
    /// - Throws: `CryptoFailure` for parameters scrypt does not allow.
    static func derive(passphrase: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64, count: Int,
                       threads: Int = defaultThreads) throws -> [UInt8] {
        // RFC 7914's bounds, and what fits in memory here: p·r < 2^30, N a power of two below 2^(16r).
        guard n > 1, n & (n - 1) == 0, n <= 1 << 32, r > 0, p > 0, r * p < 1 << 30, count > 0,
              128 * r * n <= 1 << 36 else {
            throw CryptoFailure("scrypt parameters out of range (N=\(n), r=\(r), p=\(p))")
        }
        let laneBytes = 128 * Int(r)
        var blocks = try pbkdf2(passphrase, salt: salt, count: laneBytes * Int(p))
        let lanes = Int(p)
        let workers = max(1, min(threads, lanes))
        // Lane i goes to worker i % workers; each worker allocates its V once.
        blocks.withUnsafeMutableBytes { raw in
            // Each thread writes only its own lanes' bytes.
            nonisolated(unsafe) let base = raw.baseAddress!
            let run: @Sendable (Int) -> Void = { worker in
                let mixer = LaneMixer(r: Int(r), n: Int(n))
                defer { mixer.release() }
                var lane = worker
                while lane < lanes {
                    mixer.mix(base + lane * laneBytes)
                    lane += workers
                }
            }
            let done = DispatchGroup()
            for worker in 1..<workers {
                done.enter()
                let thread = Thread {
                    run(worker)
                    done.leave()
                }
                thread.name = "ancre-scrypt-\(worker)"
                thread.stackSize = 1 << 20
                thread.start()
            }
            run(0)
            done.wait()
        }
        defer { blocks.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        return try pbkdf2(passphrase, salt: blocks, count: count)
    }

    /// PBKDF2-HMAC-SHA256 with one iteration, as scrypt uses it.
    private static func pbkdf2(_ passphrase: [UInt8], salt: [UInt8], count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        // OpenSSL wants non-null pointers even for empty inputs.
        let pass = passphrase.isEmpty ? [0] : passphrase
        let saltBytes = salt.isEmpty ? [0] : salt
        let ok = pass.withUnsafeBytes { p in
            saltBytes.withUnsafeBytes { s in
                out.withUnsafeMutableBytes { o in
                    PKCS5_PBKDF2_HMAC(
                        p.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(passphrase.count),
                        s.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(salt.count), 1, EVP_sha256(),
                        Int32(count), o.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard ok == 1 else { throw CryptoFailure("PBKDF2 failed") }
        return out
    }
}

/// scryptROMix for one lane at a time, with its 128·r·N bytes of V allocated once.
private final class LaneMixer: @unchecked Sendable {
    let r: Int
    let n: Int
    /// 32·r words per block of B.
    let words: Int
    let v: UnsafeMutablePointer<UInt32>
    let x: UnsafeMutablePointer<UInt32>
    let y: UnsafeMutablePointer<UInt32>

    init(r: Int, n: Int) {
        self.r = r
        self.n = n
        words = 32 * r
        v = .allocate(capacity: words * n)
        x = .allocate(capacity: words)
        y = .allocate(capacity: words)
    }

    /// Wipes and frees the memory: any block of V, X or Y lets a guess at the passphrase be
    /// checked with one PBKDF2 step instead of a whole scrypt (OpenSSL wipes it too).
    func release() {
        OPENSSL_cleanse(v, words * n * 4)
        OPENSSL_cleanse(x, words * 4)
        OPENSSL_cleanse(y, words * 4)
        v.deallocate()
        x.deallocate()
        y.deallocate()
    }

    /// Replaces the lane's 128·r bytes at `lane` with ROMix of them.
    func mix(_ lane: UnsafeMutableRawPointer) {
        for i in 0..<words { x[i] = UInt32(littleEndian: lane.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        var x = self.x
        var y = self.y
        for i in 0..<n {
            (v + i * words).update(from: x, count: words)
            blockMix(x, into: y)
            swap(&x, &y)
        }
        let mask = n - 1
        let last = (2 * r - 1) * 16
        for _ in 0..<n {
            // Integerify: the last 64-byte block's first word (N ≤ 2^32).
            let j = Int(x[last]) & mask
            let vj = v + j * words
            for k in 0..<words { x[k] ^= vj[k] }
            blockMix(x, into: y)
            swap(&x, &y)
        }
        for i in 0..<words { lane.storeBytes(of: x[i].littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
    }

    /// scryptBlockMix with Salsa20/8: even-numbered outputs first, then odd ones.
    @inline(__always)
    private func blockMix(_ b: UnsafeMutablePointer<UInt32>, into out: UnsafeMutablePointer<UInt32>) {
        var state = b + (2 * r - 1) * 16
        for i in 0..<(2 * r) {
            let target = out + (i & 1 == 0 ? (i / 2) * 16 : (r + i / 2) * 16)
            salsa8(state, xor: b + i * 16, into: target)
            state = UnsafeMutablePointer(mutating: target)
        }
    }
}

/// Salsa20/8 core of `a` XOR `b`, written to `out` (which may alias neither).
@inline(__always)
private func salsa8(_ a: UnsafePointer<UInt32>, xor b: UnsafePointer<UInt32>, into out: UnsafeMutablePointer<UInt32>) {
    @inline(__always) func rotl(_ v: UInt32, _ c: UInt32) -> UInt32 { (v &<< c) | (v &>> (32 &- c)) }
    let i0 = a[0] ^ b[0], i1 = a[1] ^ b[1], i2 = a[2] ^ b[2], i3 = a[3] ^ b[3]
    let i4 = a[4] ^ b[4], i5 = a[5] ^ b[5], i6 = a[6] ^ b[6], i7 = a[7] ^ b[7]
    let i8 = a[8] ^ b[8], i9 = a[9] ^ b[9], i10 = a[10] ^ b[10], i11 = a[11] ^ b[11]
    let i12 = a[12] ^ b[12], i13 = a[13] ^ b[13], i14 = a[14] ^ b[14], i15 = a[15] ^ b[15]
    var x0 = i0, x1 = i1, x2 = i2, x3 = i3, x4 = i4, x5 = i5, x6 = i6, x7 = i7
    var x8 = i8, x9 = i9, x10 = i10, x11 = i11, x12 = i12, x13 = i13, x14 = i14, x15 = i15
    for _ in 0..<4 {
        // Columns.
        x4 ^= rotl(x0 &+ x12, 7); x8 ^= rotl(x4 &+ x0, 9); x12 ^= rotl(x8 &+ x4, 13); x0 ^= rotl(x12 &+ x8, 18)
        x9 ^= rotl(x5 &+ x1, 7); x13 ^= rotl(x9 &+ x5, 9); x1 ^= rotl(x13 &+ x9, 13); x5 ^= rotl(x1 &+ x13, 18)
        x14 ^= rotl(x10 &+ x6, 7); x2 ^= rotl(x14 &+ x10, 9); x6 ^= rotl(x2 &+ x14, 13); x10 ^= rotl(x6 &+ x2, 18)
        x3 ^= rotl(x15 &+ x11, 7); x7 ^= rotl(x3 &+ x15, 9); x11 ^= rotl(x7 &+ x3, 13); x15 ^= rotl(x11 &+ x7, 18)
        // Rows.
        x1 ^= rotl(x0 &+ x3, 7); x2 ^= rotl(x1 &+ x0, 9); x3 ^= rotl(x2 &+ x1, 13); x0 ^= rotl(x3 &+ x2, 18)
        x6 ^= rotl(x5 &+ x4, 7); x7 ^= rotl(x6 &+ x5, 9); x4 ^= rotl(x7 &+ x6, 13); x5 ^= rotl(x4 &+ x7, 18)
        x11 ^= rotl(x10 &+ x9, 7); x8 ^= rotl(x11 &+ x10, 9); x9 ^= rotl(x8 &+ x11, 13); x10 ^= rotl(x9 &+ x8, 18)
        x12 ^= rotl(x15 &+ x14, 7); x13 ^= rotl(x12 &+ x15, 9); x14 ^= rotl(x13 &+ x12, 13); x15 ^= rotl(x14 &+ x13, 18)
    }
    out[0] = x0 &+ i0; out[1] = x1 &+ i1; out[2] = x2 &+ i2; out[3] = x3 &+ i3
    out[4] = x4 &+ i4; out[5] = x5 &+ i5; out[6] = x6 &+ i6; out[7] = x7 &+ i7
    out[8] = x8 &+ i8; out[9] = x9 &+ i9; out[10] = x10 &+ i10; out[11] = x11 &+ i11
    out[12] = x12 &+ i12; out[13] = x13 &+ i13; out[14] = x14 &+ i14; out[15] = x15 &+ i15
}
