import ArgumentParser

/// Every exit code `ancre` uses, in one registry so scripts can rely on them.
/// Listed in each command's help (see `exitCodeHelp`).
enum AncreExit {
    static let failure: Int32 = 1
    static let usage: Int32 = 64
    static let repositoryNotFound: Int32 = 10
    static let repositoryExists: Int32 = 11
    static let wrongPassphrase: Int32 = 12
    static let locked: Int32 = 13
    static let dataDamaged: Int32 = 14
    static let badInput: Int32 = 15
    static let storageFull: Int32 = 16
    static let serverUnreachable: Int32 = 20
    static let noOplog: Int32 = 21
    static let authenticationFailed: Int32 = 22
    static let oplogRolledOver: Int32 = 23
    static let notRestorable: Int32 = 30
    static let targetNotEmpty: Int32 = 31
    static let drillFailed: Int32 = 40
    static let unhealthy: Int32 = 41

    static let help = """
        Exit codes: 0 success, 1 failure, 64 usage error, 10 no repository, 11 repository \
        already exists, 12 wrong passphrase, 13 repository locked, 14 data damaged (check \
        failed), 15 bad input (malformed dump or archive), 16 storage full, 20 server \
        unreachable, 21 server has no oplog, 22 authentication failed, 23 oplog rolled over during a \
        backup (enlarge it), 30 target not restorable, 31 restore target not empty (use --drop), 40 drill failed \
        (the restored data does not match, or could not be verified), 41 unhealthy (status: RPO over its threshold \
        or a job failed).
        """
}
