import ArgumentParser
import BSON
import Capture
import Foundation
import Mongo
import Operations
import MongoDump
import Recovery
import Repository

/// An error the CLI reports itself: a message for stderr and an exit code.
struct CLIError: Error, CustomStringConvertible {
    let code: Int32
    let message: String

    init(_ code: Int32, _ message: String) {
        self.code = code
        self.message = message
    }

    var description: String { message }
}

/// Runs a command body, printing library errors as one clear line and exiting with
/// the registry's code for them.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        let message = (error as? CLIError)?.message ?? "\(error)"
        FileHandle.standardError.write(Data("ancre: \(message)\n".utf8))
        throw ExitCode(exitCode(for: error))
    }
}

/// The registry's exit code for an error of any layer.
func exitCode(for error: any Error) -> Int32 {
    switch error {
    case let e as CLIError: e.code
    case let e as RepositoryError: exitCode(for: e.code)
    case let e as MongoError: exitCode(for: e.code)
    case let e as CaptureError where e.code == .oplogRolledOver: AncreExit.oplogRolledOver
    // A document without _id, a duplicate _id, an oplog entry without ts: the dump is at fault.
    case let e as CaptureError where e.code != .unsorted: AncreExit.badInput
    case is DumpError, is BSONError: AncreExit.badInput
    case let e as RestoreError where e.code == .notRestorable: AncreExit.notRestorable
    case let e as RestoreError where e.code == .badTarget || e.code == .badPattern: AncreExit.usage
    case let e as RestoreError where e.code == .targetNotEmpty: AncreExit.targetNotEmpty
    case let e as DrillError where e.code == .targetNotEmpty: AncreExit.targetNotEmpty
    case let e as DrillError where e.code == .badOptions: AncreExit.usage
    default: AncreExit.failure
    }
}

func exitCode(for code: RepositoryError.Code) -> Int32 {
    switch code {
    case .repositoryNotFound: AncreExit.repositoryNotFound
    case .repositoryExists: AncreExit.repositoryExists
    case .wrongPassphrase: AncreExit.wrongPassphrase
    case .locked: AncreExit.locked
    case .storageFull: AncreExit.storageFull
    case .accessDenied: AncreExit.authenticationFailed
    case .packCorrupt, .packTruncated, .packMissing, .indexCorrupt, .blobCorrupt, .blobNotFound:
        AncreExit.dataDamaged
    default: AncreExit.failure
    }
}

func exitCode(for code: MongoError.Code) -> Int32 {
    switch code {
    case .serverUnreachable, .connectionDropped: AncreExit.serverUnreachable
    case .noOplog: AncreExit.noOplog
    case .authenticationFailed, .unauthorized: AncreExit.authenticationFailed
    case .invalidURI: AncreExit.usage
    default: AncreExit.failure
    }
}
