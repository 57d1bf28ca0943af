import Foundation

/// The subset of TOML the daemon's config file uses: `[table]` and `[table.name]`
/// headers, `key = value` lines with bare keys, and values that are basic strings
/// (`"…"` with `\"`, `\\`, `\n`, `\t` escapes), literal strings (`'…'`), integers,
/// booleans and one-line arrays of those; `#` starts a comment.
///
/// Anything else (inline tables, dates, multi-line strings, arrays of tables) is an error
/// with its line number, never silently skipped. A pure value: no I/O.
struct DaemonConfigSyntax {
    enum Value: Equatable {
        case string(String)
        case integer(Int)
        case boolean(Bool)
        case array([Value])

        var kind: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .boolean: "a boolean"
            case .array: "an array"
            }
        }
    }

    struct Entry: Equatable {
        var value: Value
        var line: Int
    }

    /// A table's header line (0 for the root) and its entries.
    struct Table {
        var line: Int
        var entries: [String: Entry] = [:]
    }

    /// Tables by dotted name; the root table is "".
    private(set) var tables: [String: Table] = ["": Table(line: 0)]
    /// Table names in file order.
    private(set) var order: [String] = [""]

    init(parsing text: String) throws(DaemonConfigError) {
        var current = ""
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            var scanner = Scanner(Array(raw.utf8.map { $0 == 0x0D ? 0x20 : $0 }), line: number)
            scanner.skipSpaces()
            if scanner.atEndOrComment { continue }
            if scanner.peek == UInt8(ascii: "[") {
                scanner.index += 1
                if scanner.peek == UInt8(ascii: "[") {
                    throw DaemonConfigError(line: number, "arrays of tables ([[…]]) are not supported; use [table.name]")
                }
                var parts: [String] = []
                repeat {
                    scanner.skipSpaces()
                    parts.append(try scanner.key())
                    scanner.skipSpaces()
                } while scanner.consume(UInt8(ascii: "."))
                guard scanner.consume(UInt8(ascii: "]")) else { throw DaemonConfigError(line: number, "expected ] to close the table header") }
                scanner.skipSpaces()
                guard scanner.atEndOrComment else { throw DaemonConfigError(line: number, "unexpected text after the table header") }
                current = parts.joined(separator: ".")
                if tables[current] != nil { throw DaemonConfigError(line: number, "table [\(current)] is defined twice") }
                tables[current] = Table(line: number)
                order.append(current)
                continue
            }
            let key = try scanner.key()
            scanner.skipSpaces()
            guard scanner.consume(UInt8(ascii: "=")) else {
                throw DaemonConfigError(line: number, "expected = after \(key) (dotted keys are not supported; use a [table])")
            }
            scanner.skipSpaces()
            let value = try scanner.value()
            scanner.skipSpaces()
            guard scanner.atEndOrComment else { throw DaemonConfigError(line: number, "unexpected text after the value of \(key)") }
            if tables[current]!.entries[key] != nil {
                throw DaemonConfigError(line: number, "\(key) is set twice in \(current.isEmpty ? "the top level" : "[\(current)]")")
            }
            tables[current]!.entries[key] = Entry(value: value, line: number)
        }
    }

    private struct Scanner {
        let bytes: [UInt8]
        let line: Int
        var index = 0

        init(_ bytes: [UInt8], line: Int) {
            self.bytes = bytes
            self.line = line
        }

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }
        var atEndOrComment: Bool { peek == nil || peek == UInt8(ascii: "#") }

        mutating func skipSpaces() {
            while let b = peek, b == 0x20 || b == 0x09 { index += 1 }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard peek == byte else { return false }
            index += 1
            return true
        }

        func error(_ message: String) -> DaemonConfigError { DaemonConfigError(line: line, message) }

        /// A bare key: letters, digits, `_` and `-`.
        mutating func key() throws(DaemonConfigError) -> String {
            let start = index
            while let b = peek, (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x2D {
                index += 1
            }
            guard index > start else {
                throw error(peek == UInt8(ascii: "\"") ? "quoted keys are not supported" : "expected a key (letters, digits, _ and -)")
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        mutating func value() throws(DaemonConfigError) -> Value {
            guard let b = peek else { throw error("missing value") }
            switch b {
            case UInt8(ascii: "\""):
                index += 1
                if peek == UInt8(ascii: "\""), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\"") {
                    throw error("multi-line strings are not supported")
                }
                var out: [UInt8] = []
                while true {
                    guard let c = peek else { throw error("unterminated string") }
                    index += 1
                    if c == UInt8(ascii: "\"") { break }
                    if c == UInt8(ascii: "\\") {
                        guard let e = peek else { throw error("unterminated string") }
                        index += 1
                        switch e {
                        case UInt8(ascii: "\""): out.append(e)
                        case UInt8(ascii: "\\"): out.append(e)
                        case UInt8(ascii: "n"): out.append(0x0A)
                        case UInt8(ascii: "t"): out.append(0x09)
                        default: throw error("unsupported escape \\\(Character(Unicode.Scalar(e)))")
                        }
                    } else {
                        out.append(c)
                    }
                }
                return .string(String(decoding: out, as: UTF8.self))
            case UInt8(ascii: "'"):
                index += 1
                let start = index
                while let c = peek, c != UInt8(ascii: "'") { index += 1 }
                guard peek != nil else { throw error("unterminated string") }
                let text = String(decoding: bytes[start..<index], as: UTF8.self)
                index += 1
                return .string(text)
            case UInt8(ascii: "["):
                index += 1
                var items: [Value] = []
                while true {
                    skipSpaces()
                    if consume(UInt8(ascii: "]")) { break }
                    guard peek != nil, !atEndOrComment else { throw error("unterminated array (arrays must fit on one line)") }
                    let item = try value()
                    if case .array = item { throw error("nested arrays are not supported") }
                    items.append(item)
                    skipSpaces()
                    if consume(UInt8(ascii: ",")) { continue }
                    guard consume(UInt8(ascii: "]")) else { throw error("expected , or ] in the array") }
                    break
                }
                return .array(items)
            case UInt8(ascii: "{"):
                throw error("inline tables are not supported; use a [table]")
            default:
                let start = index
                while let c = peek, c != 0x20, c != 0x09, c != UInt8(ascii: ","), c != UInt8(ascii: "]"), c != UInt8(ascii: "#") {
                    index += 1
                }
                let word = String(decoding: bytes[start..<index], as: UTF8.self)
                if word == "true" { return .boolean(true) }
                if word == "false" { return .boolean(false) }
                if let n = Int(word.replacingOccurrences(of: "_", with: "")), !word.hasPrefix("_"), !word.hasSuffix("_") { return .integer(n) }
                throw error("\"\(word)\" is not a value (strings need quotes)")
            }
        }
    }
}

/// A config file the daemon cannot use: where (line, when known) and what to change.
public struct DaemonConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    /// 1-based line, or nil when the problem is not on one line (permissions, a missing table).
    public let line: Int?
    public let message: String

    public init(line: Int?, _ message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { line.map { "line \($0): \(message)" } ?? message }
}
