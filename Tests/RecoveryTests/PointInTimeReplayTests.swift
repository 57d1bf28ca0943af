import BSON
import Foundation
import Mongo
import Testing
import TestSupport
@testable import Recovery

/// Issue 5's correctness test: for at least 200 target times over a load-generator
/// workload (inserts, scattered updates, deletes, transactions with partialTxn chains,
/// DDL), a restore to each target matches the oracle hashes the source had then.
@Suite(.serialized)
struct PointInTimeReplayTests {
    /// Every oracle time, replayed incrementally into one fresh simulator: entries up to
    /// T1, wait until applied, compare dbHash with the oracle at T1, continue to T2...
    /// Equivalent to a restore to each Ti from scratch, because replay is sequential and
    /// inclusive (`ts <= T`) and transactions uncommitted at Ti stay buffered, as they
    /// were invisible on the source. Then a few independent replays from scratch at
    /// random targets, the way a restore runs (`stopAfter`).
    @Test func restoresMatchOracleAtEveryRecordedTime() throws {
        // 2,000 operations, the oracle recorded every 8 (a count, not a time, so a busy
        // machine records as many): 251 target times.
        let (source, entries, records) = try WorkloadReplayTests.workload(
            seconds: 120, seed: 11, loadgenArguments: ["--max-ops", "2000", "--oracle-ops", "8"])
        defer { source.stop() }
        #expect(records.count >= 200, "loadgen recorded \(records.count) oracle times")
        #expect(entries.contains { $0["o"]?.documentValue?["partialTxn"] == .bool(true) }, "the workload has no partialTxn chain")
        #expect(entries.contains { e in
            e["op"]?.stringValue == "c" && ["create", "drop", "createIndexes", "commitIndexBuild", "renameCollection", "collMod", "dropIndexes"]
                .contains(e["o"]?.documentValue?.keys.first ?? "")
        }, "the workload has no DDL")
        let targets = records.sorted { $0.ts < $1.ts }

        let target = try startServer(.simulator)
        defer { target.stop() }
        let client = try client(target)
        let applier = try OplogApplier(client: client, options: .init(mode: .applyOps, workers: 4))
        var next = 0
        var checked = 0
        func check(_ record: WorkloadReplayTests.OracleRecord) throws {
            try applier.flush()
            for (db, hashes) in record.hashes {
                let actual = try dbHash(client, db)
                #expect(actual == hashes, "incremental replay to \(record.ts), database \(db): \(actual.filter { hashes[$0.key] != $0.value }.keys.sorted())")
            }
            checked += 1
        }
        for entry in entries {
            let ts = entry["ts"]!.timestampValue!
            while next < targets.count, targets[next].ts < ts {
                try check(targets[next])
                next += 1
            }
            try applier.apply(entry)
        }
        while next < targets.count {
            try check(targets[next])
            next += 1
        }
        _ = try applier.finish()
        #expect(checked == records.count)

        // Independent restores from scratch to random oracle times.
        var rng = SeededGenerator(seed: 5)
        for _ in 0..<5 {
            let record = targets[Int.random(in: 0..<targets.count, using: &rng)]
            let fresh = try startServer(.simulator)
            defer { fresh.stop() }
            let freshClient = try self.client(fresh)
            let result = try OplogApplier(client: freshClient, options: .init(mode: .applyOps, workers: 4, stopAfter: record.ts)).replay(entries)
            #expect(result.lastApplied == entries.last { $0["ts"]!.timestampValue! <= record.ts }?["ts"]?.timestampValue)
            for (db, hashes) in record.hashes {
                #expect(try dbHash(freshClient, db) == hashes, "replay from scratch to \(record.ts), database \(db)")
            }
        }
        print("point-in-time replay: \(entries.count) entries, \(checked) oracle times checked incrementally, 5 from scratch")
    }

    private func client(_ server: ServerProcess) throws -> MongoClient { try RecoveryTests.client(server) }
}

/// SplitMix64: reproducible choices in tests.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
