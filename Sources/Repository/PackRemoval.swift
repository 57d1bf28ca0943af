import Foundation

extension Repository {
    /// The name of the uploaded pack holding `blob`, or nil when no index lists it.
    public func packName(of blob: BlobID) -> String? {
        state.withLock { $0.index.lookup(blob)?.pack.name }
    }

    /// The indexed blobs of each of the named packs, in one pass over the index.
    public func blobs(inPacks names: Set<String>) -> [String: [BlobID]] {
        state.withLock { state in
            var out: [String: [BlobID]] = [:]
            state.index.forEach { pack, entry in
                if names.contains(pack.name) { out[pack.name, default: []].append(entry.id) }
            }
            return out
        }
    }

    /// Removes whole packs whose blobs nothing references any more (for example the small
    /// per-second oplog segments a compaction merged): index files first, then the packs.
    ///
    /// Index files listing only these packs are deleted; an index file listing others too
    /// is rewritten without them (the new file is written before the old one is deleted).
    /// A crash part-way leaves packs no index lists, which `check` reports and prune
    /// removes. The caller guarantees no snapshot or timeline file names their blobs and
    /// holds a lock; do not call it concurrently with `flush`.
    /// - Throws: `RepositoryError` `.invalidArgument` when a blob of another pack is a
    ///   delta against a blob in these packs (nothing is removed), or storage errors.
    public func removePacks(_ names: Set<String>) throws {
        guard !names.isEmpty else { return }
        let bases: [BlobID] = state.withLock { state in
            var dependents: [BlobID] = []
            state.index.forEach { pack, entry in
                if let base = entry.base, !names.contains(pack.name), let holder = state.index.lookup(base)?.pack.name,
                   names.contains(holder) {
                    dependents.append(base)
                }
            }
            return dependents
        }
        if let base = bases.first {
            throw RepositoryError(.invalidArgument, "cannot remove the packs: blob \(base.short) in them is the delta base of \(bases.count) blob(s) in other packs")
        }
        var rawRemoved: [BlobType: Int] = [:]
        for file in try storage.list(prefix: "index/") {
            let (packs, entries) = try Self.readIndexFile(storage: storage, key: file.key, master: master)
            let removed = Set(packs.indices.filter { names.contains(packs[$0].name) })
            guard !removed.isEmpty else { continue }
            for e in entries where removed.contains(Int(e.pack)) { rawRemoved[e.entry.type, default: 0] += Int(e.entry.rawLength) }
            if removed.count < packs.count {
                var numbers: [Int: UInt32] = [:]
                var remaining: [PackInfo] = []
                for (n, pack) in packs.enumerated() where !removed.contains(n) {
                    numbers[n] = UInt32(remaining.count)
                    remaining.append(pack)
                }
                let kept = entries.compactMap { e in numbers[Int(e.pack)].map { (pack: $0, entry: e.entry) } }
                let sealed = SealedFile.seal(IndexFile.encode(packs: remaining, entries: kept), kind: IndexFile.kind, key: master)
                try storage.put("index/\(encodeHex(Crypto.sha256(sealed)))", sealed)
            }
            try storage.delete(file.key)
        }
        state.withLock { $0.index.removePacks(names, rawRemoved: rawRemoved) }
        for name in names { try storage.delete(PackFormat.storageKey(name)) }
        logger.debug("removed packs", metadata: ["pack.count": "\(names.count)"])
    }
}
