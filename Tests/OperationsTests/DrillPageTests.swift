import Foundation
import Testing
import TestSupport
@testable import Operations

/// The HTML report, rendered by headless Chromium: the timeline's layers are drawn
/// where the times put them.
// No tight time limit: in a full parallel `swift test` on 2 cores, tests wait for a thread.
@Suite("drill report page", .timeLimit(.minutes(10)))
struct DrillPageTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A failed drill over a window with a gap, so every layer is present.
    static func report() -> DrillReport {
        let t0 = 1_795_000_000.0
        return DrillReport(
            id: "drill-test", started: Date(timeIntervalSince1970: t0 + 200), finished: Date(timeIntervalSince1970: t0 + 210),
            outcome: .failed, failures: ["clinic0.patients: <b>altered</b>"], unverified: [], repository: "/r", repositoryRole: "primary",
            target: "mongodb://h", scratchPrefix: "ancre_drill_x_", keptScratch: false, pointChoice: "random",
            point: DrillPoint(ts: "ts:\(Int(t0) + 80):1", time: t0 + 80), snapshot: "abc",
            measurements: DrillMeasurements(restoreSeconds: 1.5, verificationBytesRead: 10, entriesModelled: 3),
            collections: [DrillCollectionCheck(
                namespace: "clinic0.patients", target: "ancre_drill_x_clinic0.patients", status: .failed, method: "dbHash+read-back",
                expectedCount: 3, restoredCount: 3, expectedChecksum: "a", restoredChecksum: "b", touchedDocuments: 1, oplogEntries: 1,
                indexes: ["_id_"], indexesMatch: true, firstDifferingID: "{\"_id\": 7}", problems: ["differs"])],
            timeline: DrillTimeline(
                snapshots: [.init(time: t0, label: "abc")],
                coverage: [.init(from: t0 - 10, to: t0 + 50), .init(from: t0 + 60, to: t0 + 100)],
                gaps: [.init(from: t0 + 50, to: t0 + 60)],
                windows: [.init(from: t0, to: t0 + 100)], drilled: t0 + 80))
    }

    @Test func pageIsSelfContainedAndEscaped() {
        let page = DrillPage(report: Self.report(), history: [DrillSummary(Self.report())]).render()
        #expect(page.contains("<svg id=\"timeline\""))
        #expect(!page.contains("<script") && !page.contains("src=") && !page.contains("<link"), "nothing is fetched")
        #expect(!page.contains("<b>altered</b>") && page.contains("&lt;b&gt;altered&lt;/b&gt;"))
        #expect(page.contains("{&quot;_id&quot;: 7}"))
    }

    @Test func chromiumDrawsTheTimeline() throws {
        guard let chromium = Self.chromium else {
            try Test.cancel("chromium is not installed (apt-get install chromium; Scripts/setup does it)")
        }
        let directory = Fixtures.temporaryDirectory("ancre-drill-page")
        defer { try? FileManager.default.removeItem(at: directory) }
        let html = directory.appendingPathComponent("page.html"), png = directory.appendingPathComponent("page.png")
        try DrillPage(report: Self.report(), history: []).render().write(to: html, atomically: true, encoding: .utf8)
        try run(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1",
                           "--user-data-dir=\(directory.appendingPathComponent("profile").path)",
                           "--screenshot=\(png.path)", "--window-size=1040,340", html.absoluteString])
        let probe = try run("/usr/bin/env", ["python3", ServerProcess.repositoryRoot.appendingPathComponent("Tools/pngprobe.py").path, png.path,
                                             "window=\(DrillPage.Colour.window)", "coverage=\(DrillPage.Colour.coverage)",
                                             "gap=\(DrillPage.Colour.gap)", "snapshot=\(DrillPage.Colour.snapshot)",
                                             "drilled=\(DrillPage.Colour.drilled)"])
        struct Layer: Decodable { var wide: Int; var row: Int; var left: Int; var tall: Int; var column: Int; var top: Int; var count: Int }
        let layers = try JSONDecoder().decode([String: Layer].self, from: probe)
        let window = try #require(layers["window"]), coverage = try #require(layers["coverage"]), gap = try #require(layers["gap"])
        let snapshot = try #require(layers["snapshot"]), drilled = try #require(layers["drilled"])
        // The first oplog run (t0-10 ... t0+50) is the widest blue bar: it fixes the scale.
        #expect(coverage.wide > 400, "the oplog bar is drawn: \(coverage)")
        let x0 = Double(coverage.left), perSecond = Double(coverage.wide) / 60
        func at(_ seconds: Double) -> Double { x0 + (seconds + 10) * perSecond }
        #expect(abs(Double(window.left) - at(0)) <= 3 && window.row < coverage.row, "the window bar starts at the snapshot, above the oplog: \(window)")
        #expect(gap.tall >= 25 && abs(Double(gap.left) - at(50)) <= 3, "the gap is drawn across the oplog row: \(gap)")
        #expect(snapshot.tall >= 15 && abs(Double(snapshot.column) - at(0)) <= 3, "the snapshot diamond is at its time: \(snapshot)")
        #expect(drilled.tall >= 90 && abs(Double(drilled.column) + 2 - at(80)) <= 3, "the drilled point crosses both rows at its time: \(drilled)")
    }

    @discardableResult
    private func run(_ executable: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        return data
    }
}

/// The history: summaries in order, a damaged line named, the report kept regardless.
@Suite("drill history")
struct DrillHistoryTests {
    @Test func keepsReportsAndSummariesInOrder() throws {
        let directory = Fixtures.temporaryDirectory("ancre-drill-history")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = DrillHistory(directory: directory)
        var first = DrillPageTests.report()
        first.id = "drill-1"
        var second = first
        second.id = "drill-2"
        second.outcome = .passed
        second.failures = []
        let files = try store.save(first)
        try store.save(second)
        #expect(try store.summaries().map(\.id) == ["drill-1", "drill-2"])
        #expect(try store.summaries().map(\.outcome) == [.failed, .passed])
        #expect(try store.report("drill-1").failures == first.failures)
        #expect(try String(contentsOf: files.html, encoding: .utf8).contains("drill-1"))
        let page = try String(contentsOf: directory.appendingPathComponent("drill-2.html"), encoding: .utf8)
        #expect(page.contains("drill-1") && page.contains("drill-2"), "the page's history lists earlier drills")

        let history = try FileHandle(forWritingTo: store.historyFile)
        history.seekToEndOfFile()
        history.write(Data("{not json}\n".utf8))
        history.closeFile()
        var third = second
        third.id = "drill-3"
        #expect(throws: DrillError.self) { try store.save(third) }
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("drill-3.json").path))
        #expect { _ = try store.summaries() } throws: { error in
            (error as? DrillError)?.code == .unreadableHistory && "\(error)".contains("line 3")
        }
    }
}
