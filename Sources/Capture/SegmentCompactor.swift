import Foundation
import Logging
import Repository

/// Merges the tailer's small per-second segments into one oplog blob per closed time
/// window (10 minutes by default), so the repository holds about one object per window.
///
/// One run: read the timeline; for each window older than the newest segment's window,
/// concatenate its contiguous small segments (up to `blobLimit` bytes per blob); save each
/// merged blob and flush (new pack and index); write one timeline file that carries every
/// live segment and gap and supersedes every file it read; then delete the superseded
/// files and the packs only the merged-away segments used. A crash at any step leaves a
/// readable timeline: superseded files are ignored, orphan packs are removed by the next
/// run (or prune). Synchronous; run it from a thread you own. Not reentrant: one
/// compactor per repository at a time (the tailer runs one).
public struct SegmentCompactor: Sendable {
    public var repository: Repository
    /// Width of a compaction window in oplog seconds (600; tests compress the clock).
    public var windowSeconds: UInt32
    /// Largest merged blob.
    public var blobLimit: Int
    public var source: String
    public var logger: Logger

    public init(repository: Repository, source: String, windowSeconds: UInt32 = 600, blobLimit: Int = 64 << 20,
                logger: Logger = Logger(label: "ancre.compactor")) {
        precondition(windowSeconds > 0)
        self.repository = repository
        self.source = source
        self.windowSeconds = windowSeconds
        self.blobLimit = blobLimit
        self.logger = logger
    }

    /// What one run did.
    public struct Result: Sendable, Equatable {
        public var mergedSegments = 0
        public var newSegments = 0
        public var removedFiles = 0
        public var removedPacks = 0
    }

    /// Groups of contiguous, not yet compacted segments of closed windows, two or more per
    /// group, each group at most `blobLimit` bytes (pure).
    public static func plan(_ view: TimelineView, windowSeconds: UInt32, blobLimit: Int) -> [[TimelineView.Listed]] {
        guard let newest = view.lastSegment else { return [] }
        let current = newest.last.t / windowSeconds
        var groups: [[TimelineView.Listed]] = []
        for chain in view.chains {
            var group: [TimelineView.Listed] = []
            var bytes = 0
            func close() {
                if group.count >= 2 { groups.append(group) }
                group = []
                bytes = 0
            }
            for item in view.segments[chain.segments] {
                let s = item.segment
                let window = s.first.t / windowSeconds
                guard !s.compacted, window < current, s.bytes < blobLimit else { close(); continue }
                if let head = group.first, head.segment.first.t / windowSeconds != window || bytes + s.bytes > blobLimit {
                    close()
                }
                group.append(item)
                bytes += s.bytes
            }
            close()
        }
        return groups
    }

    /// Compacts once.
    /// - Parameter writeLock: held around each save+flush and the timeline write, so they
    ///   never interleave with the tailer's (a flush must not race another's saves).
    /// - Throws: `RepositoryError` from storage; a failure leaves the timeline readable.
    @discardableResult
    public func run(writeLock: FlushLock) throws -> Result {
        var result = Result()
        let view = try TimelineView.load(repository)
        let groups = Self.plan(view, windowSeconds: windowSeconds, blobLimit: blobLimit)
        guard !groups.isEmpty || !view.supersededFiles.isEmpty else { return result }

        var replacement: [BlobID: TimelineSegment] = [:]  // keyed by the first merged segment's blob
        var merged = Set<BlobID>()
        for group in groups {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(group.reduce(0) { $0 + $1.segment.bytes })
            for item in group { bytes += try repository.loadBlob(item.segment.blob) }
            let first = group.first!.segment, last = group.last!.segment
            let saved = try writeLock.withLock {
                let saved = try repository.saveBlob(type: .oplog, bytes: bytes)
                try repository.flush()
                return saved
            }
            replacement[first.blob] = TimelineSegment(
                blob: saved.id, first: first.first, last: last.last, count: group.reduce(0) { $0 + $1.segment.count },
                bytes: bytes.count, term: last.term, previous: first.previous, compacted: true)
            for item in group { merged.insert(item.segment.blob) }
            result.mergedSegments += group.count
            result.newSegments += 1
        }

        var segments: [TimelineSegment] = []
        for item in view.segments {
            if let new = replacement[item.segment.blob] { segments.append(new) }
            else if !merged.contains(item.segment.blob) { segments.append(item.segment) }
        }
        let superseded = view.liveFiles + view.supersededFiles
        if !groups.isEmpty {
            let file = TimelineFile(source: source, segments: segments, gaps: view.gaps, supersedes: superseded)
            try writeLock.withLock { _ = try file.save(to: repository) }
        } else {
            // Only leftovers of an interrupted run: their superseder is live already.
            segments = view.segments.map(\.segment)
        }
        let filesToDelete = groups.isEmpty ? view.supersededFiles : superseded
        for id in filesToDelete { try repository.deleteFile(kind: .timeline, id: id) }
        result.removedFiles = filesToDelete.count

        // Packs whose every blob belonged only to segments no live file lists any more.
        let live = Set(segments.map(\.blob))
        let dead = Set(view.segments.map(\.segment.blob) + view.supersededSegments.map(\.blob)).subtracting(live)
        let candidates = Set(dead.compactMap { repository.packName(of: $0) })
        let removable = Set(repository.blobs(inPacks: candidates).filter { $0.value.allSatisfy(dead.contains) }.keys)
        try writeLock.withLock { try repository.removePacks(removable) }
        result.removedPacks = removable.count
        logger.info("compacted oplog segments", metadata: [
            "segments.merged": "\(result.mergedSegments)", "segments.new": "\(result.newSegments)",
            "timeline.removed": "\(result.removedFiles)", "packs.removed": "\(result.removedPacks)",
        ])
        return result
    }
}

/// Serializes the steps that must not interleave between the tailer and the compactor:
/// save + flush (a flush must not race another's saves) and the timeline write after it.
public final class FlushLock: @unchecked Sendable {
    // @unchecked: NSLock is thread-safe.
    private let lock = NSLock()
    public init() {}
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
