//! When to try a camera again after its session ended.
//!
//! A camera that was streaming a moment ago has most likely blipped (a
//! reboot, a Wi-Fi drop, a PoE switch flapping): it should be recording
//! again within a second of coming back, so for a while after it last
//! streamed we retry at least twice a second. A camera that has been dead
//! for longer costs one attempt every couple of seconds. Wrong credentials
//! are retried slowly so a wrong password never locks the account.

use std::time::{Duration, Instant};

/// The first wait after a failure; doubles from there.
pub const FIRST_RETRY: Duration = Duration::from_millis(200);
/// Longest wait while the camera streamed within [`RECENTLY_STREAMING`]:
/// with ±20% jitter a returning camera is retried within 0.6 s.
pub const QUICK_RETRY_CAP: Duration = Duration::from_millis(500);
/// Longest wait for a camera that has not streamed for a while.
pub const MAX_RETRY: Duration = Duration::from_secs(2);
/// Wait after a 401.
pub const AUTH_RETRY: Duration = Duration::from_secs(30);
/// How long after its last frames a camera still counts as "just blipped".
pub const RECENTLY_STREAMING: Duration = Duration::from_secs(60);

/// Reconnect delays of one stream.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    last_streamed: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: FIRST_RETRY,
            last_streamed: None,
        }
    }
}

impl Backoff {
    /// Starts over (the owner switched recording back on).
    pub fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }

    /// A session ended at `now`; `streamed` says whether it delivered
    /// video. Returns how long to wait before the next attempt (before
    /// jitter).
    pub fn after_session(&mut self, streamed: bool, now: Instant) -> Duration {
        if streamed {
            self.last_streamed = Some(now);
            self.next = FIRST_RETRY;
        }
        let recently = self
            .last_streamed
            .is_some_and(|at| now.saturating_duration_since(at) < RECENTLY_STREAMING);
        let cap = if recently { QUICK_RETRY_CAP } else { MAX_RETRY };
        let wait = self.next.min(cap);
        self.next = (self.next * 2).min(MAX_RETRY);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_that_never_streamed_backs_off_to_two_seconds() {
        let mut b = Backoff::default();
        let now = Instant::now();
        let waits: Vec<_> = (0..6).map(|_| b.after_session(false, now)).collect();
        assert_eq!(
            waits,
            [200, 400, 800, 1600, 2000, 2000].map(Duration::from_millis)
        );
    }

    #[test]
    fn a_camera_that_just_streamed_is_retried_at_least_twice_a_second() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert_eq!(b.after_session(true, t0), FIRST_RETRY);
        // Down for a while: failures keep coming, the wait stays capped.
        for i in 1..100 {
            let wait = b.after_session(false, t0 + Duration::from_millis(500 * i));
            assert!(wait <= QUICK_RETRY_CAP, "{wait:?}");
        }
        // A minute after its last frames it counts as dead.
        assert_eq!(
            b.after_session(false, t0 + RECENTLY_STREAMING + Duration::from_secs(1)),
            MAX_RETRY
        );
        // Back, streaming again: quick retries once more.
        let later = t0 + Duration::from_secs(120);
        assert_eq!(b.after_session(true, later), FIRST_RETRY);
        assert_eq!(
            b.after_session(false, later + Duration::from_secs(1)),
            Duration::from_millis(400)
        );
    }
}
