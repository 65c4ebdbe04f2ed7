//! The reliability suite's shared pieces: the scale knob (small in CI, long
//! on demand), figures printed in one greppable form, the daemon's memory
//! from /proc, and a least-squares slope.

use std::time::Duration;

/// `PORCHLIGHT_RELIABILITY=long` turns the reliability tests into the long
/// run (`scripts/reliability.sh`); anything else, or nothing, is CI scale.
pub fn long_run() -> bool {
    std::env::var("PORCHLIGHT_RELIABILITY").is_ok_and(|v| v == "long")
}

/// `ci` at CI scale, `long` in the long run.
pub fn scaled<T>(ci: T, long: T) -> T {
    if long_run() {
        long
    } else {
        ci
    }
}

/// Prints one measured figure as `RELIABILITY <check>: <what> = <value>`,
/// the lines `scripts/reliability.sh` collects for the README.
pub fn figure(check: &str, what: &str, value: impl std::fmt::Display) {
    eprintln!(
        "RELIABILITY {check} [{}]: {what} = {value}",
        scaled("ci", "long")
    );
}

/// Resident memory of a process in KiB (VmRSS), if it is still there.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Least-squares slope of `(x, y)` points (y per unit of x); 0 for fewer
/// than two distinct x.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return 0.0;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    sxy / sxx
}

/// A random pause in `[low, high)`, for kills and flaps at uneven times.
pub fn random_between(low: Duration, high: Duration) -> Duration {
    use rand::Rng;
    rand::rng().random_range(low..high)
}
