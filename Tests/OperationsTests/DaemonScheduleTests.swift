import Foundation
import Testing
@testable import Operations

/// Cron parsing and next-fire times (UTC).
@Suite struct DaemonScheduleTests {
    static func utc(_ text: String) -> Date {
        let f = ISO8601DateFormatter()
        return f.date(from: text)!
    }

    static func iso(_ date: Date?) -> String {
        date.map { ISO8601DateFormatter().string(from: $0) } ?? "never"
    }

    @Test(arguments: [
        // expression, after, expected next
        ("0 */2 * * *", "2026-03-01T00:00:00Z", "2026-03-01T02:00:00Z"),
        ("0 */2 * * *", "2026-03-01T01:59:59Z", "2026-03-01T02:00:00Z"),
        ("0 */2 * * *", "2026-03-01T23:00:00Z", "2026-03-02T00:00:00Z"),
        ("0 1 * * *", "2026-03-01T01:00:00Z", "2026-03-02T01:00:00Z"),
        ("0 1 * * *", "2026-12-31T02:00:00Z", "2027-01-01T01:00:00Z"),
        ("*/15 * * * *", "2026-03-01T10:07:30Z", "2026-03-01T10:15:00Z"),
        ("5-10/5 * * * *", "2026-03-01T10:06:00Z", "2026-03-01T10:10:00Z"),
        ("5/20 * * * *", "2026-03-01T10:26:00Z", "2026-03-01T10:45:00Z"),
        ("0,30 9-17 * * 1-5", "2026-03-06T17:30:00Z", "2026-03-09T09:00:00Z"),  // Friday evening -> Monday
        ("0 0 31 * *", "2026-04-01T00:00:00Z", "2026-05-31T00:00:00Z"),          // April has no 31st
        ("0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),          // next leap day
        ("0 4 * * 0", "2026-03-01T04:00:00Z", "2026-03-08T04:00:00Z"),           // Sundays
        ("0 4 * * 7", "2026-03-02T00:00:00Z", "2026-03-08T04:00:00Z"),           // 7 is Sunday too
        ("0 0 1 * 1", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"),           // day-of-month OR day-of-week
        ("@hourly", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z"),
        ("@daily", "2026-03-01T10:00:00Z", "2026-03-02T00:00:00Z"),
        ("@weekly", "2026-03-02T10:00:00Z", "2026-03-08T00:00:00Z"),
        ("@monthly", "2026-01-31T10:00:00Z", "2026-02-01T00:00:00Z"),
        // UTC: no daylight-saving jump at the European change (2026-03-29 01:00 UTC).
        ("30 1 * * *", "2026-03-29T00:00:00Z", "2026-03-29T01:30:00Z"),
    ])
    func nextFire(_ expression: String, _ after: String, _ expected: String) throws {
        let schedule = try Schedule(expression)
        #expect(Self.iso(schedule.next(after: Self.utc(after))) == expected, "\(expression) after \(after)")
    }

    @Test func neverFiringScheduleReturnsNil() throws {
        #expect(try Schedule("0 0 30 2 *").next(after: Self.utc("2026-01-01T00:00:00Z")) == nil)
    }

    @Test func successiveFiresOfTheDefaultPlan() throws {
        let snapshots = try Schedule("0 */2 * * *")
        var t = Self.utc("2026-03-01T00:30:00Z")
        var fires: [String] = []
        for _ in 0..<13 {
            t = snapshots.next(after: t)!
            fires.append(Self.iso(t))
        }
        #expect(fires.first == "2026-03-01T02:00:00Z" && fires.last == "2026-03-02T02:00:00Z" && Set(fires).count == 13)
    }

    @Test(arguments: [
        ("0 */2 * *", "has 4 fields"),
        ("60 * * * *", "minute field \"60\": 60 is outside 0-59"),
        ("0 24 * * *", "hour field \"24\": 24 is outside 0-23"),
        ("0 0 0 * *", "day-of-month field \"0\": 0 is outside 1-31"),
        ("0 0 * 13 *", "month field \"13\": 13 is outside 1-12"),
        ("0 0 * * 8", "day-of-week field \"8\": 8 is outside 0-7"),
        ("*/0 * * * *", "bad step \"0\""),
        ("10-5 * * * *", "range 10-5 runs backwards"),
        ("a * * * *", "\"a\" is not a number or range"),
        ("1,,2 * * * *", "bad item"),
        ("@yearly", "unknown shorthand @yearly"),
    ])
    func rejects(_ expression: String, _ message: String) {
        #expect(throws: ScheduleError.self) { try Schedule(expression) }
        do {
            _ = try Schedule(expression)
        } catch {
            #expect(error.message.contains(message), "\(error.message)")
        }
    }
}
