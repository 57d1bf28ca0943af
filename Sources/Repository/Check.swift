import Foundation

/// What `Repository.check` found.
public struct CheckReport: Sendable {
    /// One problem, naming the pack and blob involved when there are.
    public struct Problem: Sendable, CustomStringConvertible {
        public var code: RepositoryError.Code
        public var pack: String?
        public var blob: BlobID?
        /// The index file involved, for index problems.
        public var indexFile: String?
        public var message: String
        public var description: String { message }
    }

    public var problems: [Problem] = []
    /// Packs in storage that no index file lists: left by an interrupted write, removed by prune.
    public var unreferencedPacks: [String] = []
    public var indexFilesChecked = 0
    public var packsChecked = 0
    /// Blobs decrypted and re-hashed (only with `readData` or a subset).
    public var blobsChecked = 0
    /// Packs read whole and re-hashed.
    public var packsRead = 0

    /// True when no problem was found (unreferenced packs are not problems).
    public var isClean: Bool { problems.isEmpty }
}

extension Repository {
    /// Checks the repository's structure and, with `readData`, every blob's content.
    ///
    /// Structure: every index file decrypts; every pack an index names exists, has a
    /// readable header agreeing with the index, and holds each entry within bounds.
    /// With `readData`, each pack is read whole, its SHA-256 compared with its name, and
    /// every blob decrypted, decompressed and re-hashed. Reads the index files from storage,
    /// not from memory: run it after `flush`.
    /// - Throws: `RepositoryError` only when storage cannot be listed; damage is reported.
    /// - Parameter subset: with `readData` off, read the data of the packs in this subset only.
    public func check(readData: Bool, subset: PackSubset? = nil) throws -> CheckReport {
        var report = CheckReport()
        // Pack name -> the entries index files list for it (and its key id).
        var referenced: [String: (keyID: [UInt8], entries: [PackEntry])] = [:]
        for file in try storage.list(prefix: "index/") {
            report.indexFilesChecked += 1
            do {
                let (packs, entries) = try Self.readIndexFile(storage: storage, key: file.key, master: master)
                for pack in packs where referenced[pack.name] == nil { referenced[pack.name] = (pack.keyID, []) }
                for (number, entry) in entries { referenced[packs[Int(number)].name]!.entries.append(entry) }
            } catch let error as RepositoryError {
                report.problems.append(.init(code: error.code, indexFile: file.key, message: error.description))
            }
        }

        var stored: [String: Int] = [:]
        for entry in try storage.list(prefix: "data/") {
            stored[String(entry.key.split(separator: "/").last!)] = entry.size
        }
        report.unreferencedPacks = stored.keys.filter { referenced[$0] == nil }.sorted()

        for (name, listed) in referenced.sorted(by: { $0.key < $1.key }) {
            report.packsChecked += 1
            guard let size = stored[name] else {
                report.problems.append(.init(
                    code: .packMissing, pack: name, blob: listed.entries.first?.id,
                    message: "pack \(name) is missing: \(listed.entries.count) blobs listed in the index are lost"))
                continue
            }
            for e in listed.entries where Int(e.offset) + Int(e.length) + PackFormat.trailerLength > size {
                report.problems.append(.init(
                    code: .packTruncated, pack: name, blob: e.id,
                    message: "pack \(name) is truncated (\(size) bytes): blob \(e.id) at \(e.offset)+\(e.length) lies past its end"))
            }
            let header: [PackEntry]
            do {
                header = try PackReader.readHeader(storage: storage, name: name, master: master).entries
            } catch let error as RepositoryError {
                report.problems.append(.init(code: error.code, pack: name, message: error.description))
                continue
            }
            let byID = Dictionary(header.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for e in listed.entries where byID[e.id] != e {
                report.problems.append(.init(
                    code: .indexCorrupt, pack: name, blob: e.id,
                    message: "blob \(e.id): the index and the header of pack \(name) disagree about it"))
            }
            if readData || subset?.contains(name) == true {
                report.packsRead += 1
                checkData(pack: name, keyID: listed.keyID, header: header, report: &report)
            }
        }
        return report
    }

    private func checkData(pack name: String, keyID: [UInt8], header: [PackEntry], report: inout CheckReport) {
        let bytes: [UInt8]
        do {
            bytes = try storage.get(PackFormat.storageKey(name))
        } catch {
            report.problems.append(.init(code: .ioFailure, pack: name, message: "cannot read pack \(name): \(error)"))
            return
        }
        if encodeHex(Crypto.sha256(bytes)) != name {
            report.problems.append(.init(code: .packCorrupt, pack: name, message: "pack \(name): its bytes do not hash to its name; the pack is damaged"))
        }
        let aead = AESGCM(key: PackFormat.packKey(master, keyID: keyID))
        for e in header {
            report.blobsChecked += 1
            do {
                let sealed = Array(bytes[Int(e.offset)..<Int(e.offset + e.length)])
                let payload = try PackReader.openBlob(sealed, entry: e, aead: aead, pack: name)
                // A delta's base may live in another pack: load it through the index.
                let base = try e.base.map { try loadBlob($0) }
                let plain = try decode(payload, entry: e, pack: name, base: base)
                if blobID(for: plain) != e.id {
                    throw RepositoryError(.blobCorrupt, "blob \(e.id) in pack \(name): content does not hash to its id")
                }
            } catch let error as RepositoryError {
                report.problems.append(.init(code: error.code, pack: name, blob: e.id, message: error.description))
            } catch {
                report.problems.append(.init(code: .packCorrupt, pack: name, blob: e.id, message: "blob \(e.id) in pack \(name): \(error)"))
            }
        }
    }
}

/// A deterministic slice of the packs for rotating full-read checks: pack `name` is in
/// bucket `first 16 hex digits of its name mod count`, and the subset is one bucket.
/// Pack names are SHA-256 hashes, so buckets are even; reading bucket 0, 1, ...
/// `count - 1` in turn reads every pack exactly once.
public struct PackSubset: Sendable, Equatable, CustomStringConvertible {
    public let bucket: Int
    public let count: Int

    /// Bucket `bucket` (0-based) of `count`.
    /// - Throws: `RepositoryError` `.invalidArgument` unless `0 <= bucket < count`.
    public init(bucket: Int, of count: Int) throws {
        guard count >= 1, (0..<count).contains(bucket) else {
            throw RepositoryError(.invalidArgument, "a pack subset is bucket K of T with 0 <= K < T; got \(bucket)/\(count)")
        }
        self.bucket = bucket
        self.count = count
    }

    /// `percent`% of the packs, rotating by day: `ceil(100 / percent)` buckets, and the
    /// bucket of `date` is its day number since 1970 (UTC) modulo that. Run daily, every
    /// pack is read within `ceil(100 / percent)` days; runs on one day read the same packs.
    /// - Throws: `RepositoryError` `.invalidArgument` unless `0 < percent <= 100`.
    public init(percent: Double, date: Date) throws {
        guard percent > 0, percent <= 100 else {
            throw RepositoryError(.invalidArgument, "the subset percentage must be above 0 and at most 100; got \(percent)")
        }
        let count = Int((100 / percent).rounded(.up))
        let day = Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
        try self.init(bucket: ((day % count) + count) % count, of: count)
    }

    public func contains(_ pack: String) -> Bool {
        guard let prefix = UInt64(pack.prefix(16), radix: 16) else { return false }
        return Int(prefix % UInt64(count)) == bucket
    }

    public var description: String { "\(bucket)/\(count)" }
}
