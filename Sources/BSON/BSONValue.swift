/// A decoded BSON value.
///
/// Hot paths (sorting, hashing, copying documents) work on raw bytes instead; this
/// enum is for reading metadata, commands and replies, and for building documents.
public enum BSONValue: Sendable, Hashable {
    case double(Double)
    case string(String)
    case document(Document)
    case array([BSONValue])
    case binary(subtype: UInt8, data: [UInt8])
    case undefined
    case objectID(ObjectID)
    case bool(Bool)
    case datetime(Int64)
    case null
    case regex(pattern: String, options: String)
    case dbPointer(namespace: String, id: ObjectID)
    case javascript(String)
    case symbol(String)
    case javascriptWithScope(code: String, scope: Document)
    case int32(Int32)
    case timestamp(Timestamp)
    case int64(Int64)
    case decimal128(Decimal128)
    case minKey
    case maxKey

    public var type: BSONType {
        switch self {
        case .double: .double
        case .string: .string
        case .document: .document
        case .array: .array
        case .binary: .binary
        case .undefined: .undefined
        case .objectID: .objectID
        case .bool: .bool
        case .datetime: .datetime
        case .null: .null
        case .regex: .regex
        case .dbPointer: .dbPointer
        case .javascript: .javascript
        case .symbol: .symbol
        case .javascriptWithScope: .javascriptWithScope
        case .int32: .int32
        case .timestamp: .timestamp
        case .int64: .int64
        case .decimal128: .decimal128
        case .minKey: .minKey
        case .maxKey: .maxKey
        }
    }

    static func decode(type: UInt8, _ p: UnsafeRawBufferPointer, at o: Int, length: Int) -> BSONValue {
        func string(at s: Int) -> String {
            let n = Int(loadInt32(p, s))
            return String(decoding: UnsafeRawBufferPointer(rebasing: p[(s + 4)..<(s + 4 + n - 1)]), as: UTF8.self)
        }
        func bytes(_ range: Range<Int>) -> [UInt8] { Array(UnsafeRawBufferPointer(rebasing: p[range])) }
        func oid(at s: Int) -> ObjectID { ObjectID(bytes: bytes(s..<(s + 12))) }
        switch type {
        case 0x01: return .double(Double(bitPattern: loadUInt64(p, o)))
        case 0x02: return .string(string(at: o))
        case 0x03: return .document(Document(trustedBytes: bytes(o..<(o + length))))
        case 0x04: return .array(Document(trustedBytes: bytes(o..<(o + length))).arrayValues)
        case 0x05:
            let n = Int(loadInt32(p, o))
            return .binary(subtype: p[o + 4], data: bytes((o + 5)..<(o + 5 + n)))
        case 0x06: return .undefined
        case 0x07: return .objectID(oid(at: o))
        case 0x08: return .bool(p[o] != 0)
        case 0x09: return .datetime(loadInt64(p, o))
        case 0x0A: return .null
        case 0x0B:
            let a = cStringEnd(p, o, o + length)!
            let pattern = String(decoding: UnsafeRawBufferPointer(rebasing: p[o..<(a - 1)]), as: UTF8.self)
            let options = String(decoding: UnsafeRawBufferPointer(rebasing: p[a..<(o + length - 1)]), as: UTF8.self)
            return .regex(pattern: pattern, options: options)
        case 0x0C:
            let n = Int(loadInt32(p, o))
            return .dbPointer(namespace: string(at: o), id: oid(at: o + 4 + n))
        case 0x0D: return .javascript(string(at: o))
        case 0x0E: return .symbol(string(at: o))
        case 0x0F:
            let codeLength = Int(loadInt32(p, o + 4))
            let scopeStart = o + 8 + codeLength
            return .javascriptWithScope(
                code: string(at: o + 4), scope: Document(trustedBytes: bytes(scopeStart..<(o + length))))
        case 0x10: return .int32(loadInt32(p, o))
        case 0x11: return .timestamp(Timestamp(rawValue: loadUInt64(p, o)))
        case 0x12: return .int64(loadInt64(p, o))
        case 0x13: return .decimal128(Decimal128(low: loadUInt64(p, o), high: loadUInt64(p, o + 8)))
        case 0x7F: return .maxKey
        default: return .minKey
        }
    }

    // Convenience accessors for reading commands and metadata.
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var documentValue: Document? { if case .document(let d) = self { d } else { nil } }
    public var arrayValue: [BSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var timestampValue: Timestamp? { if case .timestamp(let t) = self { t } else { nil } }

    /// Any numeric value as Int64 (doubles truncated), else nil.
    public var int64Value: Int64? {
        switch self {
        case .int32(let v): Int64(v)
        case .int64(let v): v
        case .double(let v) where v.isFinite && abs(v) < 9.2e18: Int64(v)
        default: nil
        }
    }

    public var isNumber: Bool {
        switch self {
        case .int32, .int64, .double, .decimal128: true
        default: false
        }
    }
}

/// A BSON timestamp: seconds since the epoch and an increment; orders oplog entries.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public var seconds: UInt32
    public var increment: UInt32

    public init(seconds: UInt32, increment: UInt32) {
        self.seconds = seconds
        self.increment = increment
    }

    /// The wire form: increment in the low 32 bits, seconds in the high 32 bits.
    public init(rawValue: UInt64) {
        self.seconds = UInt32(truncatingIfNeeded: rawValue >> 32)
        self.increment = UInt32(truncatingIfNeeded: rawValue)
    }

    public var rawValue: UInt64 { UInt64(seconds) << 32 | UInt64(increment) }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.rawValue < b.rawValue }

    /// `seconds:increment`, the form `--to ts:S:I` takes.
    public var description: String { "\(seconds):\(increment)" }

    /// Parses `seconds:increment`.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let s = UInt32(parts[0]), let i = UInt32(parts[1]) else { return nil }
        self.init(seconds: s, increment: i)
    }
}

/// A 12-byte ObjectId.
public struct ObjectID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 12, "an ObjectId has 12 bytes")
        self.bytes = bytes
    }

    public init?(hex: String) {
        guard hex.utf8.count == 24 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(12)
        var it = hex.utf8.makeIterator()
        while let h = it.next(), let l = it.next() {
            guard let hv = hexNibble(h), let lv = hexNibble(l) else { return nil }
            out.append(hv << 4 | lv)
        }
        self.bytes = out
    }

    public var description: String { hexString(bytes) }

    public static func < (a: ObjectID, b: ObjectID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// An IEEE 754-2008 decimal128 in BID encoding, as BSON stores it.
public struct Decimal128: Sendable, Hashable {
    public let low: UInt64
    public let high: UInt64

    public init(low: UInt64, high: UInt64) {
        self.low = low
        self.high = high
    }
}

func hexNibble(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// Lower-case hex of `bytes`.
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}
