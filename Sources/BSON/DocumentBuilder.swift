/// Builds a document by appending fields in order.
public struct DocumentBuilder: Sendable {
    private var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = [0, 0, 0, 0]
        bytes.reserveCapacity(capacity)
    }

    public mutating func append(_ key: String, _ value: BSONValue) {
        bytes.append(value.type.rawValue)
        appendCString(key)
        appendValue(value)
    }

    /// Appends an element taken verbatim from another document.
    public mutating func append(element: RawElement) {
        bytes.append(contentsOf: element.elementBytes)
    }

    /// Appends an element under a new name, with the value's bytes copied verbatim.
    public mutating func append(_ key: String, rawValueOf element: RawElement) {
        bytes.append(element.type.rawValue)
        appendCString(key)
        bytes.append(contentsOf: element.valueBytes)
    }

    public mutating func append(_ key: String, _ document: Document) {
        append(key, .document(document))
    }

    public func build() -> Document {
        var out = bytes
        out.append(0)
        let n = Int32(out.count).littleEndian
        withUnsafeBytes(of: n) { raw in
            for i in 0..<4 { out[i] = raw[i] }
        }
        return Document(trustedBytes: out)
    }

    private mutating func appendCString(_ s: String) {
        // A NUL inside a key would end it early; keys come from code or validated input.
        bytes.append(contentsOf: s.utf8)
        bytes.append(0)
    }

    private mutating func appendInt32(_ v: Int32) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func appendInt64(_ v: Int64) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func appendString(_ s: String) {
        let utf8 = Array(s.utf8)
        appendInt32(Int32(utf8.count + 1))
        bytes.append(contentsOf: utf8)
        bytes.append(0)
    }

    private mutating func appendValue(_ value: BSONValue) {
        switch value {
        case .double(let d): appendInt64(Int64(bitPattern: d.bitPattern))
        case .string(let s), .javascript(let s), .symbol(let s): appendString(s)
        case .document(let d): bytes.append(contentsOf: d.bytes)
        case .array(let values):
            var inner = DocumentBuilder()
            for (i, v) in values.enumerated() { inner.append(String(i), v) }
            bytes.append(contentsOf: inner.build().bytes)
        case .binary(let subtype, let data):
            appendInt32(Int32(data.count))
            bytes.append(subtype)
            bytes.append(contentsOf: data)
        case .undefined, .null, .minKey, .maxKey: break
        case .objectID(let oid): bytes.append(contentsOf: oid.bytes)
        case .bool(let b): bytes.append(b ? 1 : 0)
        case .datetime(let ms): appendInt64(ms)
        case .regex(let pattern, let options):
            appendCString(pattern)
            appendCString(String(options.sorted()))
        case .dbPointer(let ns, let id):
            appendString(ns)
            bytes.append(contentsOf: id.bytes)
        case .javascriptWithScope(let code, let scope):
            let utf8 = Array(code.utf8)
            appendInt32(Int32(4 + 4 + utf8.count + 1 + scope.bytes.count))
            appendString(code)
            bytes.append(contentsOf: scope.bytes)
        case .int32(let v): appendInt32(v)
        case .timestamp(let t): appendInt64(Int64(bitPattern: t.rawValue))
        case .int64(let v): appendInt64(v)
        case .decimal128(let d):
            appendInt64(Int64(bitPattern: d.low))
            appendInt64(Int64(bitPattern: d.high))
        }
    }
}

extension Document {
    /// A document from key/value pairs, in order.
    public init(_ pairs: KeyValuePairs<String, BSONValue>) {
        var b = DocumentBuilder()
        for (k, v) in pairs { b.append(k, v) }
        self = b.build()
    }

    public init(pairs: [(String, BSONValue)]) {
        var b = DocumentBuilder()
        for (k, v) in pairs { b.append(k, v) }
        self = b.build()
    }
}
