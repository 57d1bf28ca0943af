import Foundation
import Testing
@testable import BSON

/// MongoDB's `find().sort({_id: 1})` order across types and within numbers.
struct CanonicalOrderTests {
    static let oid1 = ObjectID(hex: "546651e74bf6e4cb017c5312")!
    static let oid2 = ObjectID(hex: "546651e74bf6e4cb017c5313")!

    /// Strictly increasing in MongoDB's order.
    static let ascending: [BSONValue] = [
        .minKey,
        .undefined,
        .null,
        .double(-.infinity),
        .int64(-9_223_372_036_854_775_807),
        .int32(-5),
        .double(-4.5),
        .int32(0),
        .double(0.5),
        .int64(1 << 53 + 1),
        .double(9_007_199_254_740_994),
        .double(.infinity),
        .string(""),
        .string("A"),
        .string("a"),
        .string("ab"),
        .document(Document()),
        .document(Document(["a": .int32(1)])),
        // Elements compare by type before field name: a string sorts after any number.
        .document(Document(["b": .int32(0)])),
        .document(Document(["a": .string("x")])),
        .array([]),
        .array([.int32(1)]),
        .binary(subtype: 5, data: [9]),
        .binary(subtype: 0, data: [1, 2]),
        .binary(subtype: 4, data: [0, 0]),
        .objectID(oid1),
        .objectID(oid2),
        .bool(false),
        .bool(true),
        .datetime(-1),
        .datetime(0),
        .timestamp(Timestamp(seconds: 1, increment: 2)),
        .timestamp(Timestamp(seconds: 2, increment: 1)),
        .regex(pattern: "a", options: ""),
        .regex(pattern: "a", options: "i"),
        .maxKey,
    ]

    @Test func valuesSortInMongoOrder() {
        let keys = Self.ascending.map { BSONKey($0) }
        for i in keys.indices {
            for j in keys.indices {
                let expected = i < j ? -1 : (i > j ? 1 : 0)
                #expect(compareKeys(keys[i], keys[j]) == expected, "\(Self.ascending[i]) vs \(Self.ascending[j])")
            }
        }
    }

    @Test(arguments: [
        (BSONValue.int32(1), BSONValue.int64(1)),
        (.int32(1), .double(1.0)),
        (.double(.nan), .double(.nan)),
        (.string("x"), .symbol("x")),
        (.decimal128(Decimal128(low: 10, high: 0x3040_0000_0000_0000)), .int32(10)),  // 10E0
        (.decimal128(Decimal128(low: 100, high: 0x303C_0000_0000_0000)), .int64(1)),  // 100E-2
    ])
    func equalAcrossTypes(a: BSONValue, b: BSONValue) {
        #expect(compareKeys(BSONKey(a), BSONKey(b)) == 0)
    }

    @Test func nanSortsBeforeNumbersAndDecimalsCompareExactly() {
        #expect(BSONKey(.double(.nan)) < BSONKey(.int64(Int64.min)))
        let pointOne = BSONKey(.decimal128(Decimal128(low: 1, high: 0x303C_0000_0000_0000)))  // 1E-2
        #expect(pointOne < BSONKey(.double(0.011)))
        #expect(BSONKey(.double(0.009)) < pointOne)
        #expect(BSONKey(.int64(Int64.max)) < BSONKey(.double(9_223_372_036_854_775_808.0)))
    }

    @Test func sortingKeysOfMixedTypes() {
        let shuffled = Self.ascending.shuffled()
        let sorted = shuffled.map { BSONKey($0) }.sorted()
        #expect(sorted.map(\.bytes) == Self.ascending.map { BSONKey($0).bytes })
    }
}
