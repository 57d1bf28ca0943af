import Testing
import TestSupport
@testable import Repository

@Suite struct KeyTests {
    @Test func createThenOpen() throws {
        let storage = InMemoryBackend()
        let created = try TestRepository.make(storage: storage)
        let id = try created.saveBlob(type: .leaf, bytes: Array("hello".utf8)).id
        try created.flush()
        let opened = try TestRepository.open(storage: storage)
        #expect(opened.config == created.config)
        #expect(opened.blobID(for: Array("hello".utf8)) == id)
        #expect(try opened.loadBlob(id) == Array("hello".utf8))
        #expect(storage.keys.contains("config"))
        #expect(storage.keys.filter { $0.hasPrefix("keys/") }.count == 1)
    }

    @Test func wrongPassphraseIsRefused() throws {
        let storage = InMemoryBackend()
        _ = try TestRepository.make(storage: storage)
        do {
            _ = try TestRepository.open(storage: storage, passphrase: "not it")
            Issue.record("opened with a wrong passphrase")
        } catch let error as RepositoryError {
            #expect(error.code == .wrongPassphrase)
            #expect(error.message.contains("wrong passphrase"))
            #expect(!error.description.contains("not it"))
        }
    }

    @Test func initOverExistingRepositoryIsRefused() throws {
        let storage = InMemoryBackend()
        let first = try TestRepository.make(storage: storage)
        #expect { try TestRepository.make(storage: storage) } throws: { ($0 as? RepositoryError)?.code == .repositoryExists }
        #expect(storage.keys.filter { $0.hasPrefix("keys/") }.count == 1)
        #expect(try TestRepository.open(storage: storage).config.id == first.config.id)
    }

    @Test func openingNothingSaysSo() throws {
        #expect { try TestRepository.open(storage: InMemoryBackend()) } throws: { ($0 as? RepositoryError)?.code == .repositoryNotFound }
    }

    @Test func addListRemoveKeySlots() throws {
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage)
        let added = try repository.addKeySlot(passphrase: "second secret", kdf: .weakForTesting, label: "ops laptop")
        let slots = try repository.listKeySlots()
        #expect(slots.count == 2)
        #expect(slots.contains { $0.id == added.id && $0.label == "ops laptop" && $0.kdf.n == 1024 })
        #expect(slots.contains { $0.id == repository.keySlotID })

        let viaSecond = try TestRepository.open(storage: storage, passphrase: "second secret")
        #expect(viaSecond.keySlotID == added.id)
        #expect(viaSecond.config.id == repository.config.id)

        try repository.removeKeySlot(id: repository.keySlotID)
        #expect { try TestRepository.open(storage: storage) } throws: { ($0 as? RepositoryError)?.code == .wrongPassphrase }
        #expect { try repository.removeKeySlot(id: added.id) } throws: { ($0 as? RepositoryError)?.code == .keySlotLast }
        #expect { try repository.removeKeySlot(id: "nope") } throws: { ($0 as? RepositoryError)?.code == .keySlotNotFound }
        _ = try TestRepository.open(storage: storage, passphrase: "second secret")
    }

    @Test func slotsHoldNoSecretsInTheClear() throws {
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage)
        let slot = String(decoding: try storage.get("keys/\(repository.keySlotID)"), as: UTF8.self)
        #expect(!slot.contains(TestRepository.passphrase))
        #expect(!slot.contains(encodeHex(repository.master.encryptionKey)))
        #expect(slot.contains("\"kdf\" : \"scrypt\""))
        let config = String(decoding: try storage.get("config"), as: UTF8.self)
        #expect(config.contains(repository.config.id))
        #expect("\(repository.master)" == "MasterKey(redacted)")
    }

    @Test func calibrationPicksAPowerOfTwo() {
        let kdf = KDFParameters.calibrated(target: .milliseconds(20))
        #expect(kdf.n >= 1 << 15 && kdf.n & (kdf.n - 1) == 0)
    }
}
