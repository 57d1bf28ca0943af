import Foundation

/// The snapshots of a repository: their records at `snapshots/<id>` and their manifests.
public struct SnapshotCatalog: Sendable {
    public let repository: Repository

    public init(repository: Repository) {
        self.repository = repository
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        // Fractional seconds: snapshots taken within one second must still sort by time.
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
                return date
            }
            if let date = try? Date(text, strategy: .iso8601) { return date }
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an RFC 3339 time: \(text)"))
        }
        return d
    }()

    /// Writes a snapshot record; the last step of a snapshot.
    public func save(_ record: SnapshotRecord) throws -> String {
        try repository.saveFile(kind: .snapshot, bytes: Array(try Self.encoder.encode(record)))
    }

    /// Every snapshot, oldest first.
    public func list() throws -> [(id: String, record: SnapshotRecord)] {
        let ids = try repository.listFiles(kind: .snapshot)
        // Records are small files, one storage read and one decryption each: read them
        // on all cores (a month of two-hourly snapshots is 360 of them; on S3, round trips).
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var records: [Result<SnapshotRecord, any Error>?]
            init(_ count: Int) { records = Array(repeating: nil, count: count) }
        }
        let results = Results(ids.count)
        let lanes = max(1, min(ids.count, 2 * ProcessInfo.processInfo.activeProcessorCount))
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            for index in stride(from: lane, to: ids.count, by: lanes) {
                let result = Result { try load(exactly: ids[index]) }
                results.lock.withLock { results.records[index] = result }
            }
        }
        return try zip(ids, results.records).map { id, result in (id, try result!.get()) }
            .sorted { ($0.record.time, $0.id) < ($1.record.time, $1.id) }
    }

    private func load(exactly id: String) throws -> SnapshotRecord {
        let bytes = try repository.loadFile(kind: .snapshot, id: id)
        do {
            return try Self.decoder.decode(SnapshotRecord.self, from: Data(bytes))
        } catch {
            throw RepositoryError(.invalidFormat, "snapshot \(id) is not a snapshot record this version reads: \(error)")
        }
    }

    /// The snapshot with this id, an unambiguous prefix of it, or `latest`.
    /// - Throws: `RepositoryError` `.objectNotFound` when none or several match.
    public func find(_ reference: String) throws -> (id: String, record: SnapshotRecord) {
        let all = try list()
        if reference == "latest" {
            guard let last = all.last else { throw RepositoryError(.objectNotFound, "the repository has no snapshot yet") }
            return last
        }
        let matches = all.filter { $0.id.hasPrefix(reference) }
        guard matches.count == 1 else {
            throw RepositoryError(.objectNotFound, matches.isEmpty
                ? "no snapshot \(reference); `ancre snapshots` lists them"
                : "\(matches.count) snapshots start with \(reference); give more of the id")
        }
        return matches[0]
    }

    /// The newest snapshot taken from `source`, or the newest of all when none is.
    public func latest(source: String?) throws -> (id: String, record: SnapshotRecord)? {
        let all = try list()
        return all.last { $0.record.source == source } ?? all.last
    }

    public func manifest(of record: SnapshotRecord) throws -> SnapshotManifest {
        let bytes = try repository.loadBlob(record.manifest)
        do {
            return try Self.decoder.decode(SnapshotManifest.self, from: Data(bytes))
        } catch {
            throw RepositoryError(.invalidFormat, "manifest \(record.manifest.short) cannot be read: \(error)")
        }
    }

    /// Every blob a snapshot needs to be restored: manifest, metadata, nodes, leaves,
    /// the bases of delta leaves, and oplog blobs.
    public func blobs(of record: SnapshotRecord) throws -> Set<BlobID> {
        var out: Set<BlobID> = [record.manifest]
        let manifest = try manifest(of: record)
        for c in manifest.collections {
            out.insert(c.metadata)
            guard let root = c.root else { continue }
            try collectTree(root, into: &out)
        }
        for chunk in manifest.oplog { out.insert(chunk.blob) }
        return out
    }

    private func collectTree(_ id: BlobID, into out: inout Set<BlobID>) throws {
        guard out.insert(id).inserted else { return }
        let node = try TreeNode(decoding: try repository.loadBlob(id), id: id)
        for e in node.entries {
            if node.level == 0 {
                out.insert(e.child)
                if let base = try repository.deltaBase(of: e.child) { out.insert(base) }
            } else {
                try collectTree(e.child, into: &out)
            }
        }
    }
}
