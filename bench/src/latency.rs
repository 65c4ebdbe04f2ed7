//! Per-call latency samples and their percentiles, shared by the in-process
//! benchmark (`--decide`) and the HTTPS round trip over mutual TLS
//! (`--relay`), so both print comparable figures.

use std::time::{Duration, Instant};

/// Percentiles of one set of samples.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    /// Sorts `samples` in place and summarises them (nearest-rank percentiles).
    pub fn of(samples: &mut [Duration]) -> Summary {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let rank = |p: f64| {
            let index = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[index.clamp(1, samples.len()) - 1]
        };
        Summary {
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: samples[samples.len() - 1],
        }
    }
}

/// Times `call(i)` once per sample, for `i` in `0..samples`, each call on
/// its own (so p99 sees the slow calls, not an average hiding them). The
/// result goes through `black_box` so the optimiser cannot drop the work.
pub fn time_each<T>(samples: usize, mut call: impl FnMut(usize) -> T) -> Summary {
    let mut durations = Vec::with_capacity(samples);
    for i in 0..samples {
        let started = Instant::now();
        let result = call(i);
        let elapsed = started.elapsed();
        std::hint::black_box(result);
        durations.push(elapsed);
    }
    Summary::of(&mut durations)
}

/// A duration in the unit that reads best: ns below 10 µs, else µs, else ms.
pub fn show(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.2} ms", ns as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_nanos).collect();
        let summary = Summary::of(&mut samples);
        assert_eq!(summary.p50, Duration::from_nanos(50));
        assert_eq!(summary.p90, Duration::from_nanos(90));
        assert_eq!(summary.p99, Duration::from_nanos(99));
        assert_eq!(summary.max, Duration::from_nanos(100));
        let one = Summary::of(&mut [Duration::from_nanos(7)]);
        assert_eq!(
            (one.p50, one.p99),
            (Duration::from_nanos(7), Duration::from_nanos(7))
        );
        assert_eq!(show(Duration::from_nanos(950)), "950 ns");
        assert_eq!(show(Duration::from_micros(25)), "25.0 µs");
    }
}
