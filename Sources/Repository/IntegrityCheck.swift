import Foundation

/// A repository check that also says which snapshots each problem affects.
public struct IntegrityCheck: Sendable {
    public let repository: Repository

    public init(repository: Repository) {
        self.repository = repository
    }

    /// Runs `Repository.check`, then walks every snapshot's tree.
    /// - Throws: `RepositoryError` only when storage cannot be listed; damage is reported.
    public func run(readData: Bool, subset: PackSubset? = nil) throws -> IntegrityReport {
        let base = try repository.check(readData: readData, subset: subset)
        let catalog = SnapshotCatalog(repository: repository)
        var report = IntegrityReport(
            problems: [], unreferencedPacks: base.unreferencedPacks, indexFiles: base.indexFilesChecked,
            packs: base.packsChecked, snapshots: 0, blobsRead: base.blobsChecked, packsRead: base.packsRead,
            subset: subset?.description)
        var used: [(id: String, blobs: Set<BlobID>)] = []
        for (id, record) in try catalog.list() {
            report.snapshots += 1
            do {
                let blobs = try catalog.blobs(of: record)
                let missing = blobs.filter { !repository.hasBlob($0) }
                if let first = missing.min() {
                    report.problems.append(.init(
                        code: RepositoryError.Code.blobNotFound.description, pack: nil, blob: first.hex,
                        message: "snapshot \(id.prefix(8)) needs \(missing.count) blobs the index lacks (first: \(first.hex))",
                        snapshots: [id]))
                }
                used.append((id, blobs))
            } catch {
                report.problems.append(.init(
                    code: (error as? RepositoryError)?.code.description ?? "unreadable", pack: nil, blob: nil,
                    message: "snapshot \(id.prefix(8)) cannot be walked: \(error)", snapshots: [id]))
            }
        }
        for problem in base.problems {
            var blobs: Set<BlobID> = []
            if let blob = problem.blob { blobs.insert(blob) }
            if problem.blob == nil, let pack = problem.pack { blobs.formUnion(repository.blobs(inPack: pack)) }
            let affected = used.filter { !$0.blobs.isDisjoint(with: blobs) }.map(\.id)
            report.problems.append(.init(
                code: problem.code.description, pack: problem.pack, blob: problem.blob?.hex,
                message: problem.message, snapshots: affected))
        }
        return report
    }
}

/// What `IntegrityCheck` found.
public struct IntegrityReport: Sendable, Encodable {
    public struct Problem: Sendable, Encodable {
        public var code: String
        public var pack: String?
        public var blob: String?
        public var message: String
        /// Ids of the snapshots that cannot be fully restored because of it.
        public var snapshots: [String]
    }

    public var problems: [Problem]
    public var unreferencedPacks: [String]
    public var indexFiles: Int
    public var packs: Int
    public var snapshots: Int
    public var blobsRead: Int
    /// Packs read whole (all with --read-data, the subset's with --read-data-subset).
    public var packsRead: Int
    /// `K/T`: the bucket of packs read, when a subset was read.
    public var subset: String?
}

/// Repository totals for `ancre stats`.
public struct RepositoryUsage: Sendable, Encodable {
    public struct ByType: Sendable, Encodable {
        public var type: String
        public var blobs: Int
        public var rawBytes: Int
        public var storedBytes: Int
    }

    public var snapshots: Int
    public var blobs: Int
    public var deltaBlobs: Int
    public var packs: Int
    /// Sum of every snapshot's document bytes: what storing each snapshot whole would cost.
    public var logicalBytes: UInt64
    public var rawBytes: Int
    public var storedBytes: Int
    public var dedupRatio: Double
    public var indexMemoryBytes: Int
    public var indexBytesPerBlob: Double
    public var byType: [ByType]

    public static func gather(_ repository: Repository) throws -> RepositoryUsage {
        let stats = repository.stats()
        let snapshots = try SnapshotCatalog(repository: repository).list()
        let logical = snapshots.reduce(UInt64(0)) { $0 + $1.record.bytes }
        let footprint = repository.indexMemoryFootprint
        return RepositoryUsage(
            snapshots: snapshots.count, blobs: stats.blobCount, deltaBlobs: stats.deltaCount, packs: stats.packCount,
            logicalBytes: logical, rawBytes: stats.totalRawBytes, storedBytes: stats.totalStoredBytes,
            dedupRatio: stats.totalStoredBytes > 0 ? Double(logical) / Double(stats.totalStoredBytes) : 0,
            indexMemoryBytes: footprint,
            indexBytesPerBlob: stats.blobCount > 0 ? Double(footprint) / Double(stats.blobCount) : 0,
            byType: BlobType.allCases.map { t in
                ByType(type: t.description, blobs: stats.blobsByType[t] ?? 0, rawBytes: stats.rawBytes[t] ?? 0,
                       storedBytes: stats.storedBytes[t] ?? 0)
            })
    }
}
