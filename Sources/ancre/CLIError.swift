import ArgumentParser
import BSON
import Capture
import Foundation
import Mongo
import MongoDump
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
    } catch let error as CLIError {
        FileHandle.standardError.write(Data("ancre: \(error.message)\n".utf8))
        throw ExitCode(error.code)
    } catch let error as RepositoryError {
        FileHandle.standardError.write(Data("ancre: \(error)\n".utf8))
        throw ExitCode(exitCode(for: error.code))
    } catch let error as MongoError {
        FileHandle.standardError.write(Data("ancre: \(error)\n".utf8))
        throw ExitCode(exitCode(for: error.code))
    } catch let error as CaptureError where error.code == .oplogRolledOver {
        FileHandle.standardError.write(Data("ancre: \(error)\n".utf8))
        throw ExitCode(AncreExit.oplogRolledOver)
    } catch let error as DumpError {
        FileHandle.standardError.write(Data("ancre: \(error)\n".utf8))
        throw ExitCode(AncreExit.badInput)
    } catch let error as CaptureError where error.code != .unsorted {
        // A document without _id, a duplicate _id, an oplog entry without ts: the dump is at fault.
        FileHandle.standardError.write(Data("ancre: \(error)\n".utf8))
        throw ExitCode(AncreExit.badInput)
    } catch let error as BSONError {
        FileHandle.standardError.write(Data("ancre: \(error)\n".utf8))
        throw ExitCode(AncreExit.badInput)
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("ancre: \(error)\n".utf8))
        throw ExitCode(AncreExit.failure)
    }
}

func exitCode(for code: RepositoryError.Code) -> Int32 {
    switch code {
    case .repositoryNotFound: AncreExit.repositoryNotFound
    case .repositoryExists: AncreExit.repositoryExists
    case .wrongPassphrase: AncreExit.wrongPassphrase
    case .locked: AncreExit.locked
    case .storageFull: AncreExit.storageFull
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
