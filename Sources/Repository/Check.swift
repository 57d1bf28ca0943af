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
    /// Blobs decrypted and re-hashed (only with `readData`).
    public var blobsChecked = 0

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
    public func check(readData: Bool) throws -> CheckReport {
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
            if readData {
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
