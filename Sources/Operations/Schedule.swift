import Foundation

/// A cron-like schedule: five fields (minute hour day-of-month month day-of-week) with
/// `*`, lists (`1,15`), ranges (`1-5`) and steps (`*/15`, `0-30/10`), or one of the
/// shorthands `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`.
///
/// Evaluated in UTC, so there is no daylight-saving ambiguity. As in cron, when both
/// day-of-month and day-of-week are restricted, a day matching either one fires.
/// Day-of-week 0 and 7 are Sunday.
public struct Schedule: Sendable, Equatable, CustomStringConvertible {
    public let expression: String
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    public var description: String { expression }

    /// Parses an expression.
    /// - Throws: `ScheduleError` naming the field at fault.
    public init(_ expression: String) throws(ScheduleError) {
        let text = expression.trimmingCharacters(in: .whitespaces)
        let shorthands = ["@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                          "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *"]
        let body: String
        if text.hasPrefix("@") {
            guard let expanded = shorthands[text] else {
                throw ScheduleError("unknown shorthand \(text) (use @hourly, @daily, @weekly or @monthly)")
            }
            body = expanded
        } else {
            body = text
        }
        let fields = body.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5 else {
            throw ScheduleError("\"\(text)\" has \(fields.count) fields; expected 5: minute hour day-of-month month day-of-week")
        }
        self.expression = text
        minutes = try Self.field(fields[0], name: "minute", 0...59)
        hours = try Self.field(fields[1], name: "hour", 0...23)
        daysOfMonth = try Self.field(fields[2], name: "day-of-month", 1...31)
        months = try Self.field(fields[3], name: "month", 1...12)
        var weekdays = try Self.field(fields[4], name: "day-of-week", 0...7)
        if weekdays.remove(7) != nil { weekdays.insert(0) }
        daysOfWeek = weekdays
        dayOfMonthRestricted = !fields[2].hasPrefix("*")
        dayOfWeekRestricted = !fields[4].hasPrefix("*")
    }

    private static func field(_ text: String, name: String, _ bounds: ClosedRange<Int>) throws(ScheduleError) -> Set<Int> {
        var values = Set<Int>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, !parts[0].isEmpty else { throw ScheduleError("\(name) field \"\(text)\": bad item \"\(item)\"") }
            var step = 1
            if parts.count == 2 {
                guard let s = Int(parts[1]), s > 0 else { throw ScheduleError("\(name) field \"\(text)\": bad step \"\(parts[1])\"") }
                step = s
            }
            let range: ClosedRange<Int>
            if parts[0] == "*" {
                range = bounds
            } else {
                let ends = parts[0].split(separator: "-", omittingEmptySubsequences: false)
                guard ends.count <= 2, let low = Int(ends[0]), let high = Int(ends.last!) else {
                    throw ScheduleError("\(name) field \"\(text)\": \"\(parts[0])\" is not a number or range")
                }
                guard bounds.contains(low), bounds.contains(high) else {
                    throw ScheduleError("\(name) field \"\(text)\": \(parts[0]) is outside \(bounds.lowerBound)-\(bounds.upperBound)")
                }
                guard low <= high else { throw ScheduleError("\(name) field \"\(text)\": range \(parts[0]) runs backwards") }
                // `5/15` means from 5 to the end, every 15, as in Vixie cron.
                range = ends.count == 1 && parts.count == 2 ? low...bounds.upperBound : low...high
            }
            values.formUnion(stride(from: range.lowerBound, through: range.upperBound, by: step))
        }
        return values
    }

    private static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// The first time strictly after `date` (whole minutes, UTC) the schedule fires;
    /// nil if it never does (e.g. `0 0 31 2 *`).
    public func next(after date: Date) -> Date? {
        let calendar = Self.utc
        // UTC has no DST, so hours and days are fixed lengths of seconds.
        var t = floor(date.timeIntervalSince1970 / 60) * 60 + 60
        let limit = t + 8 * 366 * 86_400 // leap days recur within 8 years; no match by then means never
        while t <= limit {
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: Date(timeIntervalSince1970: t))
            if !months.contains(c.month!) {
                t = calendar.date(from: DateComponents(year: c.year, month: c.month! + 1, day: 1))!.timeIntervalSince1970
            } else if !dayMatches(day: c.day!, weekday: c.weekday! - 1) {
                t = floor(t / 86_400) * 86_400 + 86_400
            } else if !hours.contains(c.hour!) {
                t = floor(t / 3600) * 3600 + 3600
            } else if !minutes.contains(c.minute!) {
                t += 60
            } else {
                return Date(timeIntervalSince1970: t)
            }
        }
        return nil
    }

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        switch (dayOfMonthRestricted, dayOfWeekRestricted) {
        case (true, true): daysOfMonth.contains(day) || daysOfWeek.contains(weekday)
        case (true, false): daysOfMonth.contains(day)
        case (false, true): daysOfWeek.contains(weekday)
        case (false, false): true
        }
    }
}

/// A schedule expression that cannot be parsed.
public struct ScheduleError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
