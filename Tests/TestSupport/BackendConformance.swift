import Dispatch
import Repository
import Synchronization

/// The behaviour every `Storage` backend must show; each backend's tests run it.
///
/// Throws a `ConformanceFailure` naming the first broken expectation. `makeBackend`
/// must return an empty backend each call.
public enum BackendConformance {
    public struct ConformanceFailure: Error, CustomStringConvertible {
        public var description: String
    }

    private static func expect(_ condition: Bool, _ what: String) throws {
        if !condition { throw ConformanceFailure(description: "backend conformance: \(what)") }
    }

    public static func run(_ makeBackend: () throws -> any Storage) throws {
        try putGetStat(makeBackend())
        try ranges(makeBackend())
        try listing(makeBackend())
        try deleting(makeBackend())
        try putIfAbsent(makeBackend())
        try missingObjects(makeBackend())
        try concurrentPuts(makeBackend())
    }

    static func putGetStat(_ backend: any Storage) throws {
        let bytes = TestRepository.bytes(count: 10_000, seed: 1)
        try backend.put("data/ab/abcdef", bytes)
        try expect(try backend.get("data/ab/abcdef") == bytes, "get returns what put stored")
        try expect(try backend.stat("data/ab/abcdef") == 10_000, "stat returns the size")
        try backend.put("data/ab/abcdef", [1, 2, 3])
        try expect(try backend.get("data/ab/abcdef") == [1, 2, 3], "put replaces an object")
        try backend.put("config", [])
        try expect(try backend.get("config") == [], "an empty object round-trips")
        try expect(try backend.stat("config") == 0, "an empty object has size 0")
    }

    static func ranges(_ backend: any Storage) throws {
        let bytes = TestRepository.bytes(count: 1000, seed: 2)
        try backend.put("index/x", bytes)
        try expect(try backend.get("index/x", range: 10..<20) == Array(bytes[10..<20]), "a range reads that slice")
        try expect(try backend.get("index/x", range: 990..<1010) == Array(bytes[990...]), "a range past the end is cut short")
        try expect(try backend.get("index/x", range: 0..<0) == [], "an empty range reads nothing")
    }

    static func listing(_ backend: any Storage) throws {
        for key in ["data/00/a1", "data/00/a2", "data/ff/b1", "index/i1", "keys/k1", "config"] {
            try backend.put(key, Array(key.utf8))
        }
        let data = try backend.list(prefix: "data/").map(\.key).sorted()
        try expect(data == ["data/00/a1", "data/00/a2", "data/ff/b1"], "list(data/) lists packs in all subdirectories, got \(data)")
        let sub = try backend.list(prefix: "data/00/").map(\.key).sorted()
        try expect(sub == ["data/00/a1", "data/00/a2"], "list(data/00/) lists one subdirectory, got \(sub)")
        let sizes = try backend.list(prefix: "index/")
        try expect(sizes == [StorageEntry(key: "index/i1", size: 8)], "list reports sizes, got \(sizes)")
        try expect(try backend.list(prefix: "snapshots/").isEmpty, "an absent directory lists empty")
    }

    static func deleting(_ backend: any Storage) throws {
        try backend.put("locks/l1", [1])
        try backend.delete("locks/l1")
        try expect(try backend.stat("locks/l1") == nil, "a deleted object is gone")
        try expect(try backend.list(prefix: "locks/").isEmpty, "a deleted object is not listed")
        try backend.delete("locks/l1")  // idempotent
    }

    static func putIfAbsent(_ backend: any Storage) throws {
        try expect(try backend.putIfAbsent("config", [1]), "putIfAbsent creates a missing object")
        try expect(try !backend.putIfAbsent("config", [2]), "putIfAbsent refuses an existing object")
        try expect(try backend.get("config") == [1], "a refused putIfAbsent leaves the object alone")
    }

    static func missingObjects(_ backend: any Storage) throws {
        try expect(try backend.stat("data/00/missing") == nil, "stat of a missing object is nil")
        do {
            _ = try backend.get("data/00/missing")
            throw ConformanceFailure(description: "backend conformance: get of a missing object throws")
        } catch let error as RepositoryError {
            try expect(error.code == .objectNotFound, "get of a missing object throws objectNotFound, got \(error.code)")
        }
    }

    static func concurrentPuts(_ backend: any Storage) throws {
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            do {
                try backend.put("data/cc/\(i)", TestRepository.bytes(count: 5000, seed: UInt64(i)))
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        let failed = failures.withLock { $0 }
        try expect(failed.isEmpty, "concurrent puts succeed: \(failed)")
        try expect(try backend.list(prefix: "data/cc/").count == 8, "concurrent puts all land")
        for i in 0..<8 {
            try expect(try backend.get("data/cc/\(i)") == TestRepository.bytes(count: 5000, seed: UInt64(i)), "concurrent put \(i) intact")
        }
    }
}
