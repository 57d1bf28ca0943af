import Synchronization

/// Counters a running backup updates and a progress display reads.
///
/// Thread-safe (atomics): readers update it per batch from any thread; the display
/// polls `snapshot()` from its own.
public final class DumpProgress: Sendable {
    private let bytes = Atomic<Int>(0)
    private let documents = Atomic<Int>(0)
    private let expectedBytes = Atomic<Int>(0)
    private let expectedDocuments = Atomic<Int>(0)
    private let collectionsDone = Atomic<Int>(0)
    private let collectionsTotal = Atomic<Int>(0)

    public init() {}

    /// What has been read so far, and what the server's statistics led to expect.
    public struct Counts: Sendable {
        public var bytes: Int
        public var documents: Int
        public var expectedBytes: Int
        public var expectedDocuments: Int
        public var collectionsDone: Int
        public var collectionsTotal: Int

        /// Fraction done (0...1) by bytes, nil when nothing is expected.
        public var fraction: Double? {
            expectedBytes > 0 ? min(1, Double(bytes) / Double(expectedBytes)) : nil
        }
    }

    public func snapshot() -> Counts {
        Counts(bytes: bytes.load(ordering: .relaxed), documents: documents.load(ordering: .relaxed),
               expectedBytes: expectedBytes.load(ordering: .relaxed),
               expectedDocuments: expectedDocuments.load(ordering: .relaxed),
               collectionsDone: collectionsDone.load(ordering: .relaxed),
               collectionsTotal: collectionsTotal.load(ordering: .relaxed))
    }

    func expect(bytes: Int, documents: Int, collections: Int) {
        expectedBytes.store(bytes, ordering: .relaxed)
        expectedDocuments.store(documents, ordering: .relaxed)
        collectionsTotal.store(collections, ordering: .relaxed)
    }

    func add(bytes: Int, documents: Int) {
        self.bytes.add(bytes, ordering: .relaxed)
        self.documents.add(documents, ordering: .relaxed)
    }

    func collectionFinished() { collectionsDone.add(1, ordering: .relaxed) }
}
