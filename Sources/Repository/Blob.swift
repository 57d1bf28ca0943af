/// A blob's id: HMAC-SHA256 of its plaintext under the repository's id key.
///
/// Stored as four big-endian words so comparing the tuple compares the bytes.
public struct BlobID: Hashable, Comparable, Sendable, CustomStringConvertible {
    let w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    /// The length of an id in bytes.
    public static let length = 32

    /// Makes an id from exactly 32 bytes.
    public init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == Self.length, "a blob id is 32 bytes")
        var words: [UInt64] = [0, 0, 0, 0]
        for (i, byte) in bytes.enumerated() {
            words[i >> 3] = words[i >> 3] << 8 | UInt64(byte)
        }
        (w0, w1, w2, w3) = (words[0], words[1], words[2], words[3])
    }

    init(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64, _ w3: UInt64) {
        (self.w0, self.w1, self.w2, self.w3) = (w0, w1, w2, w3)
    }

    /// Reads an id at `offset` in a raw buffer.
    init(_ buffer: UnsafeRawBufferPointer, at offset: Int) {
        func word(_ i: Int) -> UInt64 { UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset + 8 * i, as: UInt64.self)) }
        (w0, w1, w2, w3) = (word(0), word(1), word(2), word(3))
    }

    /// Parses 64 hex digits.
    public init?(hex: String) {
        guard let bytes = decodeHex(hex), bytes.count == Self.length else { return nil }
        self.init(bytes: bytes)
    }

    /// The 32 bytes of the id.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        append(to: &out)
        return out
    }

    func append(to output: inout [UInt8]) {
        for word in [w0, w1, w2, w3] {
            withUnsafeBytes(of: word.bigEndian) { output.append(contentsOf: $0) }
        }
    }

    /// Lowercase hex, 64 characters.
    public var hex: String { encodeHex(bytes) }
    public var description: String { hex }
    /// The first 8 hex digits, for log lines and messages.
    public var short: String { String(hex.prefix(8)) }

    public static func < (a: BlobID, b: BlobID) -> Bool {
        (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3)
    }
}

/// What a blob holds; stored in pack headers and index entries as one byte.
public enum BlobType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case leaf = 1, node = 2, oplog = 3, manifest = 4, metadata = 5

    public var description: String {
        switch self {
        case .leaf: "leaf"
        case .node: "node"
        case .oplog: "oplog"
        case .manifest: "manifest"
        case .metadata: "metadata"
        }
    }
}

/// How a blob's plaintext was turned into its stored payload (before encryption).
enum BlobEncoding: UInt8, Sendable {
    /// Stored as is: compression did not help.
    case raw = 0
    /// One zstd frame.
    case zstd = 1
    /// One zstd frame compressed with a whole base blob's plaintext as prefix.
    case delta = 2
}

/// What `Repository.saveBlob` did with a blob.
public struct SavedBlob: Sendable, Equatable {
    public var id: BlobID
    public var type: BlobType
    /// True when the repository already had the blob and stored nothing.
    public var deduplicated: Bool
    /// Bytes written to the pack for this blob (0 when deduplicated).
    public var storedLength: Int
    /// The plaintext length.
    public var rawLength: Int
    /// The base of a delta, `nil` when stored whole (or deduplicated).
    public var deltaBase: BlobID?
}

private let hexDigits = Array("0123456789abcdef".utf8)

func encodeHex(_ bytes: some Sequence<UInt8>) -> String {
    var out: [UInt8] = []
    for byte in bytes {
        out.append(hexDigits[Int(byte >> 4)])
        out.append(hexDigits[Int(byte & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}

func decodeHex(_ text: String) -> [UInt8]? {
    let utf8 = Array(text.utf8)
    guard utf8.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(utf8.count / 2)
    var i = 0
    while i < utf8.count {
        guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

/// Little-endian encoding for the binary formats in FORMAT.md.
struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func append(_ v: some Sequence<UInt8>) { bytes.append(contentsOf: v) }
    mutating func id(_ id: BlobID) { id.append(to: &bytes) }
}

/// Little-endian decoding that throws on truncation instead of trapping.
struct ByteReader {
    struct Truncated: Error {}
    let bytes: [UInt8]
    var position: Int = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - position }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else { throw Truncated() }
        defer { position += n }
        return bytes[position..<position + n]
    }
    mutating func u8() throws -> UInt8 { try take(1).first! }
    mutating func u32() throws -> UInt32 {
        let s = try take(4)
        return s.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    }
    mutating func u64() throws -> UInt64 {
        let s = try take(8)
        return s.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }
    mutating func id() throws -> BlobID {
        let s = try take(32)
        return s.withUnsafeBytes { BlobID($0, at: 0) }
    }
}
