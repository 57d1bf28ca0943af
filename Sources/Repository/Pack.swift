import Synchronization

/// One blob's place in a pack, as recorded in the pack header and the index.
struct PackEntry: Sendable, Equatable {
    var id: BlobID
    var type: BlobType
    var encoding: BlobEncoding
    /// Byte offset of the sealed blob within the pack; also its nonce.
    var offset: UInt32
    /// Sealed length: payload plus the 16-byte tag.
    var length: UInt32
    var rawLength: UInt32
    /// The whole blob a delta was compressed against.
    var base: BlobID?
}

/// Constants and helpers of the pack format (FORMAT.md "Packs").
enum PackFormat {
    static let magic: [UInt8] = Array("ANCREPK1".utf8)
    static let keyIDLength = 16
    /// header length (4) + key id (16) + magic (8)
    static let trailerLength = 4 + keyIDLength + 8
    static let headerVersion: UInt8 = 1
    static let headerNonce = [UInt8](repeating: 0xFF, count: AESGCM.nonceLength)
    static let headerAAD: [UInt8] = Array("ancre pack header v1".utf8)
    /// Offsets are 32-bit in headers and index entries.
    static let maximumSize = Int(UInt32.max)

    static func storageKey(_ name: String) -> String { "data/\(name.prefix(2))/\(name)" }

    static func packKey(_ master: MasterKey, keyID: [UInt8]) -> [UInt8] {
        master.subkey(salt: keyID, info: "ancre pack v1")
    }

    /// The nonce of the blob at `offset`: unique within the pack, whose key is unique.
    static func blobNonce(offset: UInt32) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: AESGCM.nonceLength)
        withUnsafeBytes(of: UInt64(offset).littleEndian) { nonce.replaceSubrange(0..<8, with: $0) }
        return nonce
    }

    /// AAD of a blob: its id then its type byte, so a blob cannot be moved under another id or type.
    static func blobAAD(id: BlobID, type: BlobType) -> [UInt8] {
        var aad = id.bytes
        aad.append(type.rawValue)
        return aad
    }

    static func encodeHeader(_ entries: [PackEntry]) -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(5 + entries.count * 78)
        w.u8(headerVersion)
        w.u32(UInt32(entries.count))
        for e in entries {
            w.u8(e.type.rawValue)
            w.u8(e.encoding.rawValue)
            w.id(e.id)
            w.u32(e.offset)
            w.u32(e.length)
            w.u32(e.rawLength)
            if e.encoding == .delta { w.id(e.base!) }
        }
        return w.bytes
    }

    /// - Throws: `ByteReader.Truncated` or `CryptoFailure` for a malformed header.
    static func decodeHeader(_ bytes: [UInt8]) throws -> [PackEntry] {
        var r = ByteReader(bytes)
        guard try r.u8() == headerVersion else { throw CryptoFailure("unknown pack header version") }
        let count = Int(try r.u32())
        guard count <= bytes.count / 46 else { throw ByteReader.Truncated() }
        var entries: [PackEntry] = []
        entries.reserveCapacity(count)
        for _ in 0..<count {
            guard let type = BlobType(rawValue: try r.u8()), let encoding = BlobEncoding(rawValue: try r.u8()) else {
                throw CryptoFailure("unknown blob type or encoding")
            }
            let id = try r.id()
            let offset = try r.u32(), length = try r.u32(), rawLength = try r.u32()
            let base = encoding == .delta ? try r.id() : nil
            entries.append(PackEntry(id: id, type: type, encoding: encoding, offset: offset, length: length, rawLength: rawLength, base: base))
        }
        guard r.remaining == 0 else { throw CryptoFailure("trailing bytes after pack header") }
        return entries
    }
}

/// Accumulates sealed blobs for one pack, then seals the header and names the pack.
///
/// Thread-safe; in practice one saver appends at a time (the repository hands a writer
/// to one thread), while readers may copy out blobs not yet uploaded.
final class PackWriter: Sendable {
    let keyID: [UInt8]
    private let packKey: [UInt8]

    private struct State {
        var bytes: [UInt8]
        var entries: [PackEntry] = []
        let aead: AESGCM
        /// The pack's name, hashed as blobs are appended, while their bytes are still in cache.
        let name = StreamingDigest(.sha256)
        var hashed = 0

        mutating func hashAppended() {
            bytes.withUnsafeBytes { name.update(UnsafeRawBufferPointer(rebasing: $0[hashed...])) }
            hashed = bytes.count
        }
    }
    private let state: Mutex<State>

    init(master: MasterKey, capacity: Int) {
        let keyID = Crypto.randomBytes(PackFormat.keyIDLength)
        self.keyID = keyID
        self.packKey = PackFormat.packKey(master, keyID: keyID)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(capacity)
        state = Mutex(State(bytes: bytes, aead: AESGCM(key: packKey)))
    }

    /// Bytes written so far (blobs only).
    var size: Int { state.withLock { $0.bytes.count } }
    var count: Int { state.withLock { $0.entries.count } }

    /// Encrypts `payload` and appends it; returns where it went.
    func append(id: BlobID, type: BlobType, encoding: BlobEncoding, payload: UnsafeRawBufferPointer, rawLength: Int, base: BlobID?) -> PackEntry {
        state.withLock { state in
            let offset = UInt32(state.bytes.count)
            let aad = PackFormat.blobAAD(id: id, type: type)
            aad.withUnsafeBytes { state.aead.seal(payload, nonce: PackFormat.blobNonce(offset: offset), aad: $0, appendingTo: &state.bytes) }
            state.hashAppended()
            let entry = PackEntry(
                id: id, type: type, encoding: encoding, offset: offset,
                length: UInt32(payload.count + AESGCM.tagLength), rawLength: UInt32(rawLength), base: base)
            state.entries.append(entry)
            return entry
        }
    }

    /// A copy of one sealed blob, for reading blobs before the pack is uploaded.
    func sealedBlob(_ entry: PackEntry) -> [UInt8] {
        state.withLock { Array($0.bytes[Int(entry.offset)..<Int(entry.offset + entry.length)]) }
    }

    /// Appends the sealed header and trailer and returns the pack's bytes, name and entries.
    /// The writer must not be appended to afterwards.
    func seal() -> (name: String, bytes: [UInt8], entries: [PackEntry]) {
        state.withLock { state in
            let header = PackFormat.encodeHeader(state.entries)
            let headerStart = state.bytes.count
            header.withUnsafeBytes { h in
                PackFormat.headerAAD.withUnsafeBytes { state.aead.seal(h, nonce: PackFormat.headerNonce, aad: $0, appendingTo: &state.bytes) }
            }
            var trailer = ByteWriter()
            trailer.u32(UInt32(state.bytes.count - headerStart))
            trailer.append(keyID)
            trailer.append(PackFormat.magic)
            state.bytes += trailer.bytes
            state.hashAppended()
            let name = state.name.finalize()
            return (name, state.bytes, state.entries)
        }
    }
}

/// Reads pack headers and blobs from storage.
enum PackReader {
    /// The trailer's fields, parsed from the last 28 bytes.
    struct Trailer {
        var headerLength: Int
        var keyID: [UInt8]
    }

    static func parseTrailer(_ tail: ArraySlice<UInt8>, pack: String) throws -> Trailer {
        guard tail.count == PackFormat.trailerLength, Array(tail.suffix(8)) == PackFormat.magic else {
            throw RepositoryError(.packTruncated, "pack \(pack) has no valid trailer: it is truncated or not a pack; run `ancre check`")
        }
        var r = ByteReader(Array(tail))
        let headerLength = Int(try r.u32())
        let keyID = Array(try r.take(PackFormat.keyIDLength))
        return Trailer(headerLength: headerLength, keyID: keyID)
    }

    /// Reads and decrypts a pack's header from storage: one `stat` and one or two ranged reads.
    /// - Throws: `RepositoryError` `.packMissing`, `.packTruncated`, `.packCorrupt`, `.ioFailure`.
    static func readHeader(storage: some Storage, name: String, master: MasterKey) throws -> (keyID: [UInt8], entries: [PackEntry], size: Int) {
        let key = PackFormat.storageKey(name)
        guard let size = try storage.stat(key) else {
            throw RepositoryError(.packMissing, "pack \(name) is missing from storage; run `ancre check`")
        }
        guard size >= PackFormat.trailerLength + AESGCM.tagLength + 5 else {
            throw RepositoryError(.packTruncated, "pack \(name) is \(size) bytes, too short to be a pack: it is truncated")
        }
        // Guess the header fits in the last 64 KiB to save a round trip.
        let guess = min(size, 64 << 10)
        var tail = try storage.get(key, range: (size - guess)..<size)
        guard tail.count == guess else { throw RepositoryError(.packTruncated, "pack \(name) shrank while being read") }
        let trailer = try parseTrailer(tail[(tail.count - PackFormat.trailerLength)...], pack: name)
        let headerTotal = trailer.headerLength + PackFormat.trailerLength
        guard trailer.headerLength >= AESGCM.tagLength, headerTotal <= size else {
            throw RepositoryError(.packCorrupt, "pack \(name) has an impossible header length \(trailer.headerLength)")
        }
        if headerTotal > tail.count {
            tail = try storage.get(key, range: (size - headerTotal)..<size)
        }
        let headerStart = tail.count - headerTotal
        let aead = AESGCM(key: PackFormat.packKey(master, keyID: trailer.keyID))
        let plain: [UInt8]
        do {
            plain = try tail.withUnsafeBytes { raw in
                try PackFormat.headerAAD.withUnsafeBytes {
                    try aead.open(UnsafeRawBufferPointer(rebasing: raw[headerStart..<(headerStart + trailer.headerLength)]), nonce: PackFormat.headerNonce, aad: $0)
                }
            }
        } catch {
            throw RepositoryError(.packCorrupt, "pack \(name): header fails authentication (altered bytes or another repository's pack)", underlying: error)
        }
        do {
            let entries = try PackFormat.decodeHeader(plain)
            let blobEnd = size - headerTotal
            for e in entries where Int(e.offset) + Int(e.length) > blobEnd {
                throw RepositoryError(.packCorrupt, "pack \(name): blob \(e.id.short) lies outside the pack's blob area")
            }
            return (trailer.keyID, entries, size)
        } catch let error as RepositoryError {
            throw error
        } catch {
            throw RepositoryError(.packCorrupt, "pack \(name): header is malformed", underlying: error)
        }
    }

    /// Decrypts one sealed blob read from a pack.
    /// - Throws: `RepositoryError` `.packCorrupt` naming the pack and blob when authentication fails.
    static func openBlob(_ sealed: [UInt8], entry: PackEntry, aead: AESGCM, pack: String) throws -> [UInt8] {
        do {
            return try aead.open(sealed, nonce: PackFormat.blobNonce(offset: entry.offset), aad: PackFormat.blobAAD(id: entry.id, type: entry.type))
        } catch {
            throw RepositoryError(
                .packCorrupt,
                "blob \(entry.id) in pack \(pack) fails authentication: the pack is damaged; run `ancre check --read-data`",
                underlying: error)
        }
    }
}
