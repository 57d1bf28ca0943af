import BSON

/// A run of a collection's `_id` index: from `lower` (inclusive) to `upper`
/// (exclusive), in MongoDB's canonical order across types; nil bounds are open.
public struct IDRange: Sendable, CustomStringConvertible {
    public var lower: BSONKey?
    public var upper: BSONKey?

    public init(lower: BSONKey? = nil, upper: BSONKey? = nil) {
        self.lower = lower
        self.upper = upper
    }

    public static let whole = IDRange()
    public var isWhole: Bool { lower == nil && upper == nil }
    public var description: String {
        "[\(lower.map { "\($0.value)" } ?? "-inf"), \(upper.map { "\($0.value)" } ?? "+inf"))"
    }
}

/// Cuts a collection's `_id` space into ranges of about equal size, from a random
/// sample of its `_id`s, so large collections are read by several cursors at once.
public enum RangeSplitter {
    /// Up to `count` contiguous ranges covering every `_id`: split points are the
    /// sample's quantiles, duplicates removed. Fewer ranges when the sample is small.
    public static func ranges(sample: [BSONKey], count: Int) -> [IDRange] {
        guard count > 1, sample.count >= 2 else { return [.whole] }
        let sorted = sample.sorted { compareKeys($0, $1) < 0 }
        var points: [BSONKey] = []
        for i in 1..<count {
            let key = sorted[min(sorted.count - 1, i * sorted.count / count)]
            if let last = points.last, compareKeys(last, key) >= 0 { continue }
            points.append(key)
        }
        var out: [IDRange] = []
        var lower: BSONKey?
        for point in points {
            out.append(IDRange(lower: lower, upper: point))
            lower = point
        }
        out.append(IDRange(lower: lower, upper: nil))
        return out
    }
}
