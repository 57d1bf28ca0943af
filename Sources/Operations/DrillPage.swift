import Foundation

/// A drill report as one self-contained HTML page for people: the outcome, an inline
/// SVG timeline of the restorable window (snapshots, oplog coverage, gaps, the drilled
/// point), the measurements, each collection's check and the history of past drills.
/// Inline CSS, no script, nothing fetched from the network.
public struct DrillPage: Sendable {
    public let report: DrillReport
    public let history: [DrillSummary]

    public init(report: DrillReport, history: [DrillSummary]) {
        self.report = report
        self.history = history
    }

    /// Colours of the timeline, fixed so a screenshot test can find each layer.
    public enum Colour {
        public static let window = "#2e7d32"
        public static let coverage = "#1565c0"
        public static let gap = "#c62828"
        public static let snapshot = "#6a1b9a"
        public static let drilled = "#ff6f00"
    }

    public func render() -> String {
        let r = report
        let passed = r.passed
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>Ancre drill \(escape(r.id)): \(passed ? "passed" : "FAILED")</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222;background:#fff}
            h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:20px 0 6px}
            .banner{padding:8px 12px;border-radius:4px;color:#fff;font-weight:600;margin-bottom:12px}
            .pass{background:#1b5e20} .fail{background:#b71c1c}
            table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
            th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
            .passed{color:#2e7d32;font-weight:600} .failed{color:#c62828;font-weight:600} .unverified{color:#a15c00;font-weight:600}
            code{font-size:12px} .legend span{display:inline-block;margin-right:14px} .sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px}
            </style></head><body>
            <h1>Restore drill \(escape(r.id))</h1>
            <div class="banner \(passed ? "pass" : "fail")">\(passed ? "PASSED: the restored data matches the repository" : "FAILED: " + escape(r.failures.first ?? r.unverified.first ?? "see below"))</div>

            """
        html += "<h2>Restorable window</h2>\n" + timelineSVG() + legend()
        html += "<h2>Drill</h2>\n<table>\n"
        let m = r.measurements
        let rows: [(String, String)] = [
            ("Repository", "\(r.repository) (\(r.repositoryRole))"),
            ("Target", r.target + (r.scratchPrefix.map { ", scratch prefix \($0)" } ?? ", separate server") + (r.keptScratch ? ", kept" : ", dropped after the drill")),
            ("Point", "\(r.pointChoice) → \(r.point.map { "\($0.ts) (\(iso($0.time)))" } ?? "none")"),
            ("Snapshot", r.snapshot.map { String($0.prefix(12)) } ?? "-"),
            ("Restore time (RTO achieved)", seconds(m.restoreSeconds) + (m.loadSeconds.map { " (load \(seconds($0)), replay \(seconds(m.replaySeconds)))" } ?? "")),
            ("Data lag at drill time (RPO)", seconds(m.rpoSeconds)),
            ("Age of the drilled point", seconds(m.pointAgeSeconds)),
            ("Bytes read", "\(m.bytesRead.map(bytes) ?? "not metered") from the repository (plan estimate \(m.plannedBytes.map(bytes) ?? "-"); the verification's own reads \(bytes(m.verificationBytesRead)) decrypted)"),
            ("Oplog entries", "replayed \(m.entriesReplayed.map(String.init) ?? "-") (\(m.replayMode ?? "-")); modelled by the check \(m.entriesModelled)"),
            ("Documents loaded", m.documentsLoaded.map(String.init) ?? "-"),
            ("Verification time", seconds(m.verifySeconds)),
            ("Started", r.started.formatted(.iso8601)),
        ]
        for (k, v) in rows { html += "<tr><th>\(escape(k))</th><td>\(escape(v))</td></tr>\n" }
        html += "</table>\n"
        if !r.failures.isEmpty || !r.unverified.isEmpty {
            html += "<h2>Problems</h2>\n<ul>\n"
            for f in r.failures { html += "<li class=\"failed\">\(escape(f))</li>\n" }
            for u in r.unverified { html += "<li class=\"unverified\">not verified: \(escape(u))</li>\n" }
            html += "</ul>\n"
        }
        html += "<h2>Scope</h2>\n<ul>\n" + r.checked.map { "<li>checked: \(escape($0))</li>\n" }.joined()
            + r.notChecked.map { "<li>not checked: \(escape($0))</li>\n" }.joined() + "</ul>\n"
        html += "<h2>Collections</h2>\n<table><tr><th>Collection</th><th>Restored as</th><th>Check</th><th>Method</th><th>Documents (expected / restored)</th><th>MD5 (expected / restored)</th><th>Touched by oplog</th><th>Indexes</th><th>First differing _id</th></tr>\n"
        for c in r.collections {
            html += "<tr><td><code>\(escape(c.namespace))</code></td><td><code>\(escape(c.target))</code></td>"
                + "<td class=\"\(c.status.rawValue)\">\(c.status.rawValue)</td><td>\(escape(c.method))</td>"
                + "<td class=\"num\">\(c.expectedCount) / \(c.restoredCount.map(String.init) ?? "?")</td>"
                + "<td><code>\(escape(c.expectedChecksum))</code><br><code>\(escape(c.restoredChecksum ?? "?"))</code></td>"
                + "<td class=\"num\">\(c.touchedDocuments) docs, \(c.oplogEntries) entries</td>"
                + "<td>\(c.indexes.count) \(c.indexesMatch.map { $0 ? "match" : "differ" } ?? "")</td>"
                + "<td><code>\(escape(c.firstDifferingID ?? ""))</code></td></tr>\n"
        }
        html += "</table>\n<h2>History</h2>\n<table><tr><th>Drill</th><th>Started</th><th>Outcome</th><th>Repository</th><th>Point</th><th>RTO</th><th>RPO</th><th>Collections</th><th>First problem</th></tr>\n"
        for h in history.reversed() {
            html += "<tr><td>\(escape(h.id))</td><td>\(h.started.formatted(.iso8601))</td><td class=\"\(h.outcome.rawValue)\">\(h.outcome.rawValue)</td>"
                + "<td>\(escape(h.repositoryRole))</td><td>\(escape(h.point ?? "-"))</td><td class=\"num\">\(seconds(h.restoreSeconds))</td>"
                + "<td class=\"num\">\(seconds(h.rpoSeconds))</td><td class=\"num\">\(h.collections - h.failedCollections)/\(h.collections)</td>"
                + "<td>\(escape(h.failure ?? ""))</td></tr>\n"
        }
        html += "</table>\n</body></html>\n"
        return html
    }

    /// The timeline: windows (green) above oplog coverage (blue) with gaps (red),
    /// snapshot consistency points (purple diamonds) and the drilled point (orange line).
    func timelineSVG() -> String {
        let t = report.timeline
        let width = 1000.0, height = 150.0, left = 20.0, right = 980.0
        var times = t.coverage.flatMap { [$0.from, $0.to] } + t.gaps.flatMap { [$0.from, $0.to] }
            + t.windows.flatMap { [$0.from, $0.to] } + t.snapshots.map(\.time)
        if let d = t.drilled { times.append(d) }
        guard let low = times.min(), let high = times.max() else {
            return "<p>The repository has no restorable window yet.</p>\n"
        }
        let span = max(high - low, 1)
        func x(_ time: Double) -> Double { left + (time - low) / span * (right - left) }
        func rect(_ s: DrillTimeline.Span, y: Double, h: Double, colour: String, title: String) -> String {
            let x0 = x(s.from), w = max(x(s.to) - x0, 3)
            return "<rect x=\"\(f(x0))\" y=\"\(f(y))\" width=\"\(f(w))\" height=\"\(f(h))\" fill=\"\(colour)\"><title>\(escape(title))</title></rect>\n"
        }
        var svg = "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">\n"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"#fafafa\" stroke=\"#ddd\"/>\n"
        svg += "<text x=\"\(f(left))\" y=\"16\" font-size=\"11\" fill=\"#555\">windows</text>\n"
        for w in t.windows { svg += rect(w, y: 20, h: 22, colour: Colour.window, title: "restorable \(iso(w.from)) to \(iso(w.to))") }
        svg += "<text x=\"\(f(left))\" y=\"60\" font-size=\"11\" fill=\"#555\">oplog</text>\n"
        for c in t.coverage { svg += rect(c, y: 64, h: 22, colour: Colour.coverage, title: "oplog \(iso(c.from)) to \(iso(c.to))") }
        for g in t.gaps { svg += rect(g, y: 60, h: 30, colour: Colour.gap, title: "gap \(iso(g.from)) to \(iso(g.to))") }
        for s in t.snapshots {
            let cx = x(s.time)
            svg += "<polygon points=\"\(f(cx)),96 \(f(cx + 7)),105 \(f(cx)),114 \(f(cx - 7)),105\" fill=\"\(Colour.snapshot)\"><title>snapshot \(escape(s.label)) consistent at \(iso(s.time))</title></polygon>\n"
        }
        if let d = t.drilled {
            let dx = x(d)
            svg += "<rect x=\"\(f(dx - 2))\" y=\"14\" width=\"4\" height=\"106\" fill=\"\(Colour.drilled)\"><title>drilled point \(iso(d))</title></rect>\n"
        }
        svg += "<text x=\"\(f(left))\" y=\"138\" font-size=\"11\" fill=\"#333\">\(escape(iso(low)))</text>\n"
        svg += "<text x=\"\(f(right))\" y=\"138\" font-size=\"11\" fill=\"#333\" text-anchor=\"end\">\(escape(iso(high)))</text>\n"
        svg += "</svg>\n"
        return svg
    }

    func legend() -> String {
        let items = [(Colour.window, "restorable window"), (Colour.coverage, "oplog coverage"), (Colour.gap, "gap"),
                     (Colour.snapshot, "snapshot"), (Colour.drilled, "drilled point")]
        return "<p class=\"legend\">" + items.map { "<span><i class=\"sw\" style=\"background:\($0.0)\"></i>\($0.1)</span>" }.joined() + "</p>\n"
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
    private func iso(_ t: Double) -> String { Date(timeIntervalSince1970: t).formatted(.iso8601) }
    private func seconds(_ s: Double?) -> String { s.map { String(format: "%.2f s", $0) } ?? "-" }
    private func bytes(_ n: UInt64) -> String {
        n >= 1 << 20 ? String(format: "%.1f MiB", Double(n) / 1048576) : n >= 1 << 10 ? String(format: "%.1f KiB", Double(n) / 1024) : "\(n) B"
    }
    private func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
