import Foundation
import Testing
import Repository
import TestSupport
@testable import Operations

/// The config file: the documented sample, strictness, permissions, secrets.
@Suite struct DaemonConfigTests {
    static let minimal = """
        [daemon]
        state_directory = "state"
        [source]
        uri_env = "MONGO_URI"
        [repository]
        location = "repo"
        password_env = "PASS"
        """

    func parse(_ text: String) throws(DaemonConfigError) -> DaemonConfig {
        try DaemonConfig(parsing: text, directory: "/etc/ancre")
    }

    func error(_ text: String) -> DaemonConfigError? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func sampleConfigParses() throws {
        let path = ServerProcess.repositoryRoot.appendingPathComponent("Packaging/ancre.toml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let config = try parse(text)
        #expect(config.stateDirectory == "/var/lib/ancre")
        #expect(config.snapshot.schedule.expression == "0 */2 * * *")
        #expect(config.replication.schedule.expression == "0 1 * * *")
        #expect(config.offsite.map(\.name) == ["s3"] && config.offsite[0].location.hasPrefix("s3:https://"))
        #expect(config.offsite[0].credentialsFile == "/etc/ancre/s3-credentials")
        #expect(config.offsite[0].objectLock == ObjectLockRetention(mode: .compliance, duration: .seconds(30 * 86_400)))
        #expect(config.repository.passwordFile == "/etc/ancre/passphrase")
        #expect(config.source.uriFile == "/etc/ancre/mongodb-uri")
        let retention = try #require(config.retention)
        #expect(retention.schedule.expression == "0 3 * * *" && retention.keepWithinPITR == .seconds(7 * 86_400) && retention.keepDaily == 30)
        let drill = try #require(config.drill)
        #expect(drill.schedule.expression == "0 4 * * 0" && drill.repository == "s3" && drill.targetURIFile == "/etc/ancre/drill-uri")
        #expect(config.alerts.command == ["/usr/local/bin/ancre-alert"] && config.alerts.rpoThreshold == .seconds(300))
        #expect(config.metricsListen?.host == "127.0.0.1" && config.metricsListen?.port == 9464)
        #expect(config.retryAttempts == 3 && config.retryDelay == .seconds(60) && config.stopGrace == .seconds(60))
    }

    @Test func defaultsAndRelativePaths() throws {
        let config = try parse(Self.minimal)
        #expect(config.stateDirectory == "/etc/ancre/state" && config.repository.location == "/etc/ancre/repo")
        #expect(config.snapshot.schedule.expression == DaemonConfig.defaultSnapshotSchedule)
        #expect(config.replication.schedule.expression == DaemonConfig.defaultReplicationSchedule)
        #expect(config.offsite.isEmpty && config.retention == nil && config.drill == nil)
        #expect(config.metricsListen?.host == "127.0.0.1", "loopback by default")
        #expect(config.retryAttempts == 3 && config.retryDelay == .seconds(60))
        #expect(try parse(Self.minimal + "\n[metrics]\nlisten = \"off\"").metricsListen == nil)
    }

    @Test(arguments: [
        ("\n[snapshot]\nschedul = \"@daily\"", 9, "unknown key schedul in [snapshot]"),
        ("\n[snapshots]\nschedule = \"@daily\"", 8, "unknown table [snapshots]"),
        ("\n[repository2]", 8, "unknown table"),
        ("\n[snapshot]\nschedule = \"0 25 * * *\"", 9, "hour field \"25\""),
        ("\n[snapshot]\nparallel = \"4\"", 9, "parallel must be an integer"),
        ("\n[snapshot]\nparallel = 0", 9, "between 1 and 64"),
        ("\n[snapshot]\nschedule = @daily", 9, "is not a value (strings need quotes)"),
        ("\n[snapshot]\nschedule = \"@daily", 9, "unterminated string"),
        ("\n[snapshot]\nschedule = \"@daily\"\nschedule = \"@hourly\"", 10, "schedule is set twice"),
        ("\n[snapshot]\n[snapshot]", 9, "defined twice"),
        ("\n[[offsite]]", 8, "arrays of tables"),
        ("\n[offsite.x]\nlocation = \"x\"\npassword = \"hunter2\"", 10, "password must not be inline"),
        ("\n[alerts]\nrpo_threshold = \"5 minutes\"", 9, "not a duration"),
        ("\n[alerts]\ncommand = []", 9, "command must name a program"),
        ("\n[drill]\nschedule = \"@weekly\"\ntarget_uri_file = \"t\"\nrepository = \"nowhere\"", 11, "neither primary nor an [offsite.NAME]"),
        ("\n[metrics]\nlisten = \"9464\"", 9, "listen must be host:port"),
        ("\n[offsite.primary]\nlocation = \"x\"", 8, "\"primary\" names [repository]"),
        ("\n[offsite.x]\nlocation = \"x\"\nobject_lock = \"30d\"", 10, "object_lock applies only to s3: locations"),
        ("\n[offsite.x]\nlocation = \"s3:h/b\"\nobject_lock = \"30d\"\nobject_lock_mode = \"forever\"", 11, "GOVERNANCE or COMPLIANCE"),
        ("\n[offsite.x]\nlocation = \"s3:h/b\"\nobject_lock_mode = \"COMPLIANCE\"", 10, "object_lock_mode needs object_lock"),
    ])
    func errorsNameTheLine(_ extra: String, _ line: Int, _ message: String) throws {
        let e = try #require(error(Self.minimal + extra), "\(extra) was accepted")
        #expect(e.line == line, "\(e)")
        #expect(e.message.contains(message), "\(e)")
    }

    @Test func inlineSecretsAndMissingTablesAreRefused() throws {
        let uri = try #require(error("[daemon]\nstate_directory = \"s\"\n[source]\nuri = \"mongodb://u:p@h\"\n[repository]\nlocation = \"r\"\npassword_env = \"P\""))
        #expect(uri.line == 4 && uri.message.contains("uri must not be inline") && !uri.description.contains("u:p@h"))
        let noPassword = try #require(error("[daemon]\nstate_directory = \"s\"\n[source]\nuri_env = \"U\"\n[repository]\nlocation = \"r\""))
        #expect(noPassword.message.contains("needs password_file or password_env"))
        let noRepository = try #require(error("[daemon]\nstate_directory = \"s\"\n[source]\nuri_env = \"U\""))
        #expect(noRepository.message.contains("[repository] is required"))
        let noState = try #require(error("[source]\nuri_env = \"U\"\n[repository]\nlocation = \"r\"\npassword_env = \"P\""))
        #expect(noState.message.contains("state_directory is required"))
        let topLevel = try #require(error("foo = 1\n" + Self.minimal))
        #expect(topLevel.line == 1 && topLevel.message.contains("unknown key foo at the top level"))
        let replicationNowhere = try #require(error(Self.minimal + "\n[replication]\nschedule = \"@daily\""))
        #expect(replicationNowhere.message.contains("nowhere to copy to"))
        let emptyRetention = try #require(error(Self.minimal + "\n[retention]\nschedule = \"@daily\""))
        #expect(emptyRetention.message.contains("keeps nothing"))
    }

    @Test func syntaxSubset() throws {
        let config = try parse(Self.minimal + """

            # a comment line
            [snapshot]   # trailing comment
            tags = ["a", 'b\\c', "q\\"uote"]   # literal strings keep backslashes
            include = []
            parallel = 1_0
            [daemon2]
            """.replacingOccurrences(of: "[daemon2]", with: ""))
        #expect(config.snapshot.tags == ["a", "b\\c", "q\"uote"] && config.snapshot.include.isEmpty && config.snapshot.parallel == 10)
    }

    @Test func filePermissionsAndSecretFiles() throws {
        let directory = Fixtures.temporaryDirectory("ancre-config")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("ancre.toml").path
        let text = """
            [daemon]
            state_directory = "state"
            [source]
            uri_file = "uri"
            [repository]
            location = "repo"
            password_file = "passphrase"
            """
        #expect(FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o644]))
        var e = try #require(Self.loadError(path))
        #expect(e.message.contains("accessible to group or others (mode 644)") && e.message.contains("chmod 600"), "\(e)")

        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        e = try #require(Self.loadError(path))
        #expect(e.message.contains("[source] uri_file") && e.message.contains("does not exist"), "\(e)")

        let uri = directory.appendingPathComponent("uri").path
        #expect(FileManager.default.createFile(atPath: uri, contents: Data("mongodb://h/\n".utf8), attributes: [.posixPermissions: 0o600]))
        let passphrase = directory.appendingPathComponent("passphrase").path
        #expect(FileManager.default.createFile(atPath: passphrase, contents: Data("secret\n".utf8), attributes: [.posixPermissions: 0o640]))
        e = try #require(Self.loadError(path))
        #expect(e.message.contains("[repository] password_file") && e.message.contains("mode 640"), "\(e)")

        try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: passphrase)
        let config = try DaemonConfig.load(path: path)
        #expect(try config.repository.passphrase() == "secret")
        #expect(try config.source.connectionString() == "mongodb://h/")
    }

    static func loadError(_ path: String) -> DaemonConfigError? {
        do {
            _ = try DaemonConfig.load(path: path)
            return nil
        } catch {
            return error
        }
    }

    @Test func secretsFromTheEnvironment() throws {
        let config = try parse(Self.minimal)
        #expect(try config.repository.passphrase(environment: ["PASS": "p"]) == "p")
        #expect(try config.source.connectionString(environment: ["MONGO_URI": "mongodb://x/"]) == "mongodb://x/")
        #expect(throws: DaemonConfigError.self) { try config.repository.passphrase(environment: [:]) }
    }

    @Test func durationsOutOfRangeAreRefused() {
        for text in ["1e300d", "0s", "-5m", "5", "5y", "nan s"] { #expect(DaemonConfig.duration(text) == nil, "\(text)") }
    }

    @Test(arguments: [("500ms", 0.5), ("30s", 30), ("5m", 300), ("2h", 7200), ("7d", 604_800), ("2w", 1_209_600)])
    func durations(_ text: String, _ seconds: Double) {
        #expect(DaemonConfig.duration(text) == .milliseconds(Int64(seconds * 1000)))
    }
}
