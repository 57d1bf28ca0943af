import BSON

/// Holds the operations of transactions whose commit has not been read yet: `partialTxn`
/// chains (large transactions logged as several `applyOps` entries) and prepared
/// transactions (`prepare: true`, then `commitTransaction` or `abortTransaction`).
///
/// Keyed by session (`lsid`) and `txnNumber`. Each buffered transaction remembers the
/// progress records of its entries, so the checkpoint cannot pass its first entry
/// until it is resolved. Not thread-safe: used by the applier's reading thread only.
///
/// Memory: operations are kept as BSON bytes (`Document` owns its bytes; nothing is
/// decoded), appended in place (no copy of the chain per link), so a transaction costs
/// its operations' bytes plus about 50 bytes per operation (the array slot and the
/// allocation header): a 100 MB transaction of 1 KB operations holds about 105 MB
/// until its commit, and the applier releases each operation as it dispatches it.
struct TransactionBuffer {
    struct Key: Hashable {
        var lsid: [UInt8]
        var txnNumber: Int64
    }

    struct Pending {
        /// Inner `applyOps` operations, in order.
        var operations: [Document] = []
        /// Progress records of the entries holding them.
        var records: [Int] = []
        var bytes = 0
        var prepared = false
    }

    private(set) var pending: [Key: Pending] = [:]

    /// The key of an entry that belongs to a transaction, or nil for a plain entry.
    static func key(of entry: Document) -> Key? {
        guard case .document(let lsid)? = entry["lsid"], let txn = entry["txnNumber"]?.int64Value else { return nil }
        // The session id alone: `uid` may be absent in some entries of one transaction.
        let id = lsid["id"].map { Document(pairs: [("id", $0)]) } ?? lsid
        return Key(lsid: id.bytes, txnNumber: txn)
    }

    /// Adds a chain link or a prepared transaction's operations.
    mutating func add(_ key: Key, operations: [Document], record: Int, prepared: Bool) {
        // Modified in place: copying `Pending` out and back would copy the whole chain per link.
        pending[key, default: Pending()].operations.append(contentsOf: operations)
        pending[key, default: Pending()].records.append(record)
        pending[key, default: Pending()].bytes += operations.reduce(0) { $0 + $1.byteCount }
        if prepared { pending[key, default: Pending()].prepared = true }
    }

    /// Removes and returns a transaction (on commit or abort).
    mutating func take(_ key: Key) -> Pending? {
        pending.removeValue(forKey: key)
    }

    var count: Int { pending.count }
    var bytes: Int { pending.values.reduce(0) { $0 + $1.bytes } }
}
