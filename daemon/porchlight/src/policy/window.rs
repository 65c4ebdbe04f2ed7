//! A span of recorded time, as the store and export count it.

use std::time::Duration;

use serde::Serialize;

/// A half-open UTC time range `[from_us, to_us)` in microseconds since the
/// epoch (the unit of the store's index and of `crate::time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct TimeWindow {
    pub from_us: i64,
    pub to_us: i64,
}

impl TimeWindow {
    /// Length in microseconds (0 for an empty or inverted window).
    pub fn len_us(&self) -> i64 {
        self.to_us.saturating_sub(self.from_us).max(0)
    }

    /// Whether `self` lies entirely inside `outer`.
    pub fn is_within(&self, outer: &TimeWindow) -> bool {
        outer.from_us <= self.from_us && self.to_us <= outer.to_us
    }

    /// The window cut to at most `max` long, keeping its start: the start of
    /// a request is the incident's earliest moment of interest.
    pub fn clipped_to(&self, max: Duration) -> TimeWindow {
        let max_us = duration_us(max);
        TimeWindow {
            from_us: self.from_us,
            to_us: self.from_us.saturating_add(self.len_us().min(max_us)),
        }
    }
}

/// A duration in whole microseconds, saturating (config durations fit easily).
pub(crate) fn duration_us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_the_start_and_never_grows() {
        let w = TimeWindow {
            from_us: 1_000,
            to_us: 10_000_000,
        };
        let c = w.clipped_to(Duration::from_secs(1));
        assert_eq!(
            c,
            TimeWindow {
                from_us: 1_000,
                to_us: 1_001_000
            }
        );
        assert!(c.is_within(&w));
        assert_eq!(w.clipped_to(Duration::from_secs(3600)), w);
        let inverted = TimeWindow {
            from_us: 5,
            to_us: 1,
        };
        assert_eq!(inverted.len_us(), 0);
        assert_eq!(inverted.clipped_to(Duration::from_secs(1)).len_us(), 0);
    }
}
