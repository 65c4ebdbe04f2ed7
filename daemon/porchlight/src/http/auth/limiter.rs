//! Login rate limiting: failed logins are counted per client address and
//! per user name. The first few are free; after that each further try
//! must wait, twice as long each time (capped). A success clears both.
//! Guessing a user's password from many addresses still hits the per-name
//! limit; the local CLI token is never limited, so the owner is not locked
//! out of their own box.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before waiting starts.
pub const FREE_FAILURES: u32 = 5;
/// The first wait; doubles with each further failure.
const FIRST_WAIT: Duration = Duration::from_secs(30);
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
const MAX_KEYS: usize = 10_000;

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Default)]
pub struct LoginLimiter {
    keys: Mutex<HashMap<String, Failures>>,
}

impl LoginLimiter {
    /// `Err(wait)` when any of `keys` must wait before trying again.
    pub fn check(&self, keys: &[String]) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let wait = keys
            .iter()
            .filter_map(|k| map.get(k)?.blocked_until)
            .filter_map(|until| until.checked_duration_since(now))
            .max();
        match wait {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    /// Counts a failed login against every key.
    pub fn failed(&self, keys: &[String]) {
        let now = Instant::now();
        let mut map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, f| {
                f.blocked_until.is_some_and(|u| u > now)
                    || now.duration_since(f.last) < FORGET_AFTER
            });
        }
        for key in keys {
            let entry = map.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
                blocked_until: None,
            });
            if now.duration_since(entry.last) > FORGET_AFTER {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last = now;
            if entry.count >= FREE_FAILURES {
                let doublings = (entry.count - FREE_FAILURES).min(10);
                entry.blocked_until =
                    Some(now + (FIRST_WAIT * 2u32.pow(doublings)).min(LONGEST_WAIT));
            }
        }
    }

    /// A good login: the keys start afresh.
    pub fn succeeded(&self, keys: &[String]) {
        let mut map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_starts_after_the_free_failures_and_doubles() {
        let limiter = LoginLimiter::default();
        let keys = vec!["ip:10.0.0.9".to_string(), "user:alice".to_string()];
        for _ in 0..FREE_FAILURES - 1 {
            limiter.failed(&keys);
            assert!(limiter.check(&keys).is_ok());
        }
        limiter.failed(&keys);
        let first = limiter.check(&keys).unwrap_err();
        assert!(first > Duration::from_secs(25) && first <= FIRST_WAIT);
        limiter.failed(&keys);
        let second = limiter.check(&keys).unwrap_err();
        assert!(second > Duration::from_secs(55), "{second:?}");
        // The same name from elsewhere waits too; another name does not.
        assert!(limiter
            .check(&["ip:10.0.0.10".into(), "user:alice".into()])
            .is_err());
        assert!(limiter
            .check(&["ip:10.0.0.10".into(), "user:bob".into()])
            .is_ok());
        limiter.succeeded(&keys);
        assert!(limiter.check(&keys).is_ok());
    }
}
