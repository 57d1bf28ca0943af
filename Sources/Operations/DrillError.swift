/// Why a drill could not run (a drill that ran and found damage is a failed
/// `DrillReport`, not an error).
public struct DrillError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: String { case badOptions, targetNotEmpty, unreadableHistory }
        fileprivate let value: Value
        /// Options that contradict each other or a percentage out of range.
        public static let badOptions = Code(value: .badOptions)
        /// The scratch namespaces already exist on the target: a drill never writes over data.
        public static let targetNotEmpty = Code(value: .targetNotEmpty)
        /// The report directory holds a history file that cannot be read.
        public static let unreadableHistory = Code(value: .unreadableHistory)
        public var description: String { value.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
