import BSON
import Foundation
import Synchronization

/// A dump directory as mongodump writes it: `<dir>/<db>/<coll>.bson` with
/// `<coll>.metadata.json`, views as metadata alone, and `<dir>/oplog.bson` for `--oplog`.
///
/// The listing and every metadata file are read when the directory is opened; documents
/// are read on demand. Thread-safe. Gzipped dumps (`--gzip`) are detected and refused.
public final class DumpDirectory: DumpSource {
    /// The directory's path.
    public let path: String

    private struct Entry: Sendable {
        var info: DumpNamespace
        var file: Int32?  // index in `files` of its .bson, if any
    }

    private let entries: [Entry]
    private let byNamespace: [Namespace: Int]
    private let files: [String]  // .bson paths; a DocumentLocation's `file` indexes this
    private let oplogFile: Int32?
    private let openFiles = Mutex<[Int32: ReadOnlyFile]>([:])

    /// Lists the dump at `path` and parses its metadata files.
    /// - Throws: `DumpError`: `.notFound` if `path` is not a directory, `.unsupportedCompression`
    ///   for `.gz` files, `.badMetadata` for a metadata file that is not Extended JSON,
    ///   `.missingData` for a collection's metadata without its `.bson` file.
    public init(path: String) throws {
        self.path = path
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DumpError(.notFound, "not a dump directory", path: path)
        }
        var files: [String] = []
        var entries: [Entry] = []
        var oplogFile: Int32?

        let top = try Self.contents(of: path)
        for name in top {
            let full = (path as NSString).appendingPathComponent(name)
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: full, isDirectory: &isDir)
            if isDir.boolValue {
                entries += try Self.readDatabase(at: full, database: name, files: &files)
            } else if name == "oplog.bson" {
                oplogFile = Int32(files.count)
                files.append(full)
            } else if name == "oplog.bson.gz" {
                throw DumpError(.unsupportedCompression,
                                "gzip-compressed dumps (mongodump --gzip) are not supported; gunzip the files first", path: full)
            }
            // Anything else at the top (prelude.json from newer tools, stray files) carries no data.
        }
        entries.sort { $0.info.namespace < $1.info.namespace }
        self.entries = entries
        self.files = files
        self.oplogFile = oplogFile
        var index: [Namespace: Int] = [:]
        for (i, e) in entries.enumerated() { index[e.info.namespace] = i }
        self.byNamespace = index
    }

    private static func contents(of path: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw DumpError(.io, "cannot list directory", path: path, underlying: error as NSError)
        }
    }

    /// Pairs `<coll>.bson` and `<coll>.metadata.json` files of one database directory.
    private static func readDatabase(at dir: String, database: String, files: inout [String]) throws -> [Entry] {
        var data: [String: String] = [:]  // escaped collection name -> .bson path
        var metadata: [String: String] = [:]  // escaped collection name -> .metadata.json path
        for name in try contents(of: dir) {
            let full = (dir as NSString).appendingPathComponent(name)
            if name.hasSuffix(".bson.gz") || name.hasSuffix(".metadata.json.gz") {
                throw DumpError(.unsupportedCompression,
                                "gzip-compressed dumps (mongodump --gzip) are not supported; gunzip the files first", path: full)
            } else if name.hasSuffix(".metadata.json") {
                metadata[String(name.dropLast(".metadata.json".count))] = full
            } else if name.hasSuffix(".bson") {
                data[String(name.dropLast(".bson".count))] = full
            }
        }
        var entries: [Entry] = []
        for stem in Set(data.keys).union(metadata.keys).sorted() {
            var meta: CollectionMetadata?
            if let metaPath = metadata[stem] {
                let text: String
                do {
                    text = try String(contentsOfFile: metaPath, encoding: .utf8)
                } catch {
                    throw DumpError(.badMetadata, "cannot read metadata file as UTF-8 text", path: metaPath,
                                    underlying: error as NSError)
                }
                do {
                    meta = try CollectionMetadata(json: text)
                } catch let error as DumpError {
                    throw error.adding(path: metaPath)
                }
            }
            // File names are escaped (and may be truncated) by mongodump; the metadata's
            // collectionName, when recorded, is the real name.
            let name = meta?.collectionName ?? stem.removingPercentEncoding ?? stem
            let namespace = Namespace(database: database, collection: name)
            var file: Int32?
            var size: Int64?
            if let bsonPath = data[stem] {
                file = Int32(files.count)
                files.append(bsonPath)
                size = (try? FileManager.default.attributesOfItem(atPath: bsonPath)[.size] as? NSNumber)?.int64Value
            } else if let meta, meta.kind == .collection {
                throw DumpError(.missingData, "metadata names a collection but \(stem).bson is missing",
                                path: metadata[stem], namespace: namespace)
            }
            entries.append(Entry(info: DumpNamespace(namespace: namespace, metadata: meta, byteCount: size), file: file))
        }
        return entries
    }

    public func namespaces() -> [DumpNamespace] { entries.map(\.info) }

    public var hasOplog: Bool { oplogFile != nil }

    /// The `.bson` file holding `namespace`'s documents, if it has one.
    public func dataPath(of namespace: Namespace) -> String? {
        if namespace.isArchiveOplog { return oplogFile.map { files[Int($0)] } }
        return byNamespace[namespace].flatMap { entries[$0].file }.map { files[Int($0)] }
    }

    public func forEachDocument(in namespace: Namespace, _ body: (Document, DocumentLocation) throws -> Void) throws {
        try forEachDocumentBytes(in: namespace) { bytes, location in try body(Document(trustedBytes: Array(bytes)), location) }
    }

    public func forEachDocumentBytes(in namespace: Namespace, _ body: (UnsafeRawBufferPointer, DocumentLocation) throws -> Void) throws {
        let fileIndex: Int32?
        if namespace.isArchiveOplog {
            fileIndex = oplogFile
        } else {
            guard let i = byNamespace[namespace] else {
                throw DumpError(.unknownNamespace, "the dump has no such namespace", path: path, namespace: namespace)
            }
            fileIndex = entries[i].file
        }
        guard let fileIndex else { return }  // a view or time-series: no documents of its own
        var reader = ChunkedReader(file: try ReadOnlyFile(path: files[Int(fileIndex)]))
        try readDocumentStream(&reader, file: fileIndex, namespace: namespace, body)
    }

    public func forEachDocument(_ body: (Namespace, Document, DocumentLocation) throws -> Void) throws {
        for entry in entries where entry.file != nil {
            let ns = entry.info.namespace
            try forEachDocument(in: ns) { try body(ns, $0, $1) }
        }
        if hasOplog {
            try forEachDocument(in: .archiveOplog) { try body(.archiveOplog, $0, $1) }
        }
    }

    public func readDocument(at location: DocumentLocation) throws -> Document {
        try read(at: location, validate: true)
    }

    public func readBytes(file index: Int32, offset: Int64, count: Int) throws -> [UInt8] {
        try openFile(index).read(count: count, at: offset)
    }

    public func readBytes(file index: Int32, offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws {
        try openFile(index).read(exactly: buffer, at: offset)
    }

    private func openFile(_ index: Int32) throws -> ReadOnlyFile {
        guard index >= 0, Int(index) < files.count else {
            throw DumpError(.badLocation, "location names file #\(index); this dump has \(files.count)", path: path)
        }
        return try openFiles.withLock { (open) throws -> ReadOnlyFile in
            if let f = open[index] { return f }
            let f = try ReadOnlyFile(path: files[Int(index)])
            open[index] = f
            return f
        }
    }

    private func read(at location: DocumentLocation, validate: Bool) throws -> Document {
        let file = try openFile(location.file)
        try checkDocumentLength(location.length, path: file.path, namespace: nil, offset: location.offset)
        let bytes = try file.read(count: Int(location.length), at: location.offset)
        return try makeDocument(bytes, path: file.path, namespace: nil, offset: location.offset)
    }
}
