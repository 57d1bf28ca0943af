import ArgumentParser
import Capture
import Dispatch
import Foundation
import Logging
import Mongo
import Repository

struct TailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Copy the oplog of a replica set into the repository continuously (point-in-time recovery).",
        discussion: """
            Reads local.oplog.rs with a tailable cursor (read concern majority) from the last \
            durable entry and seals a segment every flush interval: an entry is durable about a \
            second after its write. Continuity is proven on every resume; a break (oplog rolled \
            over, rollback) is recorded as a gap and reported on stderr: take a new snapshot. \
            Runs until SIGTERM or SIGINT, then seals what it holds. Set ANCRE_LOG_LEVEL=warning \
            to hide the progress lines.

            """ + AncreExit.help)

    @OptionGroup var repository: RepositoryArguments

    @OptionGroup var server: ServerArguments

    @Option(help: ArgumentHelp("Seal a segment this often: 1s, 500ms, 2s.", valueName: "duration"))
    var flushInterval: String = "1s"

    @Option(help: ArgumentHelp("With no history in the repository, start at this entry (ts:S:I) instead of the newest.", valueName: "ts"))
    var from: String?

    @Option(help: ArgumentHelp("Compact small segments this often (5m; off to disable).", valueName: "duration"))
    var compactEvery: String = "5m"

    @Option(help: ArgumentHelp("Compaction window: one oplog object per window (10m).", valueName: "duration"))
    var compactWindow: String = "10m"

    func validate() throws {
        guard TailCommand.duration(flushInterval) != nil else { throw ValidationError("--flush-interval: not a duration like 1s or 500ms") }
        guard compactEvery == "off" || TailCommand.duration(compactEvery) != nil else { throw ValidationError("--compact-every: not a duration like 5m, or off") }
        guard let window = TailCommand.duration(compactWindow), window >= .seconds(1) else { throw ValidationError("--compact-window: not a duration of at least 1s") }
        if let from, TailCommand.oplogTime(from) == nil { throw ValidationError("--from: expected ts:SECONDS:INCREMENT") }
    }

    func run() throws {
        try reportingErrors {
            let uri = try server.connectionString()
            var logger = CLILogging.logger
            if ProcessInfo.processInfo.environment["ANCRE_LOG_LEVEL"] == nil { logger.logLevel = .info }
            let repo = try repository.open()
            var options = OplogTailer.Options()
            options.flushInterval = Self.duration(flushInterval)!
            options.from = from.flatMap(Self.oplogTime)
            options.compactEvery = compactEvery == "off" ? nil : Self.duration(compactEvery)
            options.compactWindowSeconds = UInt32(Self.duration(compactWindow)!.components.seconds)
            let client: MongoClient
            do {
                client = try MongoClient(uri: uri, logger: logger)
            } catch let error as MongoError {
                throw CLIError(AncreExit.usage, error.message)
            }
            logger.info("tailing", metadata: ["mongo.uri": "\(MongoURI.redacted(uri))", "repository": "\(repository.path)"])
            let tailer = OplogTailer(client: client, repository: repo, options: options, logger: logger, onGap: { gap in
                FileHandle.standardError.write(Data("ancre: GAP in the oplog after ts:\(gap.after.map(\.description) ?? "-") (\(gap.reason)): \(gap.message)\n".utf8))
            })
            // Stop on SIGTERM/SIGINT: the tailer seals its open segment and releases the lock.
            signal(SIGTERM, SIG_IGN)
            signal(SIGINT, SIG_IGN)
            let sources = [SIGTERM, SIGINT].map { number in
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { tailer.stop() }
                source.resume()
                return source
            }
            defer { sources.forEach { $0.cancel() } }
            do {
                try tailer.run()
            } catch let error as TailError {
                throw CLIError(AncreExit.failure, error.description)
            } catch let error as MongoError {
                throw CLIError(error.code == .noOplog ? AncreExit.noOplog : AncreExit.serverUnreachable, error.message)
            }
            logger.info("stopped; the last segment is sealed")
        }
    }

    /// Parses `500ms`, `1s`, `5m`, `2h`.
    static func duration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value > 0 else { return nil }
            return .milliseconds(Int64(value * scale * 1000))
        }
        return nil
    }

    /// Parses `ts:S:I` (or `S:I`).
    static func oplogTime(_ text: String) -> OplogTime? {
        let parts = text.split(separator: ":")
        let numbers = parts.first == "ts" ? parts.dropFirst() : parts[...]
        guard numbers.count == 2, let t = UInt32(numbers.first!), let i = UInt32(numbers.last!) else { return nil }
        return OplogTime(t: t, i: i)
    }
}
