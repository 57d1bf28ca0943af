/// The BSON element type byte.
public struct BSONType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let double = BSONType(rawValue: 0x01)
    public static let string = BSONType(rawValue: 0x02)
    public static let document = BSONType(rawValue: 0x03)
    public static let array = BSONType(rawValue: 0x04)
    public static let binary = BSONType(rawValue: 0x05)
    public static let undefined = BSONType(rawValue: 0x06)
    public static let objectID = BSONType(rawValue: 0x07)
    public static let bool = BSONType(rawValue: 0x08)
    public static let datetime = BSONType(rawValue: 0x09)
    public static let null = BSONType(rawValue: 0x0A)
    public static let regex = BSONType(rawValue: 0x0B)
    public static let dbPointer = BSONType(rawValue: 0x0C)
    public static let javascript = BSONType(rawValue: 0x0D)
    public static let symbol = BSONType(rawValue: 0x0E)
    public static let javascriptWithScope = BSONType(rawValue: 0x0F)
    public static let int32 = BSONType(rawValue: 0x10)
    public static let timestamp = BSONType(rawValue: 0x11)
    public static let int64 = BSONType(rawValue: 0x12)
    public static let decimal128 = BSONType(rawValue: 0x13)
    public static let minKey = BSONType(rawValue: 0xFF)
    public static let maxKey = BSONType(rawValue: 0x7F)

    public var isKnown: Bool {
        (0x01...0x13).contains(rawValue) || rawValue == 0xFF || rawValue == 0x7F
    }

    public var description: String { "0x" + String(rawValue, radix: 16) }
}
