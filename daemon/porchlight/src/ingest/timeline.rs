//! Mapping a camera's RTP clock to UTC.
//!
//! Camera clocks drift and their wall-clock time is often wrong, but the RTP
//! clock is smooth. We anchor the RTP clock to our own clock at the first
//! frame, then let the anchor follow our clock by at most 500 ppm of elapsed
//! media time. Frames only ever arrive *after* they were captured, so the
//! smallest arrival lag in a GOP is the best estimate of the true offset.
//! A jump beyond [`MAX_SLEW_US`] (camera reboot, our clock stepped) re-anchors.

/// Largest correction rate, in parts per million of media time.
const MAX_PPM: i64 = 500;

/// Beyond this disagreement the timeline re-anchors instead of slewing.
pub const MAX_SLEW_US: i64 = 5_000_000;

#[derive(Debug)]
pub struct Timeline {
    clock_rate: i64,
    anchor_media: i64,
    anchor_utc_us: i64,
    last_adjust_media: i64,
    /// Smallest (arrival - predicted) seen since the last adjustment.
    min_lag_us: Option<i64>,
}

/// What [`Timeline::adjust`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Adjustment {
    Slewed(i64),
    /// The clocks disagreed by more than [`MAX_SLEW_US`]; times restart here.
    Reanchored,
}

impl Timeline {
    pub fn new(clock_rate: u32, first_media: i64, arrival_utc_us: i64) -> Timeline {
        Timeline {
            clock_rate: i64::from(clock_rate.max(1)),
            anchor_media: first_media,
            anchor_utc_us: arrival_utc_us,
            last_adjust_media: first_media,
            min_lag_us: None,
        }
    }

    /// The UTC time (µs) of a media timestamp.
    pub fn utc_us(&self, media: i64) -> i64 {
        let delta = i128::from(media - self.anchor_media) * 1_000_000 / i128::from(self.clock_rate);
        self.anchor_utc_us + delta as i64
    }

    /// Notes when a frame with this timestamp arrived.
    pub fn observe(&mut self, media: i64, arrival_utc_us: i64) {
        let lag = arrival_utc_us - self.utc_us(media);
        self.min_lag_us = Some(self.min_lag_us.map_or(lag, |m| m.min(lag)));
    }

    /// Moves the anchor toward the observed arrivals, within the slew limit.
    /// Call once per GOP, at `media` (the next fragment's start).
    pub fn adjust(&mut self, media: i64) -> Adjustment {
        let Some(lag) = self.min_lag_us.take() else {
            return Adjustment::Slewed(0);
        };
        if lag.abs() > MAX_SLEW_US {
            let utc = self.utc_us(media) + lag;
            self.anchor_media = media;
            self.anchor_utc_us = utc;
            self.last_adjust_media = media;
            return Adjustment::Reanchored;
        }
        let elapsed_us = (media - self.last_adjust_media).max(0) * 1_000_000 / self.clock_rate;
        let max_step = elapsed_us * MAX_PPM / 1_000_000;
        let step = lag.clamp(-max_step, max_step);
        // Re-anchor at `media` so earlier frames keep the times they were given.
        self.anchor_utc_us = self.utc_us(media) + step;
        self.anchor_media = media;
        self.last_adjust_media = media;
        Adjustment::Slewed(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_camera_keeps_its_anchor() {
        let mut t = Timeline::new(90_000, 0, 1_000_000);
        for frame in 0..300i64 {
            let media = frame * 3000;
            t.observe(media, 1_000_000 + frame * 33_333 + 2_000);
            if frame % 30 == 29 {
                t.adjust(media + 3000);
            }
        }
        // 10 s later, predicted time is within the slew allowance of truth.
        assert!((t.utc_us(300 * 3000) - 11_000_000).abs() <= 10 * 500 + 2_000);
    }

    #[test]
    fn fast_camera_clock_is_corrected_at_most_500_ppm() {
        // The camera's clock runs 1000 ppm fast: its timestamps advance more
        // than real time, so frames arrive "early" relative to prediction.
        let mut t = Timeline::new(90_000, 0, 0);
        let mut last = 0;
        for second in 1..=100i64 {
            let media = second * 90_090; // 1.001 s of camera time per real second
            t.observe(media, second * 1_000_000);
            if let Adjustment::Slewed(step) = t.adjust(media) {
                assert!(step.abs() <= 501, "step {step}");
                last = step;
            }
        }
        assert!(last < 0, "anchor must move earlier, got {last}");
    }

    #[test]
    fn big_jump_reanchors() {
        let mut t = Timeline::new(90_000, 0, 0);
        t.observe(90_000, 60_000_000);
        assert_eq!(t.adjust(90_000), Adjustment::Reanchored);
        assert_eq!(t.utc_us(90_000), 60_000_000);
    }
}
