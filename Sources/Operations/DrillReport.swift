import Foundation

/// What a drill did and found: the JSON written next to the HTML page, and what
/// `DrillRunner.run` returns to the daemon. Codable; its field names are the JSON's.
public struct DrillReport: Codable, Sendable {
    /// `passed`: every collection was verified equal. `failed`: something differs or
    /// could not be restored. Never `passed` with an unverified collection.
    public enum Outcome: String, Codable, Sendable { case passed, failed }

    public var version = 1
    public var id: String
    public var started: Date
    public var finished: Date
    public var outcome: Outcome
    /// Sentences naming what is wrong (empty when passed).
    public var failures: [String]
    /// What the drill could not check, said explicitly (a drill with any is not passed).
    public var unverified: [String]

    /// The repository drilled and which copy it is ("primary" or "off-site copy").
    public var repository: String
    public var repositoryRole: String
    /// The redacted target URI and the scratch database prefix (nil: a separate server).
    public var target: String
    public var scratchPrefix: String?
    public var keptScratch: Bool

    /// How the point was chosen (`latest`, a time, `random`) and what it resolved to.
    public var pointChoice: String
    public var point: DrillPoint?
    public var snapshot: String?
    public var measurements: DrillMeasurements
    public var collections: [DrillCollectionCheck]
    public var timeline: DrillTimeline
    /// What a drill compares, and what it never does (so a pass is not read as more).
    public var checked = [
        "per collection: document count and MD5 in _id order (the target's dbHash, or the documents read back)",
        "per collection: index definitions (without v and ns)",
        "the restored collections and views are exactly those expected",
        "the snapshot's leaves of each collection not renamed since hash to the checksum recorded at capture time",
    ]
    public var notChecked = [
        "collection options, validators and collations",
        "users and roles (admin.system.*), which restores skip",
    ]

    public var passed: Bool { outcome == .passed }
}

/// The drilled moment.
public struct DrillPoint: Codable, Sendable {
    /// `ts:S:I` of the last entry the restore applied (or the limit).
    public var ts: String
    /// Seconds since 1970 of that entry.
    public var time: Double
}

/// What a drill measured.
public struct DrillMeasurements: Codable, Sendable {
    /// Restore duration, data load plus replay: the recovery time achieved (RTO).
    public var restoreSeconds: Double?
    public var loadSeconds: Double?
    public var replaySeconds: Double?
    /// Verification duration.
    public var verifySeconds: Double?
    /// Drill start minus the newest restorable moment: the data a disaster at drill
    /// time would lose (RPO).
    public var rpoSeconds: Double?
    /// Drill start minus the drilled point.
    public var pointAgeSeconds: Double?
    /// Stored bytes the restore plan reads (its estimate), and bytes the verification
    /// actually read from the repository (decrypted).
    public var plannedBytes: UInt64?
    public var verificationBytesRead: UInt64
    /// Bytes the whole drill fetched from the repository's storage (when metered).
    public var bytesRead: UInt64?
    public var entriesReplayed: Int?
    public var documentsLoaded: UInt64?
    /// Oplog entries the verification modelled.
    public var entriesModelled: Int
    public var replayMode: String?
}

/// One collection's check.
public struct DrillCollectionCheck: Codable, Sendable {
    public enum Status: String, Codable, Sendable { case passed, failed, unverified }

    /// Source and scratch namespaces.
    public var namespace: String
    public var target: String
    public var status: Status
    /// `dbHash` (per-collection MD5 on the target) or `read-back` (documents read in `_id` order).
    public var method: String
    public var expectedCount: UInt64
    public var restoredCount: UInt64?
    public var expectedChecksum: String
    public var restoredChecksum: String?
    /// Documents and entries the oplog touched after the snapshot.
    public var touchedDocuments: Int
    public var oplogEntries: Int
    /// Index names expected, and whether the target's definitions matched.
    public var indexes: [String]
    public var indexesMatch: Bool?
    /// The first `_id` (relaxed Extended JSON) where restored and expected differ.
    public var firstDifferingID: String?
    public var problems: [String]
}

/// The restorable window as drawn on the report: everything in seconds since 1970.
public struct DrillTimeline: Codable, Sendable {
    public struct Span: Codable, Sendable {
        public var from: Double
        public var to: Double
    }
    public struct Mark: Codable, Sendable {
        public var time: Double
        public var label: String
    }
    /// Consistency points of snapshots.
    public var snapshots: [Mark]
    /// Contiguous oplog coverage.
    public var coverage: [Span]
    /// Gaps: time after which entries are missing, up to the time they resume.
    public var gaps: [Span]
    /// Restorable windows.
    public var windows: [Span]
    public var drilled: Double?

    public init(snapshots: [Mark] = [], coverage: [Span] = [], gaps: [Span] = [], windows: [Span] = [], drilled: Double? = nil) {
        self.snapshots = snapshots
        self.coverage = coverage
        self.gaps = gaps
        self.windows = windows
        self.drilled = drilled
    }
}

/// One line of the compact history: enough for the table and the alert.
public struct DrillSummary: Codable, Sendable, Equatable {
    public var id: String
    public var started: Date
    public var outcome: DrillReport.Outcome
    public var repositoryRole: String
    public var point: String?
    public var restoreSeconds: Double?
    public var rpoSeconds: Double?
    public var collections: Int
    public var failedCollections: Int
    /// The first failure sentence, if any.
    public var failure: String?

    public init(_ report: DrillReport) {
        id = report.id
        started = report.started
        outcome = report.outcome
        repositoryRole = report.repositoryRole
        point = report.point?.ts
        restoreSeconds = report.measurements.restoreSeconds
        rpoSeconds = report.measurements.rpoSeconds
        collections = report.collections.count
        failedCollections = report.collections.filter { $0.status != .passed }.count
        failure = report.failures.first ?? report.unverified.first
    }
}
