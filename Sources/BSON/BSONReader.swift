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
    // Eight bytes a step while they fit: a zero byte sets its lane's high bit (lanes past
    // the first zero may be set too, so the lowest set bit is the first zero).
    while i + 8 <= end {
        let word = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        let zero = (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080
        if zero != 0 { return i + zero.trailingZeroBitCount / 8 + 1 }
        i += 8
    }
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

/// Checks a whole document: lengths, terminators, types, booleans, and that array
/// keys count up from "0".
///
/// Iterative, with an explicit stack: real files nest a thousand levels deep
/// (bsondump's deep_nested.bson), deeper than a worker thread's stack allows. The
/// first levels live on the machine stack: a heap array per document was a tenth of
/// an import's scan.
func validateDocument(_ p: UnsafeRawBufferPointer, at start: Int, end limit: Int, depth: Int) throws(BSONError) -> Int {
    func open(_ at: Int, _ limit: Int, isArray: Bool) throws(BSONError) -> ValidationFrame {
        guard at + 5 <= limit else { throw BSONError(.truncated, at: at, "document shorter than 5 bytes") }
        let length = Int(loadInt32(p, at))
        guard length >= 5, at + length <= limit else {
            throw BSONError(.badLength, at: at, "document length \(length) does not fit in the \(limit - at) bytes available")
        }
        guard p[at + length - 1] == 0 else {
            throw BSONError(.badLength, at: at + length - 1, "document does not end with a NUL byte")
        }
        return ValidationFrame(next: at + 4, end: at + length - 1, isArray: isArray, index: 0)
    }
    let root = try open(start, limit, isArray: false)
    let length = root.end + 1 - start
    return try withUnsafeTemporaryAllocation(of: ValidationFrame.self, capacity: 32) { (shallow) throws(BSONError) -> Int in
        var stack = ValidationStack(shallow: shallow)
        stack.push(root)
        while var frame = stack.pop() {
            if frame.next == frame.end { continue }
            guard frame.next < frame.end else {
                throw BSONError(.badLength, at: frame.next, "last element runs past the document's end")
            }
            let i = frame.next
            let type = p[i]
            guard let keyEnd = cStringEnd(p, i + 1, frame.end) else {
                throw BSONError(.badCString, at: i + 1, "field name is not NUL-terminated")
            }
            if frame.isArray && !keyIsIndex(p, i + 1, keyEnd - 1, frame.index) {
                throw BSONError(.badValue, at: i + 1, "array element \(frame.index) has another field name")
            }
            let n = try valueLength(p, type: type, at: keyEnd, end: frame.end)
            frame.next = keyEnd + n
            frame.index += 1
            stack.push(frame)
            switch type {
            case 0x03, 0x04:
                guard stack.count < 2048 + depth else { throw BSONError(.tooDeep, at: keyEnd, "documents nest deeper than 2048 levels") }
                stack.push(try open(keyEnd, keyEnd + n, isArray: type == 0x04))
            case 0x0F:
                let codeLength = try valueLength(p, type: 0x02, at: keyEnd + 4, end: keyEnd + n)
                stack.push(try open(keyEnd + 4 + codeLength, keyEnd + n, isArray: false))
            default: break
            }
        }
        return length
    }
}

/// A document being validated: where its next element starts and where it ends.
struct ValidationFrame {
    var next: Int  // offset of the next element's type byte
    let end: Int  // offset of the document's closing NUL
    let isArray: Bool
    var index: Int
}

/// `validateDocument`'s stack: the first frames in a fixed buffer, deeper ones in an array.
struct ValidationStack {
    let shallow: UnsafeMutableBufferPointer<ValidationFrame>
    var deep: [ValidationFrame] = []
    private(set) var count = 0

    init(shallow: UnsafeMutableBufferPointer<ValidationFrame>) { self.shallow = shallow }

    @inline(__always)
    mutating func push(_ frame: ValidationFrame) {
        if count < shallow.count {
            (shallow.baseAddress! + count).initialize(to: frame)
        } else {
            deep.append(frame)
        }
        count += 1
    }

    @inline(__always)
    mutating func pop() -> ValidationFrame? {
        guard count > 0 else { return nil }
        count -= 1
        return count < shallow.count ? shallow[count] : deep.removeLast()
    }
}

/// True when the key bytes in `from..<to` spell `index` in decimal.
@inline(__always)
func keyIsIndex(_ p: UnsafeRawBufferPointer, _ from: Int, _ to: Int, _ index: Int) -> Bool {
    var value = 0
    guard to > from, to - from <= 10 else { return false }
    for j in from..<to {
        let c = p[j]
        guard c >= 0x30, c <= 0x39 else { return false }
        value = value * 10 + Int(c - 0x30)
    }
    return value == index && (to - from == 1 || p[from] != 0x30)
}
