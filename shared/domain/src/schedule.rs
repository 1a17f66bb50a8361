//! When a monitor runs: AWS's schedule expressions, `rate(N minutes|hours|days)` and
//! `cron(minutes hours day-of-month month day-of-week year)`, evaluated in UTC.
//!
//! A rate counts from an anchor (when the monitor was created or its schedule last changed),
//! so runs do not drift however late each one starts. No schedule runs more often than every
//! [`MIN_INTERVAL_MINUTES`]: monitors are for trends, and every run is a whole job.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};

use crate::time::Millis;

pub const MIN_INTERVAL_MINUTES: i64 = 15;
const MINUTE_MS: Millis = 60_000;
/// How far ahead a cron expression is searched for its next run (a leap day plus the years
/// a year field may skip).
const SEARCH_DAYS: i64 = 5 * 366;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Every `minutes`, counted from the anchor.
    Rate {
        minutes: i64,
    },
    Cron(Box<Cron>),
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if let Some(body) = text.strip_prefix("rate(").and_then(|t| t.strip_suffix(')')) {
            return parse_rate(body);
        }
        if let Some(body) = text.strip_prefix("cron(").and_then(|t| t.strip_suffix(')')) {
            let cron = Cron::parse(body)?;
            let schedule = Schedule::Cron(Box::new(cron));
            schedule.check_interval()?;
            return Ok(schedule);
        }
        Err(format!(
            "{text:?} is not a schedule: use rate(N minutes|hours|days) with at least {MIN_INTERVAL_MINUTES} minutes, or an AWS cron(minutes hours day-of-month month day-of-week year) expression such as cron(0 6 * * ? *)"
        ))
    }

    /// The first run strictly after `after`; a rate counts whole periods from `anchor`.
    /// `None` when a cron expression has no run in the next five years.
    pub fn next_after(&self, after: Millis, anchor: Millis) -> Option<Millis> {
        match self {
            Schedule::Rate { minutes } => {
                let period = minutes * MINUTE_MS;
                if after < anchor {
                    return Some(anchor);
                }
                Some(anchor + ((after - anchor) / period + 1) * period)
            }
            Schedule::Cron(cron) => cron.next_after(after),
        }
    }

    /// A cron expression may not run more often than a rate may: its next runs from the
    /// start of 2001 (a year whose every weekday and month length repeats) are checked.
    fn check_interval(&self) -> Result<(), String> {
        let mut at = 978_307_200_000; // 2001-01-01T00:00:00Z
        let mut previous: Option<Millis> = None;
        for _ in 0..200 {
            let Some(next) = self.next_after(at, 0) else { break };
            if let Some(previous) = previous
                && next - previous < MIN_INTERVAL_MINUTES * MINUTE_MS
            {
                return Err(format!(
                    "runs more often than every {MIN_INTERVAL_MINUTES} minutes (a monitor's run is a whole job)"
                ));
            }
            previous = Some(next);
            at = next;
        }
        Ok(())
    }
}

fn parse_rate(body: &str) -> Result<Schedule, String> {
    let refuse = || format!("rate({body}) is not a rate: write rate(N minutes), rate(N hours) or rate(N days)");
    let (value, unit) = body.trim().split_once(' ').ok_or_else(refuse)?;
    let value: i64 = value.parse().ok().filter(|v| *v > 0).ok_or_else(refuse)?;
    let per = match unit.trim() {
        "minute" | "minutes" => 1,
        "hour" | "hours" => 60,
        "day" | "days" => 1_440,
        _ => return Err(refuse()),
    };
    let minutes = value
        .checked_mul(per)
        .filter(|m| *m <= 366 * 1_440)
        .ok_or_else(|| format!("rate({body}) is longer than a year"))?;
    if minutes < MIN_INTERVAL_MINUTES {
        return Err(format!("rate({body}) is too frequent: at least {MIN_INTERVAL_MINUTES} minutes"));
    }
    Ok(Schedule::Rate { minutes })
}

/// An AWS cron expression: the values each field allows. Day of month and day of week: one of
/// them is `?` (any), as AWS requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days_of_month: Option<Vec<bool>>,
    months: Vec<bool>,
    /// Index 0 is Sunday (AWS's 1).
    days_of_week: Option<Vec<bool>>,
    years: Vec<bool>,
}

const YEAR_MIN: u32 = 1970;
const YEAR_MAX: u32 = 2199;
const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One field's name, range and the names its values may have.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

impl Cron {
    fn parse(body: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = body.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = parts[..] else {
            return Err(format!(
                "cron({body}) has {} fields: AWS cron expressions have six (minutes hours day-of-month month day-of-week year)",
                parts.len()
            ));
        };
        let field = |name, min, max, names| Field { name, min, max, names };
        let (dom, dow) = match (dom == "?", dow == "?") {
            (false, false) => {
                return Err(format!(
                    "cron({body}): one of day-of-month and day-of-week must be ? (AWS does not take both)"
                ));
            }
            (true, true) => return Err(format!("cron({body}): only one of day-of-month and day-of-week may be ?")),
            (true, false) => (None, Some(values(dow, &field("day-of-week", 1, 7, &DAYS))?)),
            (false, true) => (Some(values(dom, &field("day-of-month", 1, 31, &[]))?), None),
        };
        Ok(Cron {
            minutes: values(minutes, &field("minutes", 0, 59, &[]))?,
            hours: values(hours, &field("hours", 0, 23, &[]))?,
            days_of_month: dom,
            months: values(month, &field("month", 1, 12, &MONTHS))?,
            days_of_week: dow,
            years: values(year, &field("year", YEAR_MIN, YEAR_MAX, &[]))?,
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let year_ok = date.year() >= YEAR_MIN as i32 && self.years[(date.year() as u32 - YEAR_MIN) as usize];
        let month_ok = self.months[date.month0() as usize];
        let dom_ok = self.days_of_month.as_ref().is_none_or(|d| d[date.day0() as usize]);
        let dow_ok = self.days_of_week.as_ref().is_none_or(|d| d[date.weekday().num_days_from_sunday() as usize]);
        year_ok && month_ok && dom_ok && dow_ok
    }

    fn next_after(&self, after: Millis) -> Option<Millis> {
        // The first whole minute after `after`.
        let start = DateTime::<Utc>::from_timestamp_millis((after.div_euclid(MINUTE_MS) + 1) * MINUTE_MS)?;
        let first_day = start.date_naive();
        for offset in 0..SEARCH_DAYS {
            let date = first_day + Duration::days(offset);
            if !self.day_matches(date) {
                continue;
            }
            let from = if offset == 0 { start.hour() * 60 + start.minute() } else { 0 };
            let found = (from..24 * 60).find(|m| self.hours[(m / 60) as usize] && self.minutes[(m % 60) as usize]);
            if let Some(minute) = found {
                let time = date.and_hms_opt(minute / 60, minute % 60, 0)?;
                return Some(time.and_utc().timestamp_millis());
            }
        }
        None
    }
}

/// The values a field's text allows: `*`, a value, a range `a-b`, either with a step `/n`, or a
/// list of these; a month or day of week by name too.
fn values(text: &str, field: &Field) -> Result<Vec<bool>, String> {
    let span = (field.max - field.min + 1) as usize;
    let mut allowed = vec![false; span];
    let bad = |why: &str| format!("{}: {text:?} {why}", field.name);
    for part in text.split(',') {
        if part.contains(['L', 'W', '#']) && field.names.iter().all(|name| !part.to_ascii_uppercase().contains(name)) {
            return Err(bad("uses L, W or #, which speedbatch does not support: list the days instead"));
        }
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| bad("has a step that is not a positive whole number"))?,
            ),
            None => (part, 1),
        };
        let (low, high) = match range {
            "*" => (field.min, field.max),
            _ => match range.split_once('-') {
                Some((a, b)) => (
                    value(a, field).ok_or_else(|| bad("is not a valid range"))?,
                    value(b, field).ok_or_else(|| bad("is not a valid range"))?,
                ),
                None => {
                    let v = value(range, field)
                        .ok_or_else(|| bad(&format!("is not a value from {} to {}", field.min, field.max)))?;
                    // `a/n` is from a to the end of the range in steps of n.
                    (v, if part.contains('/') { field.max } else { v })
                }
            },
        };
        if low > high {
            return Err(bad("is a range whose start is after its end"));
        }
        for v in (low..=high).step_by(step as usize) {
            allowed[(v - field.min) as usize] = true;
        }
    }
    Ok(allowed)
}

fn value(text: &str, field: &Field) -> Option<u32> {
    let upper = text.to_ascii_uppercase();
    if let Some(i) = field.names.iter().position(|name| *name == upper) {
        return Some(field.min + i as u32);
    }
    text.parse::<u32>().ok().filter(|v| (field.min..=field.max).contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_rfc3339, rfc3339};

    fn at(text: &str) -> Millis {
        parse_rfc3339(text).unwrap()
    }

    fn next(schedule: &str, after: &str) -> String {
        rfc3339(Schedule::parse(schedule).unwrap().next_after(at(after), 0).unwrap())
    }

    #[test]
    fn a_rate_counts_whole_periods_from_its_anchor_so_late_runs_do_not_drift() {
        let schedule = Schedule::parse("rate(15 minutes)").unwrap();
        let anchor = at("2026-12-04T10:03:20Z");
        assert_eq!(rfc3339(schedule.next_after(anchor, anchor).unwrap()), "2026-12-04T10:18:20.000Z");
        // Ran 40 s late, or missed three runs in an outage: the next is still on the grid, once.
        assert_eq!(
            rfc3339(schedule.next_after(at("2026-12-04T10:19:00Z"), anchor).unwrap()),
            "2026-12-04T10:33:20.000Z"
        );
        assert_eq!(
            rfc3339(schedule.next_after(at("2026-12-04T11:10:00Z"), anchor).unwrap()),
            "2026-12-04T11:18:20.000Z"
        );
        assert_eq!(Schedule::parse("rate(1 hour)"), Ok(Schedule::Rate { minutes: 60 }));
        assert_eq!(Schedule::parse("rate(2 days)"), Ok(Schedule::Rate { minutes: 2_880 }));
    }

    #[test]
    fn cron_expressions_are_evaluated_in_utc() {
        assert_eq!(next("cron(0 6 * * ? *)", "2026-12-04T06:00:00Z"), "2026-12-05T06:00:00.000Z");
        assert_eq!(next("cron(0 6 * * ? *)", "2026-12-04T05:59:59Z"), "2026-12-04T06:00:00.000Z");
        assert_eq!(next("cron(0/15 * * * ? *)", "2026-12-04T10:07:00Z"), "2026-12-04T10:15:00.000Z");
        assert_eq!(
            next("cron(30 9 ? * MON-FRI *)", "2026-12-04T10:00:00Z"),
            "2026-12-07T09:30:00.000Z",
            "Friday → Monday"
        );
        assert_eq!(next("cron(0 0 1 JAN,JUL ? *)", "2026-12-04T00:00:00Z"), "2027-01-01T00:00:00.000Z");
        assert_eq!(
            next("cron(0 12 29 2 ? *)", "2026-03-01T00:00:00Z"),
            "2028-02-29T12:00:00.000Z",
            "the next leap day"
        );
        assert_eq!(next("cron(0 8 ? * 1 2030)", "2026-12-04T00:00:00Z"), "2030-01-06T08:00:00.000Z", "1 is Sunday");
        assert_eq!(Schedule::parse("cron(0 0 1 1 ? 1999)").unwrap().next_after(at("2026-01-01T00:00:00Z"), 0), None);
    }

    #[test]
    fn a_bad_schedule_says_what_is_wrong() {
        for (text, says) in [
            ("every hour", "is not a schedule"),
            ("rate(5 minutes)", "too frequent: at least 15 minutes"),
            ("rate(0 hours)", "is not a rate"),
            ("rate(3 weeks)", "is not a rate"),
            ("rate(400 days)", "longer than a year"),
            ("cron(0 6 * * *)", "has 5 fields"),
            ("cron(0 6 * * MON *)", "one of day-of-month and day-of-week must be ?"),
            ("cron(0 6 ? * ? *)", "only one of day-of-month and day-of-week may be ?"),
            ("cron(60 6 * * ? *)", "minutes: \"60\" is not a value from 0 to 59"),
            ("cron(0 6 L * ? *)", "L, W or #"),
            ("cron(0 6 ? * 2#1 *)", "L, W or #"),
            ("cron(0 9-5 * * ? *)", "start is after its end"),
            ("cron(*/5 * * * ? *)", "more often than every 15 minutes"),
            ("cron(0,10 * * * ? *)", "more often than every 15 minutes"),
        ] {
            let err = Schedule::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
        assert!(Schedule::parse("cron(0,30 * * * ? *)").is_ok(), "every 30 minutes is allowed");
    }
}
