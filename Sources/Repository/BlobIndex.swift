/// A pack as the index knows it: its name and the key id its blobs are sealed under.
struct PackInfo: Sendable, Hashable {
    /// 64 hex digits: SHA-256 of the pack's bytes.
    var name: String
    var keyID: [UInt8]
}

/// One blob in the in-memory index: 44 bytes, no pointers.
///
/// `packAndFlags` holds the pack number (low 26 bits), the blob type (4 bits) and
/// the encoding (2 bits). The id is stored as eight 32-bit words, so records sort by
/// id and the struct needs only 4-byte alignment (a 64-bit word would pad it to 48).
/// The raw length is not kept: a zstd frame records its content size, and the index
/// keeps raw totals per type for statistics.
struct IndexRecord: Sendable {
    var h0: UInt32, h1: UInt32, h2: UInt32, h3: UInt32, h4: UInt32, h5: UInt32, h6: UInt32, h7: UInt32
    var packAndFlags: UInt32
    var offset: UInt32
    var length: UInt32

    static let maximumPacks = 1 << 26

    init(pack: UInt32, entry: PackEntry) {
        let id = entry.id
        (h0, h1) = (UInt32(truncatingIfNeeded: id.w0 >> 32), UInt32(truncatingIfNeeded: id.w0))
        (h2, h3) = (UInt32(truncatingIfNeeded: id.w1 >> 32), UInt32(truncatingIfNeeded: id.w1))
        (h4, h5) = (UInt32(truncatingIfNeeded: id.w2 >> 32), UInt32(truncatingIfNeeded: id.w2))
        (h6, h7) = (UInt32(truncatingIfNeeded: id.w3 >> 32), UInt32(truncatingIfNeeded: id.w3))
        packAndFlags = pack | UInt32(entry.type.rawValue & 0xF) << 26 | UInt32(entry.encoding.rawValue) << 30
        offset = entry.offset
        length = entry.length
    }

    var w0: UInt64 { UInt64(h0) << 32 | UInt64(h1) }
    var w1: UInt64 { UInt64(h2) << 32 | UInt64(h3) }
    var w2: UInt64 { UInt64(h4) << 32 | UInt64(h5) }
    var w3: UInt64 { UInt64(h6) << 32 | UInt64(h7) }

    var id: BlobID { BlobID(w0, w1, w2, w3) }
    var pack: Int { Int(packAndFlags & 0x3FF_FFFF) }
    var type: BlobType { BlobType(rawValue: UInt8(packAndFlags >> 26 & 0xF))! }
    var encoding: BlobEncoding { BlobEncoding(rawValue: UInt8(packAndFlags >> 30))! }

    func entry(base: BlobID?) -> PackEntry {
        // rawLength 0: not kept in memory (see above).
        PackEntry(id: id, type: type, encoding: encoding, offset: offset, length: length, rawLength: 0, base: base)
    }

    static func < (a: IndexRecord, b: IndexRecord) -> Bool {
        (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3)
    }
}

/// The in-memory map from blob id to its place in a pack.
///
/// A sorted array of 48-byte records (binary search) plus a small dictionary of
/// blobs added since the last `merge`; delta bases live in a side table, since
/// deltas are few. Not thread-safe: the repository guards it with its lock.
struct BlobIndex: Sendable {
    private(set) var packs: [PackInfo] = []
    private var packNumbers: [String: UInt32] = [:]
    private var sorted: [IndexRecord] = []
    private var overlay: [BlobID: IndexRecord] = [:]
    private var deltaBases: [BlobID: BlobID] = [:]
    /// Plaintext bytes per blob type, from the index files (records do not keep them).
    private(set) var rawTotals: [BlobType: Int] = [:]

    var count: Int { sorted.count + overlay.count }

    /// Registers a pack (idempotent) and returns its number.
    mutating func packNumber(_ pack: PackInfo) -> UInt32 {
        if let n = packNumbers[pack.name] { return n }
        precondition(packs.count < IndexRecord.maximumPacks, "too many packs for the index")
        let n = UInt32(packs.count)
        packs.append(pack)
        packNumbers[pack.name] = n
        return n
    }

    func packInfo(named name: String) -> PackInfo? {
        packNumbers[name].map { packs[Int($0)] }
    }

    /// Adds a blob to the overlay; the first location of a blob wins.
    mutating func insert(pack: PackInfo, entry: PackEntry) {
        guard lookupRecord(entry.id) == nil else { return }
        let number = packNumber(pack)
        overlay[entry.id] = IndexRecord(pack: number, entry: entry)
        if let base = entry.base { deltaBases[entry.id] = base }
        rawTotals[entry.type, default: 0] += Int(entry.rawLength)
    }

    /// Appends without deduplication or ordering; call `finishBulkLoad` afterwards.
    mutating func bulkAppend(pack: UInt32, entry: PackEntry) {
        sorted.append(IndexRecord(pack: pack, entry: entry))
        if let base = entry.base { deltaBases[entry.id] = base }
        rawTotals[entry.type, default: 0] += Int(entry.rawLength)
    }

    /// Drops every blob of the named packs; `rawRemoved` (from their index files) keeps
    /// the raw totals right.
    mutating func removePacks(_ names: Set<String>, rawRemoved: [BlobType: Int]) {
        merge()
        sorted.removeAll { names.contains(packs[Int($0.pack)].name) }
        deltaBases = deltaBases.filter { lookupRecord($0.key) != nil }
        for (type, bytes) in rawRemoved { rawTotals[type, default: 0] -= bytes }
    }

    /// Sorts bulk-loaded records and drops duplicate ids (the same blob in two packs).
    mutating func finishBulkLoad() {
        sorted.sort(by: <)
        guard sorted.count > 1 else { return }
        var write = 1
        for read in 1..<sorted.count where sorted[read].id != sorted[write - 1].id {
            sorted[write] = sorted[read]
            write += 1
        }
        sorted.removeSubrange(write...)
        // Appending grew the buffer by doubling; give back the slack (up to 2x the records).
        if sorted.capacity > sorted.count + sorted.count / 64 {
            var exact: [IndexRecord] = []
            exact.reserveCapacity(sorted.count)
            exact.append(contentsOf: sorted)
            sorted = exact
        }
    }


    /// Moves the overlay into the sorted array (one merge pass).
    mutating func merge() {
        guard !overlay.isEmpty else { return }
        let fresh = overlay.values.sorted(by: <)
        overlay.removeAll()
        var merged: [IndexRecord] = []
        merged.reserveCapacity(sorted.count + fresh.count)
        var i = 0, j = 0
        while i < sorted.count || j < fresh.count {
            if j == fresh.count || (i < sorted.count && sorted[i] < fresh[j]) {
                merged.append(sorted[i]); i += 1
            } else {
                merged.append(fresh[j]); j += 1
            }
        }
        sorted = merged
    }

    private func lookupRecord(_ id: BlobID) -> IndexRecord? {
        if let record = overlay[id] { return record }
        var low = 0, high = sorted.count
        let key = (id.w0, id.w1, id.w2, id.w3)
        while low < high {
            let mid = (low + high) / 2
            let r = sorted[mid]
            let k = (r.w0, r.w1, r.w2, r.w3)
            if k < key { low = mid + 1 } else if k == key { return r } else { high = mid }
        }
        return nil
    }

    func contains(_ id: BlobID) -> Bool { lookupRecord(id) != nil }

    /// The blob's pack and entry, or `nil` when unknown.
    func lookup(_ id: BlobID) -> (pack: PackInfo, entry: PackEntry)? {
        guard let record = lookupRecord(id) else { return nil }
        return (packs[record.pack], record.entry(base: deltaBases[id]))
    }

    /// Every blob, sorted records first, then the overlay.
    func forEach(_ body: (PackInfo, PackEntry) throws -> Void) rethrows {
        for r in sorted { try body(packs[r.pack], r.entry(base: deltaBases[r.id])) }
        for r in overlay.values { try body(packs[r.pack], r.entry(base: deltaBases[r.id])) }
    }

    /// Memory held by the index, by construction: record storage, pack table and side tables.
    var memoryFootprint: Int {
        let records = sorted.capacity * MemoryLayout<IndexRecord>.stride
        // Dictionaries keep about 1/0.75 slots per element, each key + value (+ a metadata bit).
        let overlayBytes = overlay.capacity * (MemoryLayout<BlobID>.stride + MemoryLayout<IndexRecord>.stride)
        let deltaBytes = deltaBases.capacity * 2 * MemoryLayout<BlobID>.stride
        // Per pack: a 64-byte name string and 16-byte key id on the heap (with headers),
        // the PackInfo itself and a dictionary slot.
        let perPack = MemoryLayout<PackInfo>.stride + (64 + 32) + (16 + 32) + MemoryLayout<String>.stride + 4
        return records + overlayBytes + deltaBytes + packs.capacity * perPack
    }
}

/// The binary index file format (FORMAT.md "Index files").
enum IndexFile {
    static let magic: [UInt8] = Array("ANCREIX1".utf8)
    static let kind = "index"

    static func encode(packs: [PackInfo], entries: [(pack: UInt32, entry: PackEntry)]) -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(16 + packs.count * 48 + entries.count * 80)
        w.append(magic)
        w.u32(UInt32(packs.count))
        for p in packs {
            w.append(decodeHex(p.name)!)
            w.append(p.keyID)
        }
        w.u32(UInt32(entries.count))
        for (pack, e) in entries.sorted(by: { $0.entry.id < $1.entry.id }) {
            w.id(e.id)
            w.u32(pack)
            w.u8(e.type.rawValue)
            w.u8(e.encoding.rawValue)
            w.u32(e.offset)
            w.u32(e.length)
            w.u32(e.rawLength)
            if e.encoding == .delta { w.id(e.base!) }
        }
        return w.bytes
    }

    /// - Throws: `ByteReader.Truncated` or `CryptoFailure` for malformed content.
    static func decode(_ bytes: [UInt8]) throws -> (packs: [PackInfo], entries: [(pack: UInt32, entry: PackEntry)]) {
        var r = ByteReader(bytes)
        guard Array(try r.take(8)) == magic else { throw CryptoFailure("not an index file") }
        let packCount = Int(try r.u32())
        guard packCount <= r.remaining / 48 else { throw ByteReader.Truncated() }
        var packs: [PackInfo] = []
        for _ in 0..<packCount {
            let name = encodeHex(try r.take(32))
            packs.append(PackInfo(name: name, keyID: Array(try r.take(PackFormat.keyIDLength))))
        }
        let count = Int(try r.u32())
        guard count <= r.remaining / 50 else { throw ByteReader.Truncated() }
        var entries: [(UInt32, PackEntry)] = []
        entries.reserveCapacity(count)
        for _ in 0..<count {
            let id = try r.id()
            let pack = try r.u32()
            guard Int(pack) < packCount, let type = BlobType(rawValue: try r.u8()), let encoding = BlobEncoding(rawValue: try r.u8()) else {
                throw CryptoFailure("index entry with an unknown pack, type or encoding")
            }
            let offset = try r.u32(), length = try r.u32(), rawLength = try r.u32()
            let base = encoding == .delta ? try r.id() : nil
            entries.append((pack, PackEntry(id: id, type: type, encoding: encoding, offset: offset, length: length, rawLength: rawLength, base: base)))
        }
        guard r.remaining == 0 else { throw CryptoFailure("trailing bytes in index file") }
        return (packs, entries)
    }
}
