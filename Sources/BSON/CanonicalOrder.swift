import Foundation

/// An `_id` (or any single value) as type byte + value bytes, ordered the way MongoDB
/// orders values: `find().sort({_id: 1})` returns documents in this order.
///
/// Equality is MongoDB's: `1`, `NumberLong(1)` and `1.0` are equal keys (a unique
/// index would refuse the second), so `BSONKey` is deliberately not `Hashable`.
public struct BSONKey: Sendable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(trustedBytes: [UInt8]) { self.bytes = trustedBytes }

    public init(_ value: BSONValue) {
        let doc = Document(pairs: [("", value)])
        var key: BSONKey?
        doc.forEachElement { key = $0.bsonKey }
        self = key!
    }

    public var type: BSONType { BSONType(rawValue: bytes[0]) }

    public var value: BSONValue {
        bytes.withUnsafeBytes { p in BSONValue.decode(type: p[0], p, at: 1, length: p.count - 1) }
    }

    public static func == (a: BSONKey, b: BSONKey) -> Bool { compareKeys(a, b) == 0 }
    public static func < (a: BSONKey, b: BSONKey) -> Bool { compareKeys(a, b) < 0 }

    public var description: String {
        let doc = Document(pairs: [("_id", value)])
        return doc.description
    }
}

/// -1, 0 or 1 as MongoDB orders the two values.
public func compareKeys(_ a: BSONKey, _ b: BSONKey) -> Int {
    a.bytes.withUnsafeBytes { pa in b.bytes.withUnsafeBytes { pb in compareKeys(pa, pb) } }
}

/// -1, 0 or 1 as MongoDB orders the two values, given as `BSONKey.bytes` (type byte, value).
public func compareKeys(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    compareValues(a[0], a, 1, a.count - 1, b[0], b, 1, b.count - 1)
}

/// MongoDB's canonical type order (`canonicalizeBSONType` in the server).
@inline(__always)
func canonicalRank(_ t: UInt8) -> Int {
    switch t {
    case 0xFF: -1
    case 0x00, 0x06: 0
    case 0x0A: 5
    case 0x01, 0x10, 0x12, 0x13: 10
    case 0x02, 0x0E: 15
    case 0x03: 20
    case 0x04: 25
    case 0x05: 30
    case 0x07: 35
    case 0x08: 40
    case 0x09: 45
    case 0x11: 47
    case 0x0B: 50
    case 0x0C: 55
    case 0x0D: 60
    case 0x0F: 65
    case 0x7F: 127
    default: 200
    }
}

@inline(__always)
func sign(_ x: Int) -> Int { x < 0 ? -1 : (x > 0 ? 1 : 0) }

func compareBytes(_ pa: UnsafeRawBufferPointer, _ a: Int, _ na: Int,
                  _ pb: UnsafeRawBufferPointer, _ b: Int, _ nb: Int) -> Int {
    let n = min(na, nb)
    if n > 0 {
        let c = memcmp(pa.baseAddress! + a, pb.baseAddress! + b, n)
        if c != 0 { return sign(Int(c)) }
    }
    return sign(na - nb)
}

/// Compares two values given as (type, buffer, offset, length).
func compareValues(_ ta: UInt8, _ pa: UnsafeRawBufferPointer, _ a: Int, _ na: Int,
                   _ tb: UInt8, _ pb: UnsafeRawBufferPointer, _ b: Int, _ nb: Int) -> Int {
    let ra = canonicalRank(ta), rb = canonicalRank(tb)
    if ra != rb { return ra < rb ? -1 : 1 }
    switch ra {
    case 10:
        return compareNumbers(Number(ta, pa, a), Number(tb, pb, b))
    case 15, 60:
        // Strings compare as bytes, without the trailing NUL (no collation).
        return compareBytes(pa, a + 4, Int(loadInt32(pa, a)) - 1, pb, b + 4, Int(loadInt32(pb, b)) - 1)
    case 20, 25:
        return compareDocuments(pa, a, pb, b)
    case 30:
        // BinData: length first, then subtype, then bytes.
        let la = Int(loadInt32(pa, a)), lb = Int(loadInt32(pb, b))
        if la != lb { return la < lb ? -1 : 1 }
        if pa[a + 4] != pb[b + 4] { return pa[a + 4] < pb[b + 4] ? -1 : 1 }
        return compareBytes(pa, a + 5, la, pb, b + 5, lb)
    case 35:
        return compareBytes(pa, a, 12, pb, b, 12)
    case 40:
        return sign(Int(pa[a]) - Int(pb[b]))
    case 45:
        let x = loadInt64(pa, a), y = loadInt64(pb, b)
        return x < y ? -1 : (x > y ? 1 : 0)
    case 47:
        let x = loadUInt64(pa, a), y = loadUInt64(pb, b)
        return x < y ? -1 : (x > y ? 1 : 0)
    case 50:
        // Pattern, then options.
        let ea = cStringEnd(pa, a, a + na)!, eb = cStringEnd(pb, b, b + nb)!
        let c = compareBytes(pa, a, ea - a - 1, pb, b, eb - b - 1)
        if c != 0 { return c }
        return compareBytes(pa, ea, a + na - ea - 1, pb, eb, b + nb - eb - 1)
    case 55:
        // DBPointer: string length, then string and ObjectId bytes.
        let la = Int(loadInt32(pa, a)), lb = Int(loadInt32(pb, b))
        if la != lb { return la < lb ? -1 : 1 }
        return compareBytes(pa, a + 4, la + 12, pb, b + 4, lb + 12)
    case 65:
        let ca = Int(loadInt32(pa, a + 4)), cb = Int(loadInt32(pb, b + 4))
        let c = compareBytes(pa, a + 8, ca - 1, pb, b + 8, cb - 1)
        if c != 0 { return c }
        return compareDocuments(pa, a + 8 + ca, pb, b + 8 + cb)
    default:
        // MinKey, MaxKey, null, undefined: all values of the type are equal.
        return 0
    }
}

/// Element by element: canonical type, then field name, then value; shorter first.
func compareDocuments(_ pa: UnsafeRawBufferPointer, _ a: Int, _ pb: UnsafeRawBufferPointer, _ b: Int) -> Int {
    let endA = a + Int(loadInt32(pa, a)) - 1, endB = b + Int(loadInt32(pb, b)) - 1
    var i = a + 4, j = b + 4
    while true {
        if i >= endA || j >= endB { return i >= endA ? (j >= endB ? 0 : -1) : 1 }
        let ta = pa[i], tb = pb[j]
        let ra = canonicalRank(ta), rb = canonicalRank(tb)
        if ra != rb { return ra < rb ? -1 : 1 }
        let ka = cStringEnd(pa, i + 1, endA)!, kb = cStringEnd(pb, j + 1, endB)!
        let c = compareBytes(pa, i + 1, ka - i - 2, pb, j + 1, kb - j - 2)
        if c != 0 { return c }
        let la = try! valueLength(pa, type: ta, at: ka, end: endA)
        let lb = try! valueLength(pb, type: tb, at: kb, end: endB)
        let v = compareValues(ta, pa, ka, la, tb, pb, kb, lb)
        if v != 0 { return v }
        i = ka + la
        j = kb + lb
    }
}

/// A number of any BSON numeric type, for cross-type comparison.
enum Number {
    case int(Int64)
    case double(Double)
    case decimal(DecimalParts)

    init(_ t: UInt8, _ p: UnsafeRawBufferPointer, _ o: Int) {
        switch t {
        case 0x10: self = .int(Int64(loadInt32(p, o)))
        case 0x12: self = .int(loadInt64(p, o))
        case 0x01: self = .double(Double(bitPattern: loadUInt64(p, o)))
        default: self = .decimal(DecimalParts(Decimal128(low: loadUInt64(p, o), high: loadUInt64(p, o + 8))))
        }
    }
}

/// Numbers compare by value across int, long, double and decimal; NaN sorts before
/// every other number and equals NaN.
func compareNumbers(_ x: Number, _ y: Number) -> Int {
    switch (x, y) {
    case (.int(let a), .int(let b)): return a < b ? -1 : (a > b ? 1 : 0)
    case (.double(let a), .double(let b)): return compareDoubles(a, b)
    case (.int(let a), .double(let b)): return compareIntToDouble(a, b)
    case (.double(let a), .int(let b)): return -compareIntToDouble(b, a)
    case (.decimal(let a), .decimal(let b)): return a.compare(b)
    case (.decimal(let a), .int(let b)): return a.compare(DecimalParts(b))
    case (.int(let a), .decimal(let b)): return DecimalParts(a).compare(b)
    case (.decimal(let a), .double(let b)): return a.compare(DecimalParts(b))
    case (.double(let a), .decimal(let b)): return DecimalParts(a).compare(b)
    }
}

func compareDoubles(_ a: Double, _ b: Double) -> Int {
    if a.isNaN || b.isNaN { return a.isNaN ? (b.isNaN ? 0 : -1) : 1 }
    return a < b ? -1 : (a > b ? 1 : 0)
}

/// Exact comparison, even where the long does not fit a double's mantissa.
func compareIntToDouble(_ a: Int64, _ b: Double) -> Int {
    if b.isNaN { return 1 }
    if b >= 9_223_372_036_854_775_808.0 { return -1 }
    if b < -9_223_372_036_854_775_808.0 { return 1 }
    let t = b.rounded(.towardZero)
    let ib = Int64(t)
    if a != ib { return a < ib ? -1 : 1 }
    let frac = b - t
    return frac > 0 ? -1 : (frac < 0 ? 1 : 0)
}

/// A decimal128 as sign, coefficient and exponent, for ordering.
struct DecimalParts {
    enum Kind { case finite, infinity, nan }
    var kind: Kind
    var negative: Bool
    var coefficient: UInt128
    var exponent: Int

    init(_ d: Decimal128) {
        negative = d.high >> 63 == 1
        let combination = (d.high >> 58) & 0x1F
        if combination == 0x1F {
            kind = .nan; coefficient = 0; exponent = 0
            return
        }
        if combination == 0x1E {
            kind = .infinity; coefficient = 0; exponent = 0
            return
        }
        kind = .finite
        if (d.high >> 61) & 0x3 == 0x3 {
            // Non-canonical large coefficients are treated as zero, as the standard says.
            exponent = Int((d.high >> 47) & 0x3FFF) - 6176
            coefficient = 0
        } else {
            exponent = Int((d.high >> 49) & 0x3FFF) - 6176
            coefficient = UInt128(d.high & 0x1_FFFF_FFFF_FFFF) << 64 | UInt128(d.low)
            if coefficient > DecimalParts.maxCoefficient { coefficient = 0 }
        }
    }

    init(_ v: Int64) {
        kind = .finite
        negative = v < 0
        coefficient = UInt128(v.magnitude)
        exponent = 0
    }

    /// A double rounded to 34 significant digits, as the server converts for comparison.
    init(_ v: Double) {
        negative = v.sign == .minus
        if v.isNaN { kind = .nan; coefficient = 0; exponent = 0; negative = false; return }
        if v.isInfinite { kind = .infinity; coefficient = 0; exponent = 0; return }
        kind = .finite
        if v == 0 { coefficient = 0; exponent = 0; return }
        let text = String(format: "%.33e", v.magnitude)  // d.ddd...e±xx, 34 digits
        let parts = text.split(separator: "e")
        let digits = parts[0].replacingOccurrences(of: ".", with: "")
        coefficient = UInt128(digits)!
        exponent = Int(parts[1])! - 33
    }

    static let maxCoefficient: UInt128 = 9_999_999_999_999_999_999_999_999_999_999_999

    var isZero: Bool { kind == .finite && coefficient == 0 }

    func compare(_ o: DecimalParts) -> Int {
        if kind == .nan || o.kind == .nan { return kind == .nan ? (o.kind == .nan ? 0 : -1) : 1 }
        let sa = isZero ? 0 : (negative ? -1 : 1)
        let sb = o.isZero ? 0 : (o.negative ? -1 : 1)
        if sa != sb { return sa < sb ? -1 : 1 }
        if sa == 0 { return 0 }
        let magnitude = compareMagnitude(o)
        return sa > 0 ? magnitude : -magnitude
    }

    private func compareMagnitude(_ o: DecimalParts) -> Int {
        if kind == .infinity || o.kind == .infinity {
            return kind == o.kind ? 0 : (kind == .infinity ? 1 : -1)
        }
        let da = digitCount(coefficient), db = digitCount(o.coefficient)
        let adjA = exponent + da - 1, adjB = o.exponent + db - 1
        if adjA != adjB { return adjA < adjB ? -1 : 1 }
        // Same magnitude: scale both coefficients to 34 digits (10^34 < 2^113).
        let ca = coefficient * pow10(34 - da), cb = o.coefficient * pow10(34 - db)
        return ca < cb ? -1 : (ca > cb ? 1 : 0)
    }
}

func digitCount(_ v: UInt128) -> Int {
    var n = 1
    var x = v
    while x >= 10 { x /= 10; n += 1 }
    return n
}

func pow10(_ n: Int) -> UInt128 {
    var r: UInt128 = 1
    for _ in 0..<n { r *= 10 }
    return r
}
