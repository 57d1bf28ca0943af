import Foundation

/// A value computed on a thread of its own while the caller does other work.
///
/// For blocking work (key derivation, file scans) that must not occupy the Swift
/// cooperative pool; `value()` waits for it and rethrows its error.
final class BackgroundResult<T>: @unchecked Sendable {
    private var result: Result<T, any Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws -> T) {
        let thread = Thread { [self] in
            result = Result(catching: body)
            done.signal()
        }
        thread.start()
    }

    func value() throws -> T {
        waitUntilDone()
        return try result!.get()
    }

    /// Waits for the work to end, whatever its outcome. A command that fails early must
    /// call it before it exits: exit handlers (OpenSSL's among them) free state that the
    /// still-running work uses, and the process would crash instead of reporting its error.
    func waitUntilDone() {
        done.wait()
        done.signal()
    }
}
