import BSON
import Foundation
import Mongo
import Testing
import TestSupport
@testable import Recovery

/// Issue 5's replay benchmark (run by `Benchmarks/replay.sh`; skipped unless
/// `ANCRE_BENCH=1`): one load-generator oplog, replayed into fresh simulators (a) one
/// entry per `applyOps` round trip, as mongorestore, PBM and WAL-G do, and (b) by
/// Ancre's batched parallel `OplogApplier`; same oplog, same run; at loopback and with
/// the simulator delaying every reply (`simDelay`) as a network would.
///
/// Environment: `ANCRE_BENCH_SECONDS` (loadgen duration, default 5),
/// `ANCRE_BENCH_DELAYS` (comma-separated milliseconds, default `0,0.2,1`),
/// `ANCRE_BENCH_DELAYED_ENTRIES` (entries replayed with a delay, default 3000: the
/// one-per-round-trip mode takes a round trip per operation).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["ANCRE_BENCH"] == "1"))
struct ReplayBenchmark {
    static let environment = ProcessInfo.processInfo.environment

    @Test func replayRateBatchedVersusOnePerRoundTrip() throws {
        let seconds = Double(Self.environment["ANCRE_BENCH_SECONDS"] ?? "") ?? 5
        let delays = (Self.environment["ANCRE_BENCH_DELAYS"] ?? "0,0.2,1").split(separator: ",").compactMap { Double($0) }
        let delayedEntries = Int(Self.environment["ANCRE_BENCH_DELAYED_ENTRIES"] ?? "") ?? 3000
        let (source, entries, records) = try WorkloadReplayTests.workload(seconds: seconds)
        defer { source.stop() }
        print("replay benchmark: \(entries.count) oplog entries from \(seconds) s of loadgen")
        let modes: [(String, OplogApplier.Options)] = [
            ("one entry per applyOps", OplogApplier.Options(mode: .applyOps, workers: 1, batchEntries: 1)),
            ("Ancre batched, 4 appliers", OplogApplier.Options(mode: .applyOps, workers: 4, batchEntries: 1000)),
        ]
        var summary: [String] = []
        // ANCRE_BENCH_PIN=1: each target simulator on CPU 1 and this process on CPU 0, so the
        // single-threaded server does not compete with the replaying threads for the two cores
        // (a real target has a host of its own). Both modes alike.
        let pinned = Self.environment["ANCRE_BENCH_PIN"] == "1"
        if pinned { try Self.pin(getpid(), cpu: 0) }
        for delay in delays {
            let replayed = delay == 0 ? entries : Array(entries.prefix(delayedEntries))
            var rates: [Double] = []
            var hashes: [[String: [String: String]]] = []
            for (label, options) in modes {
                let target = try startServer(.simulator)
                defer { target.stop() }
                if pinned { try Self.pin(target.pid, cpu: 1) }
                let client = try client(target)
                if delay > 0 { _ = try client.runAdminCommand(Document(["simDelay": .int32(1), "ms": .double(delay)])) }
                let (ownBefore, serverBefore) = (Self.ownCPUSeconds(), target.cpuSeconds ?? .nan)
                let result = try OplogApplier(client: client, options: options).replay(replayed)
                let (ownCPU, serverCPU) = (Self.ownCPUSeconds() - ownBefore, (target.cpuSeconds ?? .nan) - serverBefore)
                _ = try client.runAdminCommand(Document(["simDelay": .int32(1), "ms": .int32(0)]))
                rates.append(result.rate)
                var h: [String: [String: String]] = [:]
                for db in records.last!.hashes.keys { h[db] = try dbHash(client, db) }
                hashes.append(h)
                print("replay, \(delay) ms, \(label): \(result.entries) entries in \(result.elapsed), \(Int(result.rate)) entries/s, "
                    + "\(result.roundTrips) round trips; CPU per entry: Ancre \(Self.micros(ownCPU, result.entries)) µs, "
                    + "server \(Self.micros(serverCPU, result.entries)) µs")
            }
            // Both modes reach the same state; the whole oplog reaches the source's final state.
            #expect(hashes[0] == hashes[1], "\(delay) ms: the two modes disagree")
            if delay == 0 { #expect(hashes[1] == records.last!.hashes, "replay of the whole oplog differs from the source") }
            let ratio = rates[1] / rates[0]
            summary.append("replay speed-up at \(delay) ms\(pinned ? " (server and replay on separate cores)" : ""): \(String(format: "%.1f", ratio))x (\(Int(rates[1])) vs \(Int(rates[0])) entries/s, \(replayed.count) entries)")
        }
        for line in summary { print(line) }
    }

    /// Restricts every thread of process `pid` to one CPU (threads it starts later inherit it).
    static func pin(_ pid: Int32, cpu: Int) throws {
        let taskset = Process()
        taskset.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        taskset.arguments = ["-a", "-p", "-c", "\(cpu)", "\(pid)"]
        taskset.standardOutput = FileHandle.nullDevice
        try taskset.run()
        taskset.waitUntilExit()
        #expect(taskset.terminationStatus == 0, "taskset -c \(cpu) of pid \(pid)")
    }

        /// CPU seconds (user + system) of this process: the applier threads and the reader
    /// (the test runs alone in its process under `--filter ReplayBenchmark`).
    static func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func micros(_ seconds: Double, _ entries: Int) -> String {
        String(format: "%.1f", seconds / Double(max(entries, 1)) * 1e6)
    }
}
