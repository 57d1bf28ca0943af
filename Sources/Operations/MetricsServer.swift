import Foundation
import Logging
import Synchronization

/// A minimal HTTP/1.1 server for Prometheus: `GET /metrics` answers the text format,
/// anything else 404. One connection at a time, closed after each response (scrapes are
/// rare and small), so no framework is needed.
///
/// Threading: accepts on a thread of its own until `stop()`; `render` is called on it.
final class MetricsServer: Sendable {
    let address: String
    private let socket: Int32
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    /// Binds and starts serving.
    /// - Throws: `MetricsServerError` when the address is invalid or taken.
    init(host: String, port: UInt16, logger: Logger, render: @escaping @Sendable () -> String) throws(MetricsServerError) {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            throw MetricsServerError("metrics listen address \(host) is not an IPv4 address (use 127.0.0.1, or 0.0.0.0 to expose it)")
        }
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MetricsServerError("cannot create a socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw MetricsServerError("cannot listen on \(host):\(port) for metrics: \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        address = "\(host):\(UInt16(bigEndian: actual.sin_port))"
        socket = fd
        let thread = Thread { [self] in
            serve(render: render, logger: logger)
            done.signal()
        }
        thread.name = "ancre-metrics"
        thread.start()
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        done.wait()
        close(socket)
    }

    private func serve(render: @Sendable () -> String, logger: Logger) {
        while !stopped.load(ordering: .relaxed) {
            var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 200) > 0 else { continue }
            let client = accept(socket, nil, nil)
            guard client >= 0 else { continue }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            // Read the request head (we ignore any body).
            while request.count < 16_384 {
                let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                request += buffer[..<n]
                if request.count >= 4, Array(request.suffix(4)) == [13, 10, 13, 10] { break }
            }
            let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
            let parts = line.split(separator: " ")
            let response: String
            if parts.count >= 2, parts[0] == "GET", parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?") {
                let body = render()
                response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
            } else {
                let body = "not found: try /metrics\n"
                response = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
            }
            let bytes = Array(response.utf8)
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                sent += n
            }
            close(client)
        }
    }
}

public struct MetricsServerError: Error, CustomStringConvertible, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The Prometheus text exposition of the daemon's state: a pure function of it.
public enum MetricsText {
    public static func render(state: DaemonState, now: Date, jobs: [String], alertsFired: Int) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for s in samples { out += "\(name)\(s.labels) \(format(s.value))\n" }
        }
        let names = Set(jobs).union(state.jobs.keys).sorted()
        func perJob(_ value: (DaemonState.JobRecord) -> Double?) -> [(labels: String, value: Double)] {
            names.compactMap { name in
                let record = state.jobs[name] ?? DaemonState.JobRecord()
                return value(record).map { ("{job=\"\(name)\"}", $0) }
            }
        }
        metric("ancre_up", "gauge", "1 while the daemon runs.", [("", 1)])
        if let last = state.lastDurableOplog {
            metric("ancre_oplog_last_durable_timestamp_seconds", "gauge", "Oplog time of the newest entry durable in the repository.", [("", Double(last.t))])
            metric("ancre_rpo_seconds", "gauge", "Seconds of writes a disaster now would lose: now minus the last durable oplog time.",
                   [("", max(0, now.timeIntervalSince1970 - Double(last.t)))])
        }
        metric("ancre_job_last_success_timestamp_seconds", "gauge", "End of the job's last successful run.", perJob { $0.lastSuccess?.timeIntervalSince1970 })
        metric("ancre_job_last_run_timestamp_seconds", "gauge", "End of the job's last run.", perJob { $0.lastEnd?.timeIntervalSince1970 })
        metric("ancre_job_last_success", "gauge", "1 if the job's last run succeeded, 0 if it failed.",
               perJob { r in r.lastResult.map { $0 == "success" ? 1 : 0 } })
        metric("ancre_job_last_duration_seconds", "gauge", "Duration of the job's last run.", perJob { $0.lastSeconds })
        metric("ancre_job_last_bytes", "gauge", "Bytes the job's last successful run wrote (snapshot: added; replication: copied).", perJob { $0.lastBytes.map(Double.init) })
        metric("ancre_job_running", "gauge", "1 while a run of the job is under way.", perJob { $0.running ? 1 : 0 })
        metric("ancre_job_runs_total", "counter", "Runs of the job, retries included.", perJob { Double($0.runs) })
        metric("ancre_job_failures_total", "counter", "Failed runs of the job.", perJob { Double($0.failures) })
        if let stored = state.repositoryStoredBytes {
            metric("ancre_repository_stored_bytes", "gauge", "Bytes the primary repository stores (measured after each snapshot).", [("", Double(stored))])
        }
        metric("ancre_oplog_gaps_total", "counter", "Gaps in the oplog the tailer recorded.", [("", Double(state.gapsTotal))])
        metric("ancre_errors_total", "counter", "Errors of any kind: failed job runs, tailer failures.", [("", Double(state.errorsTotal))])
        metric("ancre_alerts_fired_total", "counter", "Alerts fired since the daemon started (after rate limiting).", [("", Double(alertsFired))])
        return out
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.3f", value)
    }
}
