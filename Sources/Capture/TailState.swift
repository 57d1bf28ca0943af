import Foundation
import Repository

/// The oplog tailer's resume and retry logic as a pure state machine: events in,
/// actions out, no I/O (STYLE.md), so every continuity case is tested without a server.
///
/// The tailer reports what happened (`start`, `firstEntry`, `positionLost`, `failed`,
/// `opened`); the state answers with what to do next. Continuity rule: after every
/// (re)open, the first entry read must be exactly the last entry read before (same `ts`,
/// same bytes). Anything else is a gap, recorded before reading on.
public struct TailState: Sendable {
    /// The last entry read, against which the next cursor's first entry is checked.
    public struct Anchor: Sendable, Equatable {
        public var ts: OplogTime
        public var bytes: [UInt8]
        public init(ts: OplogTime, bytes: [UInt8]) {
            self.ts = ts
            self.bytes = bytes
        }
    }

    /// How a cursor failed, as far as the retry policy cares.
    public enum Failure: Sendable, Equatable {
        /// Failover, dropped connection, killed cursor, unreachable server: reconnect and prove continuity.
        case transient(String)
        /// Bad credentials, missing privileges, no oplog: retrying cannot help.
        case fatal(String)
    }

    public enum Event: Sendable, Equatable {
        /// Begin: `anchor` is the last durable entry (nil: no history), `from` the user's start.
        case start(anchor: Anchor?, from: OplogTime?)
        /// The first entry the new cursor returned; `oldest` is the oldest entry still in the oplog.
        case firstEntry(ts: OplogTime, bytes: [UInt8], oldest: OplogTime?, now: Date)
        /// The cursor's position is gone before any entry was read (CappedPositionLost).
        case positionLost(oldest: OplogTime?, now: Date)
        /// An entry past the first was read: the backoff resets.
        case progressed
        case failed(Failure)
    }

    public enum Action: Sendable, Equatable {
        /// Open a cursor at `ts >= from`; nil: at the newest entry of the oplog.
        case open(from: OplogTime?)
        /// The first entry repeats the anchor: drop it and read on.
        case skipEntry
        /// Keep the entry; `newChain` when it does not continue the previous segment.
        case acceptEntry(newChain: Bool)
        /// Seal the open segment, then make the gap durable and alert; the entry (if any) starts a new chain.
        case recordGap(TimelineGap)
        /// Wait, then `open(from:)` again.
        case reconnect(after: Duration, from: OplogTime?)
        case fail(String)
        case none
    }

    public private(set) var anchor: Anchor?
    /// Where the next open starts when there is no anchor.
    private var from: OplogTime?
    private var attempts = 0
    /// Backoff bounds for reconnects.
    public var minimumDelay: Duration
    public var maximumDelay: Duration

    public init(minimumDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(5)) {
        self.minimumDelay = minimumDelay
        self.maximumDelay = maximumDelay
    }

    /// The position the next cursor opens at.
    public var resumePoint: OplogTime? { anchor?.ts ?? from }

    /// Records the last entry read (kept by the tailer at each seal and before each reopen).
    public mutating func setAnchor(_ anchor: Anchor) { self.anchor = anchor }

    public mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case .start(let anchor, let from):
            self.anchor = anchor
            self.from = from
            return [.open(from: resumePoint)]

        case .firstEntry(let ts, let bytes, let oldest, let now):
            guard let anchor else { return [.acceptEntry(newChain: true)] }
            if ts == anchor.ts && bytes == anchor.bytes { return [.skipEntry] }
            let gap: TimelineGap
            if ts == anchor.ts {
                gap = TimelineGap(after: anchor.ts, before: ts, detected: now, reason: .rollback,
                                  message: "the oplog entry at ts:\(anchor.ts) differs from the one saved: the node rolled back. Entries after ts:\(anchor.ts) up to this one may be lost; take a new snapshot to restore past ts:\(ts).")
            } else if ts < anchor.ts || (oldest.map { $0 <= anchor.ts } ?? false) {
                gap = TimelineGap(after: anchor.ts, before: ts, detected: now, reason: .rollback,
                                  message: "the saved entry ts:\(anchor.ts) is no longer in the oplog although older entries are: the node rolled back. Take a new snapshot to restore past ts:\(ts).")
            } else {
                gap = TimelineGap(after: anchor.ts, before: ts, detected: now, reason: .rolledOver,
                                  message: "the oplog rolled over past the last saved entry ts:\(anchor.ts) (the oldest entry is now ts:\(oldest ?? ts)): entries between were lost. Take a new snapshot to restore past ts:\(ts); enlarge the oplog or keep the tailer running to avoid this.")
            }
            self.anchor = nil
            attempts = 0
            return [.recordGap(gap), .acceptEntry(newChain: true)]

        case .positionLost(let oldest, let now):
            attempts = 0
            guard let anchor else {
                // Nothing saved yet: start over at the newest entry.
                return [.open(from: nil)]
            }
            let gap = TimelineGap(after: anchor.ts, before: oldest, detected: now, reason: .rolledOver,
                                  message: "the oplog rolled over past the last saved entry ts:\(anchor.ts): entries between were lost. Take a new snapshot to restore past the gap; enlarge the oplog or keep the tailer running to avoid this.")
            self.anchor = nil
            from = oldest
            return [.recordGap(gap), .open(from: oldest)]

        case .progressed:
            attempts = 0
            return [.none]

        case .failed(.fatal(let message)):
            return [.fail(message)]

        case .failed(.transient):
            let delay = min(maximumDelay, minimumDelay * (1 << min(attempts, 10)))
            attempts += 1
            return [.reconnect(after: delay, from: resumePoint)]
        }
    }
}
