import Foundation
import Logging

/// Logging for the CLI: warnings and errors to stderr by default, more with ANCRE_LOG_LEVEL.
enum CLILogging {
    static let logger: Logger = {
        var logger = Logger(label: "ancre") { StreamLogHandler.standardError(label: $0) }
        let level = ProcessInfo.processInfo.environment["ANCRE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        logger.logLevel = level ?? .warning
        return logger
    }()
}
