//! Per-caller limits for the relay: a fixed-window call rate limit, and a
//! throttle on how many refusals per caller are written to the audit log one
//! by one (the rest are counted and written as one summary), so a flood is
//! refused cheaply and still fully accounted for without filling the disk.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// Calls per minute per certificate.
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// `Ok` to go ahead, or `Err(seconds)` until the caller may try again.
    pub fn check(&self, caller: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let (start, count) = windows.entry(caller.to_string()).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= self.per_minute {
            let wait = WINDOW.saturating_sub(now.duration_since(*start));
            return Err(wait.as_secs().max(1));
        }
        *count += 1;
        Ok(())
    }
}

/// Callers tracked one by one before the rest share a bucket.
const MAX_CALLERS: usize = 1024;

/// How many audit entries one caller's refusals may produce one by one per minute.
const INDIVIDUAL_ENTRIES_PER_MINUTE: u32 = 20;

pub struct AuditThrottle {
    windows: Mutex<HashMap<String, ThrottleWindow>>,
}

struct ThrottleWindow {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

impl Default for AuditThrottle {
    fn default() -> Self {
        AuditThrottle::new()
    }
}

impl AuditThrottle {
    pub fn new() -> AuditThrottle {
        AuditThrottle {
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(n)`: write this event, noting `n` earlier ones only counted;
    /// `None`: count it for the next summary instead. Past a cap on callers
    /// tracked at once, new callers share one bucket, so memory stays bounded.
    pub fn admit(&self, caller: &str) -> Option<u64> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let caller = if windows.len() >= MAX_CALLERS && !windows.contains_key(caller) {
            "(many callers)"
        } else {
            caller
        };
        let window = windows.entry(caller.to_string()).or_insert(ThrottleWindow {
            start: now,
            logged: 0,
            suppressed: 0,
        });
        if now.duration_since(window.start) >= WINDOW {
            window.start = now;
            window.logged = 0;
        }
        if window.logged < INDIVIDUAL_ENTRIES_PER_MINUTE {
            window.logged += 1;
            Some(std::mem::take(&mut window.suppressed))
        } else {
            window.suppressed += 1;
            None
        }
    }

    /// Counts not yet written, per caller, for a periodic summary entry.
    pub fn drain(&self) -> Vec<(String, u64)> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let drained = windows
            .iter_mut()
            .filter(|(_, w)| w.suppressed > 0)
            .map(|(caller, w)| (caller.clone(), std::mem::take(&mut w.suppressed)))
            .collect();
        let now = Instant::now();
        windows.retain(|_, w| now.duration_since(w.start) < WINDOW || w.suppressed > 0);
        drained
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_refuses_past_the_budget_per_caller() {
        let limiter = RateLimiter::new(3);
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        let wait = limiter.check("a").expect_err("fourth call refused");
        assert!((1..=60).contains(&wait));
        assert!(limiter.check("b").is_ok(), "other callers are not affected");
    }

    #[test]
    fn every_refusal_is_either_logged_or_counted() {
        let throttle = AuditThrottle::new();
        let mut logged = 0;
        for _ in 0..100 {
            if throttle.admit("x").is_some() {
                logged += 1;
            }
        }
        let counted: u64 = throttle.drain().into_iter().map(|(_, n)| n).sum();
        assert_eq!(logged, INDIVIDUAL_ENTRIES_PER_MINUTE as u64);
        assert_eq!(logged + counted, 100);
        assert!(throttle.drain().is_empty(), "counted once");
    }
}
