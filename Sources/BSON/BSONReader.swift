// Bounds-checked reading of BSON bytes. Everything here works on raw buffers so that
// iterating a document copies nothing; `Document` validates once, after which element
// walks can trust the lengths.

@inline(__always)
func loadInt32(_ p: UnsafeRawBufferPointer, _ offset: Int) -> Int32 {
    Int32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: Int32.self))
}

@inline(__always)
func loadInt64(_ p: UnsafeRawBufferPointer, _ offset: Int) -> Int64 {
    Int64(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: Int64.self))
}

@inline(__always)
func loadUInt64(_ p: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
    UInt64(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
}

/// Offset just past the NUL that ends the C string at `offset`, or nil if none before `end`.
@inline(__always)
func cStringEnd(_ p: UnsafeRawBufferPointer, _ offset: Int, _ end: Int) -> Int? {
    var i = offset
    while i < end {
        if p[i] == 0 { return i + 1 }
        i += 1
    }
    return nil
}

/// The length of a value of `type` starting at `offset`, checked against `end`.
///
/// Nested documents are checked only for their length here; `validateDocument`
/// recurses into them.
func valueLength(_ p: UnsafeRawBufferPointer, type: UInt8, at offset: Int, end: Int) throws(BSONError) -> Int {
    func need(_ n: Int) throws(BSONError) -> Int {
        guard n >= 0, offset + n <= end else {
            throw BSONError(.truncated, at: offset, "value of type \(BSONType(rawValue: type)) runs past the end of its document")
        }
        return n
    }
    func lengthPrefixed(min: Int) throws(BSONError) -> Int32 {
        _ = try need(4)
        let n = loadInt32(p, offset)
        guard n >= min else { throw BSONError(.badLength, at: offset, "negative or too small length \(n)") }
        return n
    }
    switch type {
    case 0x01, 0x09, 0x11, 0x12: return try need(8)
    case 0x02, 0x0D, 0x0E:
        let n = try lengthPrefixed(min: 1)
        let total = try need(4 + Int(n))
        guard p[offset + total - 1] == 0 else { throw BSONError(.badString, at: offset, "string is not NUL-terminated") }
        return total
    case 0x03, 0x04:
        let n = try lengthPrefixed(min: 5)
        return try need(Int(n))
    case 0x05:
        let n = try lengthPrefixed(min: 0)
        return try need(5 + Int(n))
    case 0x06, 0x0A, 0xFF, 0x7F: return 0
    case 0x07: return try need(12)
    case 0x08:
        _ = try need(1)
        guard p[offset] <= 1 else { throw BSONError(.badValue, at: offset, "boolean byte is \(p[offset])") }
        return 1
    case 0x0B:
        guard let a = cStringEnd(p, offset, end), let b = cStringEnd(p, a, end) else {
            throw BSONError(.badCString, at: offset, "regular expression is not NUL-terminated")
        }
        return b - offset
    case 0x0C:
        let n = try lengthPrefixed(min: 1)
        return try need(4 + Int(n) + 12)
    case 0x0F:
        let n = try lengthPrefixed(min: 14)
        return try need(Int(n))
    case 0x10: return try need(4)
    case 0x13: return try need(16)
    default:
        throw BSONError(.badType, at: offset - 1, "unknown element type \(BSONType(rawValue: type))")
    }
}

/// Checks a whole document, recursively: lengths, terminators, types, booleans.
func validateDocument(_ p: UnsafeRawBufferPointer, at start: Int, end limit: Int, depth: Int) throws(BSONError) -> Int {
    guard depth < 200 else { throw BSONError(.tooDeep, at: start, "documents nest deeper than 200 levels") }
    guard start + 5 <= limit else { throw BSONError(.truncated, at: start, "document shorter than 5 bytes") }
    let length = Int(loadInt32(p, start))
    guard length >= 5, start + length <= limit else {
        throw BSONError(.badLength, at: start, "document length \(length) does not fit in the \(limit - start) bytes available")
    }
    let end = start + length - 1
    guard p[end] == 0 else { throw BSONError(.badLength, at: end, "document does not end with a NUL byte") }
    var i = start + 4
    while i < end {
        let type = p[i]
        guard let keyEnd = cStringEnd(p, i + 1, end) else {
            throw BSONError(.badCString, at: i + 1, "field name is not NUL-terminated")
        }
        let n = try valueLength(p, type: type, at: keyEnd, end: end)
        switch type {
        case 0x03, 0x04:
            _ = try validateDocument(p, at: keyEnd, end: keyEnd + n, depth: depth + 1)
        case 0x0F:
            let codeLength = try valueLength(p, type: 0x02, at: keyEnd + 4, end: keyEnd + n)
            _ = try validateDocument(p, at: keyEnd + 4 + codeLength, end: keyEnd + n, depth: depth + 1)
        default: break
        }
        i = keyEnd + n
    }
    guard i == end else { throw BSONError(.badLength, at: i, "last element runs past the document's end") }
    return length
}
