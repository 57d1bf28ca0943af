/// One BSON document, owning its bytes.
///
/// A `Document` is always structurally valid: the initializers that take bytes
/// from outside validate them. Reading a field walks the bytes without copying.
public struct Document: Sendable, Hashable {
    public let bytes: [UInt8]

    /// Validates `bytes` as exactly one BSON document.
    /// - Throws: `BSONError` naming the first bad byte.
    public init(bytes: [UInt8]) throws(BSONError) {
        try bytes.withUnsafeBytes { p in Result { () throws(BSONError) in try Self.validate(p) } }.get()
        self.bytes = bytes
    }

    /// Checks that `bytes` hold exactly one valid BSON document, as `init(bytes:)` does,
    /// without copying them (for a first pass over a file's buffer).
    /// - Throws: `BSONError` naming the first bad byte.
    public static func validate(_ bytes: UnsafeRawBufferPointer) throws(BSONError) {
        let length = try validateDocument(bytes, at: 0, end: bytes.count, depth: 0)
        guard length == bytes.count else {
            throw BSONError(.badLength, at: length, "\(bytes.count - length) bytes follow the document")
        }
    }

    /// The `_id` of a document's bytes, which `validate(_:)` accepted, as a sortable key;
    /// nil if absent.
    public static func idKey(ofValidated bytes: UnsafeRawBufferPointer) -> BSONKey? {
        var key: [UInt8] = []
        return appendIDKey(ofValidated: bytes, to: &key) ? BSONKey(trustedBytes: key) : nil
    }

    /// Appends the bytes of a validated document's `_id` key (`BSONKey.bytes`: type byte,
    /// then value) to `out`, for callers that keep many keys end to end instead of one
    /// array each; false (and nothing appended) if the document has no `_id`.
    public static func appendIDKey(ofValidated bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) -> Bool {
        var found = false
        let id: [UInt8] = [0x5F, 0x69, 0x64]
        id.withUnsafeBufferPointer { idBytes in
            forEachElementUntil(in: bytes) { element in
                guard element.keyEquals(idBytes) else { return true }
                out.append(element.buffer[element.typeOffset])
                out.append(contentsOf: element.valueBytes)
                found = true
                return false
            }
        }
        return found
    }

    /// Wraps bytes already known to be valid (written by this process or checked by a MAC).
    public init(trustedBytes: [UInt8]) {
        self.bytes = trustedBytes
    }

    /// The empty document `{}`.
    public init() {
        self.bytes = [5, 0, 0, 0, 0]
    }

    public var byteCount: Int { bytes.count }
    public var isEmpty: Bool { bytes.count <= 5 }

    /// Calls `body` with each element, in order, without copying.
    public func forEachElement(_ body: (RawElement) throws -> Void) rethrows {
        try bytes.withUnsafeBytes { p in
            try Self.walkElements(in: p) { element in
                try body(element)
                return true
            }
        }
    }

    /// The element named `key`, if present.
    public subscript(key: String) -> BSONValue? {
        var result: BSONValue?
        var k = key
        k.withUTF8 { keyBytes in
            forEachElementUntil { element in
                if element.keyEquals(keyBytes) {
                    result = element.value
                    return false
                }
                return true
            }
        }
        return result
    }

    /// Walks elements until `body` returns false.
    func forEachElementUntil(_ body: (RawElement) -> Bool) {
        bytes.withUnsafeBytes { Self.forEachElementUntil(in: $0, body) }
    }

    /// Walks the elements of a validated document's bytes until `body` returns false.
    static func forEachElementUntil(in p: UnsafeRawBufferPointer, _ body: (RawElement) -> Bool) {
        walkElements(in: p, body)
    }

    /// The one element walk over validated bytes: stops when `body` returns false.
    private static func walkElements(in p: UnsafeRawBufferPointer, _ body: (RawElement) throws -> Bool) rethrows {
        var i = 4
        let end = p.count - 1
        while i < end {
            let type = p[i]
            let keyEnd = cStringEnd(p, i + 1, end)!
            let n = try! valueLength(p, type: type, at: keyEnd, end: end)
            if try !body(RawElement(buffer: p, typeOffset: i, keyEnd: keyEnd, valueLength: n)) { return }
            i = keyEnd + n
        }
    }

    /// Field names and decoded values, in order.
    public var elements: [(key: String, value: BSONValue)] {
        var out: [(String, BSONValue)] = []
        forEachElement { out.append(($0.key, $0.value)) }
        return out
    }

    public var keys: [String] {
        var out: [String] = []
        forEachElement { out.append($0.key) }
        return out
    }

    /// The `_id` value as a sortable key (type byte + value bytes), or nil if absent.
    public var idKey: BSONKey? {
        bytes.withUnsafeBytes { Self.idKey(ofValidated: $0) }
    }

    /// Array elements in order (for a document holding an array's "0", "1", ... keys).
    public var arrayValues: [BSONValue] { elements.map(\.value) }
}

/// One element of a document, as a view of the document's bytes; valid only inside
/// the closure that received it.
public struct RawElement {
    let buffer: UnsafeRawBufferPointer
    let typeOffset: Int
    let keyEnd: Int
    public let valueLength: Int

    public var type: BSONType { BSONType(rawValue: buffer[typeOffset]) }

    public var key: String {
        String(decoding: UnsafeRawBufferPointer(rebasing: buffer[(typeOffset + 1)..<(keyEnd - 1)]), as: UTF8.self)
    }

    func keyEquals(_ other: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = keyEnd - 1 - (typeOffset + 1)
        guard n == other.count else { return false }
        return memcmpEqual(buffer.baseAddress! + typeOffset + 1, other.baseAddress, n)
    }

    /// The value's bytes (without type byte or key).
    public var valueBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer[keyEnd..<(keyEnd + valueLength)])
    }

    /// The whole element's bytes: type, key, value.
    public var elementBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer[typeOffset..<(keyEnd + valueLength)])
    }

    public var bsonKey: BSONKey {
        var bytes = [UInt8](repeating: 0, count: 1 + valueLength)
        bytes[0] = buffer[typeOffset]
        bytes.withUnsafeMutableBytes { dst in
            dst.baseAddress!.advanced(by: 1).copyMemory(from: buffer.baseAddress! + keyEnd, byteCount: valueLength)
        }
        return BSONKey(trustedBytes: bytes)
    }

    public var value: BSONValue { BSONValue.decode(type: buffer[typeOffset], buffer, at: keyEnd, length: valueLength) }
}

@inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer?, _ n: Int) -> Bool {
    guard n > 0 else { return true }
    guard let b else { return false }
    for i in 0..<n where a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) {
        return false
    }
    return true
}

extension Document: CustomStringConvertible {
    /// Relaxed Extended JSON, for messages and debugging.
    public var description: String { (try? ExtendedJSON.encode(self, canonical: false)) ?? "<\(bytes.count) bytes of BSON>" }
}
