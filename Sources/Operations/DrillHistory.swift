import Foundation

/// Where drill reports are kept: `drill-<time>.json` and `drill-<time>.html` per drill,
/// and `history.jsonl`, one `DrillSummary` per line, oldest first (the compact history
/// the table and the daemon's alerts read without opening every report).
///
/// Files are written whole to a temporary name and renamed. Not for concurrent writers
/// (one daemon or one CLI run at a time).
public struct DrillHistory: Sendable {
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    public var historyFile: URL { directory.appendingPathComponent("history.jsonl") }

    /// Writes the report's JSON and HTML pages and appends it to the history.
    /// - Returns: the two files written.
    /// - Throws: file-system errors; `DrillError` `.unreadableHistory` for a damaged
    ///   history file (the report's JSON is written all the same).
    @discardableResult
    public func save(_ report: DrillReport) throws -> (json: URL, html: URL) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let json = directory.appendingPathComponent("\(report.id).json")
        let html = directory.appendingPathComponent("\(report.id).html")
        // The report first: a damaged history must not lose it.
        try write(try Self.encoder.encode(report), to: json)
        var history = try summaries()
        history.removeAll { $0.id == report.id }
        history.append(DrillSummary(report))
        try write(Data(DrillPage(report: report, history: history).render().utf8), to: html)
        var lines = Data()
        let compact = JSONEncoder()
        compact.dateEncodingStrategy = .iso8601
        compact.outputFormatting = [.sortedKeys]
        for summary in history {
            lines.append(try compact.encode(summary))
            lines.append(0x0A)
        }
        try write(lines, to: historyFile)
        return (json, html)
    }

    /// Past drills, oldest first; empty when there is no history yet.
    /// - Throws: `DrillError` `.unreadableHistory` naming the line that cannot be read.
    public func summaries() throws -> [DrillSummary] {
        guard let data = FileManager.default.contents(atPath: historyFile.path) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var out: [DrillSummary] = []
        for (number, line) in data.split(separator: 0x0A).enumerated() where !line.isEmpty {
            do {
                out.append(try decoder.decode(DrillSummary.self, from: Data(line)))
            } catch {
                throw DrillError(.unreadableHistory, "\(historyFile.path) line \(number + 1) is not a drill summary (\(error)); fix or remove that line, the full reports are the drill-*.json files next to it")
            }
        }
        return out
    }

    /// A saved report.
    public func report(_ id: String) throws -> DrillReport {
        let data = try Data(contentsOf: directory.appendingPathComponent("\(id).json"))
        return try Self.decoder.decode(DrillReport.self, from: data)
    }

    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }

    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }

    private func write(_ data: Data, to url: URL) throws {
        let temporary = url.appendingPathExtension("tmp")
        try data.write(to: temporary)
        guard rename(temporary.path, url.path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
    }
}
