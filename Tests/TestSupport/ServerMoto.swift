import Foundation
import Repository
import Synchronization

/// moto's S3 in server mode (`python3 -m moto.server`) on a free loopback port, for S3 backend tests.
///
/// `stop()` (or deinit) terminates it. Tests skip when moto is missing:
/// `@Test(.enabled(if: ServerMoto.isAvailable, ...))`.
///
/// With `authenticated: true`, moto checks signatures against its IAM: the helper creates
/// a user allowed `s3:*` and `credentials` are that user's keys; anything else is refused.
public final class ServerMoto: @unchecked Sendable {
    // @unchecked: `process` is only touched under `lock`; the rest is immutable.
    public let port: Int
    public let credentials: S3Credentials
    private let process: Process
    private let directory: URL
    private let lock = NSLock()
    private var stopped = false

    /// One unauthenticated moto shared by a test process (tests use their own buckets),
    /// terminated when the process exits.
    public static let shared: Result<ServerMoto, ServerProcess.Failure> = {
        do {
            let moto = try ServerMoto()
            sharedForExit.withLock { $0 = moto }
            atexit { ServerMoto.sharedForExit.withLock { $0?.stop() } }
            return .success(moto)
        } catch let failure as ServerProcess.Failure {
            return .failure(failure)
        } catch {
            return .failure(ServerProcess.Failure(message: "\(error)"))
        }
    }()

    private static let sharedForExit = Mutex<ServerMoto?>(nil)

    /// moto accepts any credentials unless authenticated; these are what tests use.
    public static let anyCredentials = S3Credentials(accessKeyID: "ancre-test", secretAccessKey: "ancre-test-secret")

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Starts moto and waits until it serves requests.
    /// - Throws: `ServerProcess.Failure` when moto is missing or does not start (with its log).
    public init(authenticated: Bool = false, timeout: Duration = .seconds(30)) throws {
        if let reason = Self.unavailableReason { throw ServerProcess.Failure(message: reason) }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ancre-moto-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        // Three unauthenticated IAM calls create the test user; every later request is checked.
        if authenticated { environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "3" }
        let (process, port) = try Self.launch(
            ["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"], environment: environment, directory: directory,
            marker: "Running on http://127.0.0.1:", timeout: timeout)
        self.process = process
        self.port = port
        if authenticated {
            do {
                credentials = try Self.createUser(endpoint: "http://127.0.0.1:\(port)")
            } catch {
                process.terminate()
                throw error
            }
        } else {
            credentials = Self.anyCredentials
        }
    }

    deinit { stop() }

    /// Terminates moto; idempotent.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        ServerProcess.terminate(process)
        try? FileManager.default.removeItem(at: directory)
    }

    /// A location in `bucket` (path-style, as moto on an IP address needs).
    public func location(bucket: String, prefix: String = "", port: Int? = nil) -> S3Location {
        S3Location(scheme: "http", host: "127.0.0.1", port: port ?? self.port, bucket: bucket, prefix: prefix)
    }

    /// A backend on a new bucket named uniquely, created first.
    public func makeBackend(
        prefix: String = "", options: S3Options = S3Options(retryDelay: .milliseconds(20)), objectLock: Bool = false
    ) throws -> S3Backend {
        let bucket = "ancre-" + UUID().uuidString.lowercased().prefix(18)
        let backend = try S3Backend(location: location(bucket: String(bucket), prefix: prefix), credentials: credentials, options: options)
        try backend.createBucket(objectLock: objectLock)
        return backend
    }

    /// Why moto cannot run here, or nil when it can.
    public static let unavailableReason: String? = ServerProcess.pythonImportProblem(
        "moto.server, flask, flask_cors, boto3", package: "'moto[server]==5.2.1'", skipping: "S3 tests against moto")

    public static var isAvailable: Bool { unavailableReason == nil }

    // MARK: Internals

    private static func createUser(endpoint: String) throws -> S3Credentials {
        let script = """
            import boto3, json
            iam = boto3.client("iam", endpoint_url="\(endpoint)", region_name="us-east-1",
                               aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
            iam.create_user(UserName="ancre")
            iam.put_user_policy(UserName="ancre", PolicyName="s3", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
            key = iam.create_access_key(UserName="ancre")["AccessKey"]
            print(key["AccessKeyId"], key["SecretAccessKey"])
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServerProcess.python3!)
        process.arguments = ["-c", script]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let words = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        guard process.terminationStatus == 0, words.count == 2 else {
            throw ServerProcess.Failure(message: "could not create a moto IAM user (status \(process.terminationStatus))")
        }
        return S3Credentials(accessKeyID: String(words[0]), secretAccessKey: String(words[1]))
    }

    /// Runs `python3 args` and waits until its log shows `marker` followed by the port.
    static func launch(
        _ args: [String], environment: [String: String], directory: URL, marker: String, timeout: Duration
    ) throws -> (Process, Int) {
        let logPath = directory.appendingPathComponent("server-\(UUID().uuidString.prefix(6)).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServerProcess.python3!)
        process.arguments = args
        process.currentDirectoryURL = directory
        process.environment = environment
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
        let deadline = ContinuousClock.now + timeout
        while true {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let range = text.range(of: marker) {
                let digits = text[range.upperBound...].prefix { $0.isNumber }
                if let port = Int(digits), port > 0 { return (process, port) }
            }
            if !process.isRunning {
                throw ServerProcess.Failure(message: "\(args.joined(separator: " ")) exited with status \(process.terminationStatus):\n\(text.suffix(4000))")
            }
            if ContinuousClock.now > deadline {
                ServerProcess.terminate(process)
                throw ServerProcess.Failure(message: "\(args.joined(separator: " ")) did not start within \(timeout):\n\(text.suffix(4000))")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

}

/// An HTTP proxy in front of moto that injects faults, so tests can watch the S3 backend
/// retry and clean up: every `every`-th request whose request line contains `match`
/// fails, either with a 500 (`error`), by closing the connection halfway through reading
/// the body (`reset`), or by forwarding it and closing without answering (`dropAnswer`).
public final class FaultProxy: @unchecked Sendable {
    public enum Mode: String, Sendable {
        case error, reset, dropAnswer
    }

    public let port: Int
    private let process: Process
    private let directory: URL

    public init(upstreamPort: Int, mode: Mode, every: Int, match: String = "") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ancre-proxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        (process, port) = try ServerMoto.launch(
            ["-c", Self.script, String(upstreamPort), mode.rawValue, String(every), match], environment: environment,
            directory: directory, marker: "proxy listening on 127.0.0.1:", timeout: .seconds(20))
    }

    deinit {
        ServerProcess.terminate(process)
        try? FileManager.default.removeItem(at: directory)
    }

    /// How many faults the proxy has injected so far.
    public var faults: Int {
        guard let text = try? String(contentsOfFile: directory.appendingPathComponent("faults").path, encoding: .utf8) else { return 0 }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    static let script = #"""
        import http.client, socket, sys, threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        upstream, mode, every, match = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
        lock = threading.Lock()
        state = {"seen": 0, "faults": 0}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *args): pass
            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                fault = False
                if match in self.requestline:
                    with lock:
                        state["seen"] += 1
                        fault = state["seen"] % every == 0
                        if fault:
                            state["faults"] += 1
                            open("faults", "w").write(str(state["faults"]))
                if fault and mode == "reset":
                    self.rfile.read(length // 2)
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length else b""
                if fault and mode == "error":
                    payload = b"<?xml version='1.0'?><Error><Code>InternalError</Code><Message>injected</Message></Error>"
                    self.send_response(500)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=120)
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    conn.putheader(name, value)
                conn.endheaders(body)
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                if fault and mode == "dropAnswer":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.send_response_only(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                head_length = answer.getheader("Content-Length", "0")
                self.send_header("Content-Length", head_length if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print("proxy listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
        server.serve_forever()
        """#
}
