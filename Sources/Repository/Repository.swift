import Foundation
import Logging
import Synchronization

/// Tunables of an open repository that are not part of the format.
public struct RepositoryOptions: Sendable {
    /// A pack is sealed and uploaded once its blobs reach this many bytes.
    public var packTargetSize: Int
    /// zstd level for new blobs (2: on 1 MiB leaves both smaller and faster than 3 on 256 KiB; BENCHMARKS.md).
    public var compressionLevel: Int32
    /// Open even when some index files cannot be read (for `check`); their problems are in `indexProblems`.
    public var ignoreCorruptIndex: Bool
    public var logger: Logger

    public init(
        packTargetSize: Int = 16 << 20, compressionLevel: Int32 = 2, ignoreCorruptIndex: Bool = false,
        logger: Logger = Logger(label: "ancre.repository")
    ) {
        precondition(packTargetSize > 0 && packTargetSize < PackFormat.maximumSize / 2)
        self.packTargetSize = packTargetSize
        self.compressionLevel = compressionLevel
        self.ignoreCorruptIndex = ignoreCorruptIndex
        self.logger = logger
    }
}

/// A kind of sealed file stored beside the packs, in its own directory.
public struct FileKind: Hashable, Sendable, CustomStringConvertible {
    /// The storage directory, also the AAD that binds a file to its kind.
    public let directory: String
    public init(directory: String) { self.directory = directory }
    public var description: String { directory }

    public static let snapshot = FileKind(directory: "snapshots")
    public static let timeline = FileKind(directory: "timeline")
}

/// Sizes of what the index holds.
public struct RepositoryStats: Sendable, Equatable {
    public var blobCount: Int = 0
    public var packCount: Int = 0
    public var deltaCount: Int = 0
    public var blobsByType: [BlobType: Int] = [:]
    public var rawBytes: [BlobType: Int] = [:]
    public var storedBytes: [BlobType: Int] = [:]
    public var totalRawBytes: Int { rawBytes.values.reduce(0, +) }
    public var totalStoredBytes: Int { storedBytes.values.reduce(0, +) }
}

/// An open repository: keys, blobs in packs, the index, and sealed files.
///
/// Thread-safe and synchronous: worker threads may call `saveBlob` and `loadBlob`
/// concurrently; compression and encryption run on the caller's thread, outside the
/// lock. `flush` must not race with `saveBlob` calls whose results matter to it.
/// Write order (FORMAT.md): packs, then the index that names them, then files.
public final class Repository: Sendable {
    public let storage: any Storage
    public let config: RepositoryConfig
    /// The key slot the repository was opened (or created) with.
    public let keySlotID: String
    /// Index files that could not be read, when opened with `ignoreCorruptIndex`.
    public let indexProblems: [RepositoryError]
    let master: MasterKey
    let options: RepositoryOptions
    var logger: Logger { options.logger }
    private let compressors: ContextPool<ZstdCompressor>
    private let decompressors = ContextPool<ZstdDecompressor> { ZstdDecompressor() }
    /// Packs uploading in the background, and the room for more (see `uploadInBackground`).
    private let uploads = DispatchGroup()
    private let uploadSlots = DispatchSemaphore(value: Repository.maximumUploads)
    static let maximumUploads = 2
    private static let uploadQueue = DispatchQueue(label: "ancre-upload", attributes: .concurrent)

    struct State: ~Copyable {
        var index: BlobIndex
        /// Open packs not in use by a saver.
        var idleWriters: [PackWriter] = []
        /// Blobs appended to a pack that is not uploaded yet.
        var pending: [BlobID: (writer: PackWriter, entry: PackEntry)] = [:]
        /// Blobs being compressed by some saver; a concurrent save of the same id is a duplicate.
        var inFlight: Set<BlobID> = []
        /// Uploaded packs whose blobs no index file lists yet.
        var unindexed: [(pack: PackInfo, entries: [PackEntry])] = []
        /// A pack upload that failed: its blobs are lost, so `flush` must fail.
        var failure: RepositoryError?
    }
    let state: Mutex<State>

    private init(storage: any Storage, config: RepositoryConfig, master: MasterKey, keySlotID: String, index: BlobIndex, indexProblems: [RepositoryError], options: RepositoryOptions) {
        self.storage = storage
        self.config = config
        self.master = master
        self.keySlotID = keySlotID
        self.options = options
        self.indexProblems = indexProblems
        let level = options.compressionLevel
        self.compressors = ContextPool { ZstdCompressor(level: level) }
        self.state = Mutex(State(index: index))
    }

    // MARK: - Create and open

    /// Initialises a new repository in `storage`: writes a key slot for `passphrase`, then `config`.
    ///
    /// - Parameter kdf: scrypt cost; `.calibrated` measures this machine (about 0.5 s per unlock).
    /// - Throws: `RepositoryError` `.repositoryExists` when `config` already exists;
    ///   `.storageFull`/`.ioFailure` from storage.
    public static func create(
        storage: any Storage, passphrase: String, kdf: KDFParameters = .calibrated,
        chunker: ChunkerParameters = .default, label: String = "", options: RepositoryOptions = RepositoryOptions()
    ) throws -> Repository {
        if try storage.stat("config") != nil {
            throw RepositoryError(.repositoryExists, "a repository already exists here (found 'config'); use it, or choose an empty location")
        }
        let config = RepositoryConfig(version: RepositoryConfig.currentVersion, id: encodeHex(Crypto.randomBytes(32)), chunker: chunker)
        let master = MasterKey.random()
        let slot = try KeySlot.make(master: master, passphrase: Array(passphrase.utf8), kdf: kdf, repositoryID: config.id, label: label)
        let slotID = encodeHex(Crypto.randomBytes(16))
        try storage.put("keys/\(slotID)", Array(try KeySlot.encoder.encode(slot)))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard try storage.putIfAbsent("config", Array(try encoder.encode(config))) else {
            try? storage.delete("keys/\(slotID)")
            throw RepositoryError(.repositoryExists, "a repository was created here concurrently; use it, or choose an empty location")
        }
        options.logger.info("created repository", metadata: ["repository.id": "\(config.id)"])
        return Repository(storage: storage, config: config, master: master, keySlotID: slotID, index: BlobIndex(), indexProblems: [], options: options)
    }

    /// Cores an `open` keeps busy while it derives the key from the passphrase (scrypt's
    /// lanes on parallel threads): what is left is free for work that needs no key.
    public static var unlockThreads: Int { Scrypt.defaultThreads }

    /// Opens the repository in `storage` with any of its key slots and loads the index.
    ///
    /// - Throws: `RepositoryError` `.repositoryNotFound` without `config`; `.wrongPassphrase`
    ///   when no slot opens; `.invalidFormat` for an unknown version; `.indexCorrupt` when an
    ///   index file cannot be read (unless `options.ignoreCorruptIndex`).
    public static func open(storage: any Storage, passphrase: String, options: RepositoryOptions = RepositoryOptions()) throws -> Repository {
        let config = try readConfig(storage)
        let (master, slotID) = try unlock(storage: storage, config: config, passphrase: Array(passphrase.utf8))
        var problems: [RepositoryError] = []
        let index = try loadIndex(storage: storage, master: master, ignoreCorrupt: options.ignoreCorruptIndex, problems: &problems)
        options.logger.debug("opened repository", metadata: ["repository.id": "\(config.id)", "index.blobs": "\(index.count)"])
        return Repository(storage: storage, config: config, master: master, keySlotID: slotID, index: index, indexProblems: problems, options: options)
    }

    /// Reloads the index from the index files in storage, replacing the one loaded at open.
    ///
    /// For long-lived processes (the tailer's compactor) after another process (prune)
    /// rewrote the index and removed packs. Blobs uploaded by this process but not yet named
    /// by an index file are kept. Do not call it concurrently with `flush`.
    /// - Throws: `RepositoryError` from storage, `.indexCorrupt` for an unreadable index file.
    public func reloadIndex() throws {
        var problems: [RepositoryError] = []
        var index = try Self.loadIndex(storage: storage, master: master, ignoreCorrupt: options.ignoreCorruptIndex, problems: &problems)
        state.withLock { state in
            for (pack, entries) in state.unindexed {
                for e in entries { index.insert(pack: pack, entry: e) }
            }
            index.merge()
            state.index = index
        }
    }

    /// This repository (same config and master key) on another storage, with an empty index:
    /// lets `RepositoryCopy` lock and read a copy without asking for its passphrase again.
    func sameRepository(on storage: any Storage) -> Repository {
        Repository(storage: storage, config: config, master: master, keySlotID: keySlotID, index: BlobIndex(), indexProblems: [], options: options)
    }

    static func readConfig(_ storage: any Storage) throws -> RepositoryConfig {
        let bytes: [UInt8]
        do {
            bytes = try storage.get("config")
        } catch RepositoryError.Code.objectNotFound {
            throw RepositoryError(.repositoryNotFound, "no repository here (no 'config' object); check the location or run `ancre init`")
        }
        guard let config = try? JSONDecoder().decode(RepositoryConfig.self, from: Data(bytes)) else {
            throw RepositoryError(.invalidFormat, "the 'config' object is not valid JSON of a repository configuration")
        }
        guard config.version == RepositoryConfig.currentVersion else {
            throw RepositoryError(.invalidFormat, "repository format version \(config.version) is not supported by this version of ancre (supports \(RepositoryConfig.currentVersion)); upgrade ancre")
        }
        return config
    }

    private static func unlock(storage: any Storage, config: RepositoryConfig, passphrase: [UInt8]) throws -> (MasterKey, String) {
        let slots = try storage.list(prefix: "keys/").map(\.key).sorted()
        guard !slots.isEmpty else {
            throw RepositoryError(.invalidFormat, "the repository has no key slots ('keys/' is empty): it cannot be opened")
        }
        for key in slots {
            let slotID = String(key.dropFirst("keys/".count))
            guard let slot = try? KeySlot.decoder.decode(KeySlot.self, from: Data(try storage.get(key))) else { continue }
            if let master = try slot.open(passphrase: passphrase, repositoryID: config.id, slotID: slotID) {
                return (master, slotID)
            }
        }
        throw RepositoryError(.wrongPassphrase, "wrong passphrase: no key slot of this repository opens with it (tried \(slots.count))")
    }

    private static func loadIndex(storage: any Storage, master: MasterKey, ignoreCorrupt: Bool, problems: inout [RepositoryError]) throws -> BlobIndex {
        var index = BlobIndex()
        for file in try storage.list(prefix: "index/") {
            do {
                let (packs, entries) = try readIndexFile(storage: storage, key: file.key, master: master)
                let numbers = packs.map { index.packNumber($0) }
                for (pack, entry) in entries { index.bulkAppend(pack: numbers[Int(pack)], entry: entry) }
            } catch let error as RepositoryError where error.code == .indexCorrupt && ignoreCorrupt {
                problems.append(error)
            }
        }
        index.finishBulkLoad()
        return index
    }

    static func readIndexFile(storage: any Storage, key: String, master: MasterKey) throws -> (packs: [PackInfo], entries: [(pack: UInt32, entry: PackEntry)]) {
        let sealed = try storage.get(key)
        do {
            return try IndexFile.decode(SealedFile.open(sealed, kind: IndexFile.kind, key: master))
        } catch {
            throw RepositoryError(.indexCorrupt, "index file '\(key)' is corrupt (fails authentication or is malformed); run `ancre check` and rebuild the index", underlying: error)
        }
    }

    // MARK: - Key slots

    /// Adds a key slot so `passphrase` also opens the repository.
    /// - Throws: `RepositoryError` from storage.
    @discardableResult
    public func addKeySlot(passphrase: String, kdf: KDFParameters = .calibrated, label: String = "") throws -> KeySlotInfo {
        let slot = try KeySlot.make(master: master, passphrase: Array(passphrase.utf8), kdf: kdf, repositoryID: config.id, label: label)
        let slotID = encodeHex(Crypto.randomBytes(16))
        try storage.put("keys/\(slotID)", Array(try KeySlot.encoder.encode(slot)))
        let info = slot.info
        return KeySlotInfo(id: slotID, created: info.created, hostname: info.hostname, label: info.label, kdf: info.kdf)
    }

    /// The key slots, oldest first; malformed slots are skipped.
    /// - Throws: `RepositoryError` from storage.
    public func listKeySlots() throws -> [KeySlotInfo] {
        try storage.list(prefix: "keys/").compactMap { entry in
            guard let slot = try? KeySlot.decoder.decode(KeySlot.self, from: Data(try storage.get(entry.key))) else { return nil }
            let info = slot.info
            return KeySlotInfo(id: String(entry.key.dropFirst(5)), created: info.created, hostname: info.hostname, label: info.label, kdf: info.kdf)
        }.sorted { ($0.created, $0.id) < ($1.created, $1.id) }
    }

    /// Removes a key slot.
    /// - Throws: `RepositoryError` `.keySlotLast` when it is the only slot (the repository
    ///   would become unreadable); `.keySlotNotFound` when no such slot exists.
    public func removeKeySlot(id: String) throws {
        let slots = try storage.list(prefix: "keys/").map { String($0.key.dropFirst(5)) }
        guard slots.contains(id) else {
            throw RepositoryError(.keySlotNotFound, "no key slot '\(id)'; list slots with `ancre key list`")
        }
        guard slots.count > 1 else {
            throw RepositoryError(.keySlotLast, "key slot '\(id)' is the last one: removing it would make the repository unreadable; add another key first")
        }
        try storage.delete("keys/\(id)")
    }

    // MARK: - Blobs

    /// The id a blob with this plaintext has: HMAC-SHA256 under the id key.
    public func blobID(for bytes: some ContiguousBytes) -> BlobID {
        let mac = master.idKey.withUnsafeBytes { key in bytes.withUnsafeBytes { Crypto.hmacSHA256(key: key, $0) } }
        return mac.withUnsafeBytes { BlobID($0, at: 0) }
    }

    /// Whether the repository has the blob, stored or in a pack not yet uploaded.
    public func hasBlob(_ id: BlobID) -> Bool {
        state.withLock { $0.index.contains(id) || $0.pending[id] != nil }
    }

    /// Stores a blob unless the repository already has it.
    ///
    /// With `deltaBase`, the blob is stored as a zstd patch against the base's plaintext;
    /// the base must be stored whole. Compression and encryption run on the calling thread;
    /// a full pack is uploaded in the background (`uploadInBackground`), and an upload that
    /// failed makes later calls throw.
    /// - Parameter id: the blob's id when the caller already computed it.
    /// - Throws: `RepositoryError` `.invalidArgument` for a base that is unknown, a delta itself,
    ///   or whose bytes do not match its id; storage errors when a pack upload fails.
    @discardableResult
    public func saveBlob(type: BlobType, bytes: [UInt8], id: BlobID? = nil, deltaBase: (id: BlobID, bytes: [UInt8])? = nil) throws -> SavedBlob {
        let id = id ?? blobID(for: bytes)
        enum Reservation { case reserved, known, failed(RepositoryError), badBase(String) }
        let reservation: Reservation = state.withLock { state in
            if let failure = state.failure { return .failed(failure) }
            if state.index.contains(id) || state.pending[id] != nil || state.inFlight.contains(id) { return .known }
            if let base = deltaBase?.id {
                let entry = state.pending[base]?.entry ?? state.index.lookup(base)?.entry
                guard let entry else { return .badBase("delta base \(base.short) is not stored in the repository") }
                guard entry.encoding != .delta else { return .badBase("delta base \(base.short) is itself a delta; bases must be whole blobs") }
            }
            state.inFlight.insert(id)
            return .reserved
        }
        switch reservation {
        case .reserved: break
        case .known: return SavedBlob(id: id, type: type, deduplicated: true, storedLength: 0, rawLength: bytes.count, deltaBase: nil)
        case .failed(let error): throw error
        case .badBase(let message): throw RepositoryError(.invalidArgument, message)
        }
        var handedOff = false
        defer { if !handedOff { _ = state.withLock { $0.inFlight.remove(id) } } }

        if let base = deltaBase, blobID(for: base.bytes) != base.id {
            throw RepositoryError(.invalidArgument, "the bytes given for delta base \(base.id.short) do not match its id")
        }
        let (encoding, payload) = try encode(bytes, base: deltaBase?.bytes)
        let base = encoding == .delta ? deltaBase?.id : nil
        let writer = state.withLock { $0.idleWriters.popLast() }
            ?? PackWriter(master: master, capacity: options.packTargetSize + (1 << 20))
        let entry = payload.withUnsafeBytes {
            writer.append(id: id, type: type, encoding: encoding, payload: $0, rawLength: bytes.count, base: base)
        }
        let full = writer.size >= options.packTargetSize
        state.withLock { state in
            state.pending[id] = (writer, entry)
            state.inFlight.remove(id)
            if !full { state.idleWriters.append(writer) }
        }
        handedOff = true
        if full { uploadInBackground(writer) }
        return SavedBlob(id: id, type: type, deduplicated: false, storedLength: Int(entry.length), rawLength: bytes.count, deltaBase: base)
    }

    private func encode(_ bytes: [UInt8], base: [UInt8]?) throws -> (BlobEncoding, [UInt8]) {
        do {
            return try compressors.with { (zstd) -> (BlobEncoding, [UInt8]) in
                let compressed = try bytes.withUnsafeBytes { (b) in try zstd.compress(b) }
                if let base {
                    let delta = try bytes.withUnsafeBytes { b in
                        try base.withUnsafeBytes { (p) in try zstd.compress(b, prefix: p) }
                    }
                    // Rebase: a delta past half the whole blob's size saves too little to be
                    // worth a second read on restore (ARCHITECTURE.md §3).
                    if delta.count <= min(compressed.count, bytes.count) / 2 { return (.delta, delta) }
                }
                return compressed.count < bytes.count ? (.zstd, compressed) : (.raw, bytes)
            }
        } catch {
            throw RepositoryError(.invalidArgument, "cannot compress a blob of \(bytes.count) bytes", underlying: error)
        }
    }

    /// Uploads a full pack in the background, so that the saver goes on compressing
    /// while the pack is written and fsynced (with every saver waiting on its own pack's
    /// fsync, and the savers' packs filling at the same pace, both cores sat idle for
    /// 10-15 ms per pack). At most `maximumUploads` packs wait or upload at a time; a
    /// saver that would exceed it waits. A failure is reported by the next `saveBlob` or
    /// `flush`, and the failed pack's blobs are no longer pending.
    private func uploadInBackground(_ writer: PackWriter) {
        uploadSlots.wait()
        // On Dispatch's pool rather than a thread of its own: a pool thread outlives the
        // upload, so a process that exits right after `flush` races no thread's teardown.
        // A queue of our own targets the overcommitting pool, which adds a thread rather
        // than leave the upload waiting behind savers that wait for a slot.
        Self.uploadQueue.async(group: uploads) { [self] in
            defer { uploadSlots.signal() }
            _ = try? upload(writer)
        }
    }

    /// Waits until no pack is being uploaded in the background; for a caller that stops
    /// on an error without calling `flush`, so nothing is still writing when it exits.
    public func waitForUploads() {
        uploads.wait()
    }

    /// Seals `writer`, uploads the pack, and moves its blobs from pending to the index.
    func upload(_ writer: PackWriter) throws {
        let (name, bytes, entries) = writer.seal()
        do {
            try storage.put(PackFormat.storageKey(name), bytes)
        } catch {
            let failure = (error as? RepositoryError) ?? RepositoryError(.ioFailure, "cannot upload pack \(name)", underlying: error)
            state.withLock { state in
                for e in entries { state.pending[e.id] = nil }
                state.failure = failure
            }
            throw failure
        }
        logger.debug("uploaded pack", metadata: ["pack.id": "\(name)", "pack.blobs": "\(entries.count)", "pack.bytes": "\(bytes.count)"])
        let info = PackInfo(name: name, keyID: writer.keyID)
        state.withLock { state in
            for e in entries {
                state.index.insert(pack: info, entry: e)
                state.pending[e.id] = nil
            }
            state.unindexed.append((info, entries))
        }
    }

    /// Uploads open packs, then writes an index file naming every pack uploaded since the last flush.
    ///
    /// After `flush` returns, every saved blob survives a crash.
    /// - Throws: the storage error of any pack upload that failed since the last flush (those
    ///   blobs are lost: reopen the repository and save them again), or of the index write.
    public func flush() throws {
        let writers = state.withLock { state in
            defer { state.idleWriters = [] }
            return state.idleWriters
        }
        // Side by side, and beside the background uploads: each waits for its fsync.
        let open = writers.filter { $0.count > 0 }
        DispatchQueue.concurrentPerform(iterations: open.count) { i in _ = try? upload(open[i]) }
        uploads.wait()
        if let failure = state.withLock({ $0.failure }) { throw failure }
        let batch = state.withLock { state in
            defer { state.unindexed = [] }
            return state.unindexed
        }
        guard !batch.isEmpty else { return }
        var entries: [(pack: UInt32, entry: PackEntry)] = []
        for (number, item) in batch.enumerated() {
            for e in item.entries { entries.append((UInt32(number), e)) }
        }
        let sealed = SealedFile.seal(IndexFile.encode(packs: batch.map(\.pack), entries: entries), kind: IndexFile.kind, key: master)
        let name = encodeHex(Crypto.sha256(sealed))
        do {
            try storage.put("index/\(name)", sealed)
        } catch {
            state.withLock { $0.unindexed.insert(contentsOf: batch, at: 0) }  // a retry writes them again
            throw error
        }
        state.withLock { $0.index.merge() }
        logger.debug("wrote index", metadata: ["index.id": "\(name)", "index.blobs": "\(entries.count)"])
    }

    private enum Location {
        case packed(PackInfo, PackEntry)
        case pending(PackWriter, PackEntry)
    }

    private func locate(_ id: BlobID) throws -> Location {
        let location: Location? = state.withLock { state in
            if let (writer, entry) = state.pending[id] { return .pending(writer, entry) }
            return state.index.lookup(id).map { .packed($0.pack, $0.entry) }
        }
        guard let location else {
            throw RepositoryError(.blobNotFound, "blob \(id) is not in the index; the repository may be missing an index file (run `ancre check`)")
        }
        return location
    }

    /// Reads and decrypts a blob's payload, before decompression.
    private func payload(_ location: Location) throws -> (entry: PackEntry, pack: String, payload: [UInt8]) {
        switch location {
        case .pending(let writer, let entry):
            let sealed = writer.sealedBlob(entry)
            let aead = AESGCM(key: PackFormat.packKey(master, keyID: writer.keyID))
            return (entry, "(unsaved pack)", try PackReader.openBlob(sealed, entry: entry, aead: aead, pack: "(unsaved pack)"))
        case .packed(let pack, let entry):
            let key = PackFormat.storageKey(pack.name)
            let sealed: [UInt8]
            do {
                sealed = try storage.get(key, range: Int(entry.offset)..<Int(entry.offset + entry.length))
            } catch RepositoryError.Code.objectNotFound {
                throw RepositoryError(.packMissing, "pack \(pack.name) holding blob \(entry.id) is missing from storage; run `ancre check`")
            }
            guard sealed.count == Int(entry.length) else {
                throw RepositoryError(.packTruncated, "pack \(pack.name) is truncated: blob \(entry.id) at offset \(entry.offset) needs \(entry.length) bytes, got \(sealed.count); run `ancre check`")
            }
            let aead = AESGCM(key: PackFormat.packKey(master, keyID: pack.keyID))
            return (entry, pack.name, try PackReader.openBlob(sealed, entry: entry, aead: aead, pack: pack.name))
        }
    }

    /// Turns a decrypted payload back into plaintext.
    func decode(_ payload: [UInt8], entry: PackEntry, pack: String, base: [UInt8]?) throws -> [UInt8] {
        do {
            switch entry.encoding {
            case .raw:
                guard entry.rawLength == 0 || payload.count == Int(entry.rawLength) else {
                    throw CompressionFailure(description: "raw length differs")
                }
                return payload
            case .zstd, .delta:
                // The in-memory index does not keep raw lengths; every frame records its own.
                let rawLength = entry.rawLength > 0 ? Int(entry.rawLength) : try ZstdDecompressor.contentSize(payload)
                return try decompressors.with { (zstd) in
                    try payload.withUnsafeBytes { (p) in
                        if let base {
                            return try base.withUnsafeBytes { (b) in try zstd.decompress(p, rawLength: rawLength, prefix: b) }
                        }
                        return try zstd.decompress(p, rawLength: rawLength)
                    }
                }
            }
        } catch {
            throw RepositoryError(.blobCorrupt, "blob \(entry.id) in pack \(pack) does not decompress; run `ancre check --read-data`", underlying: error)
        }
    }

    /// Loads a blob's plaintext, resolving a delta through its base, and verifies it hashes to `id`.
    ///
    /// - Throws: `RepositoryError` `.blobNotFound` (not in the index), `.packMissing`,
    ///   `.packTruncated`, `.packCorrupt` (authentication failed), `.blobCorrupt`
    ///   (content does not match its id, or does not decompress), `.ioFailure`.
    public func loadBlob(_ id: BlobID) throws -> [UInt8] {
        let (entry, pack, payload) = try payload(try locate(id))
        var base: [UInt8]?
        if let baseID = entry.base {
            guard case let (baseEntry, basePack, basePayload) = try self.payload(try locate(baseID)), baseEntry.encoding != .delta else {
                throw RepositoryError(.invalidFormat, "blob \(id) is a delta against \(baseID), which is itself a delta")
            }
            base = try decode(basePayload, entry: baseEntry, pack: basePack, base: nil)
        }
        let plaintext = try decode(payload, entry: entry, pack: pack, base: base)
        guard blobID(for: plaintext) == id else {
            throw RepositoryError(.blobCorrupt, "blob \(id) in pack \(pack): content does not hash to its id (damaged data or another repository's key); run `ancre check --read-data`")
        }
        return plaintext
    }

    /// The base a blob was delta-compressed against, or `nil` when it is stored whole.
    /// - Throws: `RepositoryError` `.blobNotFound` when the repository does not have the blob.
    public func deltaBase(of id: BlobID) throws -> BlobID? {
        switch try locate(id) {
        case .packed(_, let entry), .pending(_, let entry): entry.base
        }
    }

    /// The blob's type and sizes, or `nil` when the repository does not have it.
    public func blobInfo(_ id: BlobID) -> (type: BlobType, storedLength: Int)? {
        guard let location = try? locate(id) else { return nil }
        switch location {
        case .packed(_, let e), .pending(_, let e): return (e.type, Int(e.length))
        }
    }

    /// Counts and sizes of the indexed blobs (uploaded packs only).
    public func stats() -> RepositoryStats {
        state.withLock { state in
            var stats = RepositoryStats()
            var packs = Set<String>()
            state.index.forEach { pack, entry in
                stats.blobCount += 1
                if entry.encoding == .delta { stats.deltaCount += 1 }
                packs.insert(pack.name)
                stats.blobsByType[entry.type, default: 0] += 1
                stats.storedBytes[entry.type, default: 0] += Int(entry.length)
            }
            stats.rawBytes = state.index.rawTotals
            stats.packCount = packs.count
            return stats
        }
    }

    /// The ids of the indexed blobs stored in pack `name`.
    public func blobs(inPack name: String) -> [BlobID] {
        state.withLock { state in
            var out: [BlobID] = []
            state.index.forEach { pack, entry in if pack.name == name { out.append(entry.id) } }
            return out
        }
    }

    /// Bytes the in-memory index holds, by construction (see `BlobIndex.memoryFootprint`).
    public var indexMemoryFootprint: Int { state.withLock { $0.index.memoryFootprint } }

    // MARK: - Files

    /// Seals `bytes` and stores them at `<kind>/<id>`; the id is the SHA-256 of the sealed bytes.
    /// - Throws: `RepositoryError` from storage.
    @discardableResult
    public func saveFile(kind: FileKind, bytes: [UInt8]) throws -> String {
        let sealed = SealedFile.seal(bytes, kind: kind.directory, key: master)
        let id = encodeHex(Crypto.sha256(sealed))
        try storage.put("\(kind.directory)/\(id)", sealed)
        return id
    }

    /// The ids of the files of `kind`, sorted.
    /// - Throws: `RepositoryError` from storage.
    public func listFiles(kind: FileKind) throws -> [String] {
        try storage.list(prefix: kind.directory + "/").map { String($0.key.dropFirst(kind.directory.count + 1)) }.sorted()
    }

    /// Reads and unseals the file `<kind>/<id>`.
    /// - Throws: `RepositoryError` `.objectNotFound`, or `.invalidFormat` when it fails authentication.
    public func loadFile(kind: FileKind, id: String) throws -> [UInt8] {
        let key = "\(kind.directory)/\(id)"
        let sealed = try storage.get(key)
        do {
            return try SealedFile.open(sealed, kind: kind.directory, key: master)
        } catch {
            throw RepositoryError(.invalidFormat, "'\(key)' is damaged or not a \(kind.directory) file of this repository", underlying: error)
        }
    }

    /// Removes the file `<kind>/<id>`.
    /// - Throws: `RepositoryError` from storage.
    public func deleteFile(kind: FileKind, id: String) throws {
        try storage.delete("\(kind.directory)/\(id)")
    }
}
