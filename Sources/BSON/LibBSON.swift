import CMongoC

// Every call into libbson from this target goes through this file.

enum LibBSON {
    static var bsonTAlignment: Int { ancre_bson_alignment() }

    static func toJSON(_ bytes: [UInt8], canonical: Bool) -> String? {
        bytes.withUnsafeBufferPointer { p -> String? in
            var length = 0
            guard let json = ancre_bson_to_json(p.baseAddress, p.count, canonical, &length) else { return nil }
            defer { bson_free(json) }
            return String(decoding: UnsafeRawBufferPointer(start: json, count: length), as: UTF8.self)
        }
    }

    static func fromJSON(_ text: String) -> Result<[UInt8], BSONError> {
        var text = text
        return text.withUTF8 { utf8 -> Result<[UInt8], BSONError> in
            var length: UInt32 = 0
            var message = [CChar](repeating: 0, count: 512)
            let data = utf8.withMemoryRebound(to: CChar.self) { chars in
                ancre_bson_from_json(chars.baseAddress, chars.count, &length, &message, message.count)
            }
            guard let data else {
                let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                return .failure(BSONError(.badJSON, at: 0, text))
            }
            defer { bson_free(data) }
            return .success(Array(UnsafeBufferPointer(start: data, count: Int(length))))
        }
    }

    /// libbson's validator; `nil` when valid, else the offset it reports.
    static func validate(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { p in
            var offset = 0
            return ancre_bson_validate(p.baseAddress, p.count, &offset) ? nil : offset
        }
    }
}

/// Extended JSON (MongoDB's JSON form of BSON), in both directions, through libbson.
public enum ExtendedJSON {
    /// Canonical (`{"$numberInt": "1"}`) or relaxed (`1`) Extended JSON v2.
    public static func encode(_ document: Document, canonical: Bool = true) throws(BSONError) -> String {
        guard let json = LibBSON.toJSON(document.bytes, canonical: canonical) else {
            throw BSONError(.badValue, at: 0, "libbson could not render the document as JSON")
        }
        return json
    }

    /// Parses one Extended JSON object (canonical, relaxed or legacy shell forms).
    public static func decode(_ text: String) throws(BSONError) -> Document {
        switch LibBSON.fromJSON(text) {
        case .success(let bytes): return Document(trustedBytes: bytes)
        case .failure(let error): throw error
        }
    }

    /// Alignment libbson requires for `bson_t` (128 on Debian); why Swift never holds one.
    public static var libbsonAlignment: Int { LibBSON.bsonTAlignment }

    /// True when libbson's own validator accepts the bytes (UTF-8 checked).
    public static func libbsonAccepts(_ bytes: [UInt8]) -> Bool { LibBSON.validate(bytes) == nil }
}
