//! When a camera's sharing level applies: weekly windows in the owner's
//! local time ("nights only", "weekdays 08:00-18:00").
//!
//! A window belongs to the day it starts on: `fri 22:00-06:00` covers Friday
//! night into Saturday morning. Outside every window the camera falls back to
//! a lower level (by default `off`).

use std::fmt;

use jiff::tz::TimeZone;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

const MINUTES_PER_DAY: u16 = 24 * 60;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A set of weekdays; bit 0 is Monday.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Weekdays(u8);

impl Weekdays {
    pub const EVERY_DAY: Weekdays = Weekdays(0b111_1111);

    /// Whether the day with this Monday-is-0 index is in the set.
    pub fn contains(self, monday_zero: u8) -> bool {
        monday_zero < 7 && self.0 & (1 << monday_zero) != 0
    }

    /// The days as Monday-is-0 indices.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..7).filter(move |&d| self.contains(d))
    }

    /// A set from Monday-is-0 indices (out-of-range indices are ignored).
    pub fn from_days(days: impl IntoIterator<Item = u8>) -> Weekdays {
        Weekdays(
            days.into_iter()
                .filter(|&d| d < 7)
                .fold(0, |bits, d| bits | (1 << d)),
        )
    }

    /// Parses one entry: `"mon"`, `"monday"`, a range `"mon-fri"` (may wrap,
    /// as in `"fri-mon"`), or `"daily"`.
    pub fn parse(text: &str) -> Result<Weekdays, String> {
        let entry = text.trim().to_ascii_lowercase();
        if entry == "daily" {
            return Ok(Weekdays::EVERY_DAY);
        }
        match entry.split_once('-') {
            None => day_index(&entry).map(|d| Weekdays(1 << d)),
            Some((first, last)) => {
                let (first, last) = (day_index(first.trim())?, day_index(last.trim())?);
                let span = (last + 7 - first) % 7;
                Ok(Weekdays::from_days((0..=span).map(|i| (first + i) % 7)))
            }
        }
    }
}

fn day_index(name: &str) -> Result<u8, String> {
    DAY_NAMES
        .iter()
        .position(|short| name == *short || (name.len() > 3 && long_name(short) == name))
        .map(|i| i as u8)
        .ok_or_else(|| {
            format!("unknown day `{name}` (use mon, tue, wed, thu, fri, sat, sun, a range such as \"mon-fri\", or \"daily\")")
        })
}

fn long_name(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

impl fmt::Display for Weekdays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(|d| DAY_NAMES[usize::from(d)]).collect();
        f.write_str(&names.join(","))
    }
}

/// Accepts `"mon-fri"` or `["sat", "sun"]` (each entry as [`Weekdays::parse`]).
impl<'de> Deserialize<'de> for Weekdays {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DaysVisitor;
        impl<'de> Visitor<'de> for DaysVisitor {
            type Value = Weekdays;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("days such as \"mon-fri\" or [\"sat\", \"sun\"]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Weekdays, E> {
                Weekdays::parse(v).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Weekdays, A::Error> {
                let mut bits = 0;
                while let Some(entry) = seq.next_element::<String>()? {
                    bits |= Weekdays::parse(&entry).map_err(de::Error::custom)?.0;
                }
                if bits == 0 {
                    return Err(de::Error::custom("list at least one day"));
                }
                Ok(Weekdays(bits))
            }
        }
        d.deserialize_any(DaysVisitor)
    }
}

/// A local wall-clock time, in minutes since midnight; `24:00` (1440) is the
/// end of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    pub fn from_minutes(minutes: u16) -> Option<TimeOfDay> {
        (minutes <= MINUTES_PER_DAY).then_some(TimeOfDay(minutes))
    }

    pub fn minutes(self) -> u16 {
        self.0
    }

    /// Parses `"HH:MM"` (00:00 to 24:00).
    pub fn parse(text: &str) -> Result<TimeOfDay, String> {
        let bad = || format!("`{text}` is not a time of day such as \"22:00\" (00:00 to 24:00)");
        let (hours, minutes) = text.trim().split_once(':').ok_or_else(bad)?;
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(hours) || !two_digits(minutes) {
            return Err(bad());
        }
        let hours: u16 = hours.parse().map_err(|_| bad())?;
        let minutes: u16 = minutes.parse().map_err(|_| bad())?;
        if minutes >= 60 {
            return Err(bad());
        }
        TimeOfDay::from_minutes(hours * 60 + minutes).ok_or_else(bad)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TimeOfDay::parse(&text).map_err(de::Error::custom)
    }
}

/// One weekly window: on each of `days`, from `start` to `end` local time.
/// `end` before `start` crosses midnight into the next day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleWindow {
    days: Weekdays,
    start: TimeOfDay,
    end: TimeOfDay,
}

impl ScheduleWindow {
    /// A window; `start == end` is refused as ambiguous (empty or all day?):
    /// write `00:00`-`24:00` for a whole day.
    pub fn new(days: Weekdays, start: TimeOfDay, end: TimeOfDay) -> Result<ScheduleWindow, String> {
        if start == end {
            return Err(format!(
                "`from` and `to` are both {start}: write \"00:00\" to \"24:00\" for a whole day"
            ));
        }
        if start.minutes() == MINUTES_PER_DAY {
            return Err("`from` cannot be 24:00 (use 00:00 of the next day)".into());
        }
        if days.0 == 0 {
            return Err("list at least one day".into());
        }
        Ok(ScheduleWindow { days, start, end })
    }

    pub fn days(&self) -> Weekdays {
        self.days
    }

    pub fn start(&self) -> TimeOfDay {
        self.start
    }

    pub fn end(&self) -> TimeOfDay {
        self.end
    }

    /// Whether local weekday `day` (Monday is 0) at `minute` past midnight
    /// falls inside this window.
    fn covers(&self, day: u8, minute: u16) -> bool {
        let (start, end) = (self.start.minutes(), self.end.minutes());
        if start < end {
            self.days.contains(day) && (start..end).contains(&minute)
        } else {
            // Crosses midnight: the evening part belongs to `day`, the
            // morning part to the day before.
            let yesterday = (day + 6) % 7;
            (self.days.contains(day) && minute >= start)
                || (self.days.contains(yesterday) && minute < end)
        }
    }
}

impl fmt::Display for ScheduleWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}-{}", self.days, self.start, self.end)
    }
}

/// A non-empty set of weekly windows in the owner's time zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    windows: Vec<ScheduleWindow>,
}

impl Schedule {
    /// A schedule; at least one window (an empty one would never apply,
    /// which is better said with `sharing = "off"`).
    pub fn new(windows: Vec<ScheduleWindow>) -> Result<Schedule, String> {
        if windows.is_empty() {
            return Err(
                "list at least one window, or leave `schedule` out to share at all times".into(),
            );
        }
        Ok(Schedule { windows })
    }

    pub fn windows(&self) -> &[ScheduleWindow] {
        &self.windows
    }

    /// Whether the instant `utc_us` (µs since the epoch) falls in a window,
    /// read on the wall clock of `tz`. Instants jiff cannot represent
    /// (beyond year ±9999) are outside every window.
    pub fn is_active(&self, tz: &TimeZone, utc_us: i64) -> bool {
        let Ok(instant) = jiff::Timestamp::from_microsecond(utc_us) else {
            return false;
        };
        let local = tz.to_datetime(instant);
        let day = local.weekday().to_monday_zero_offset() as u8;
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        self.windows.iter().any(|w| w.covers(day, minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &str, from: &str, to: &str) -> ScheduleWindow {
        ScheduleWindow::new(
            Weekdays::parse(days).expect("days"),
            TimeOfDay::parse(from).expect("from"),
            TimeOfDay::parse(to).expect("to"),
        )
        .expect("window")
    }

    fn at(text: &str) -> i64 {
        crate::time::parse_utc_us(text).expect("time")
    }

    #[test]
    fn days_parse_as_names_ranges_and_lists() {
        assert_eq!(Weekdays::parse("mon-fri"), Ok(Weekdays(0b001_1111)));
        assert_eq!(Weekdays::parse("Saturday"), Ok(Weekdays(0b010_0000)));
        assert_eq!(
            Weekdays::parse("fri-mon").map(|d| d.to_string()),
            Ok("mon,fri,sat,sun".into())
        );
        assert_eq!(Weekdays::parse("daily"), Ok(Weekdays::EVERY_DAY));
        assert!(Weekdays::parse("funday").unwrap_err().contains("funday"));
        assert!(Weekdays::parse("mon-").is_err());
        let list: Weekdays = serde_json::from_str(r#"["sat","sun"]"#).expect("list");
        assert_eq!(list.to_string(), "sat,sun");
        assert!(serde_json::from_str::<Weekdays>("[]").is_err());
    }

    #[test]
    fn times_of_day_parse_strictly() {
        assert_eq!(TimeOfDay::parse("22:00").map(TimeOfDay::minutes), Ok(1320));
        assert_eq!(TimeOfDay::parse("24:00").map(TimeOfDay::minutes), Ok(1440));
        for bad in [
            "24:01", "7:00", "07:60", "0700", "", "aa:bb", "-1:00", "+1:00",
        ] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn equal_start_and_end_is_refused() {
        let t = TimeOfDay::parse("08:00").expect("time");
        assert!(ScheduleWindow::new(Weekdays::EVERY_DAY, t, t).is_err());
        assert!(Schedule::new(vec![]).is_err());
    }

    #[test]
    fn nights_cross_midnight_and_belong_to_their_start_day() {
        // Friday nights only, UTC.
        let s = Schedule::new(vec![window("fri", "22:00", "06:00")]).expect("schedule");
        let utc = TimeZone::UTC;
        // 2026-11-20 is a Friday.
        assert!(!s.is_active(&utc, at("2026-11-20T21:59:59Z")));
        assert!(s.is_active(&utc, at("2026-11-20T22:00:00Z")));
        assert!(
            s.is_active(&utc, at("2026-11-21T05:59:00Z")),
            "Saturday morning is Friday night"
        );
        assert!(!s.is_active(&utc, at("2026-11-21T06:00:00Z")));
        assert!(
            !s.is_active(&utc, at("2026-11-21T23:00:00Z")),
            "Saturday night is not"
        );
        assert!(
            !s.is_active(&utc, at("2026-11-20T03:00:00Z")),
            "Friday morning is Thursday night"
        );
    }

    #[test]
    fn whole_days_and_weekends() {
        let s = Schedule::new(vec![window("sat-sun", "00:00", "24:00")]).expect("schedule");
        let utc = TimeZone::UTC;
        assert!(s.is_active(&utc, at("2026-11-21T00:00:00Z")));
        assert!(s.is_active(&utc, at("2026-11-22T23:59:59Z")));
        assert!(!s.is_active(&utc, at("2026-11-23T00:00:00Z")));
    }

    #[test]
    fn windows_are_read_in_the_owners_time_zone() {
        let chicago = TimeZone::get("America/Chicago").expect("tz database");
        let s = Schedule::new(vec![window("daily", "22:00", "06:00")]).expect("schedule");
        // 23:00 in Chicago (CST, UTC-6) is 05:00 UTC the next day.
        assert!(s.is_active(&chicago, at("2026-11-24T05:00:00Z")));
        // 16:00 UTC is 10:00 in Chicago.
        assert!(!s.is_active(&chicago, at("2026-11-24T16:00:00Z")));
        // In summer (CDT, UTC-5) 22:30 local is 03:30 UTC.
        assert!(s.is_active(&chicago, at("2026-07-01T03:30:00Z")));
        assert!(
            !s.is_active(&chicago, at("2026-07-01T11:30:00Z")),
            "06:30 CDT"
        );
    }

    #[test]
    fn unrepresentable_instants_are_outside() {
        let s = Schedule::new(vec![window("daily", "00:00", "24:00")]).expect("schedule");
        assert!(!s.is_active(&TimeZone::UTC, i64::MAX));
        assert!(!s.is_active(&TimeZone::UTC, i64::MIN));
    }
}
