//! Entry points for the `cargo fuzz` targets in `fuzz/` (docs/fuzzing.md).
//! Not an API: each one only makes a crate-private step reachable so the
//! fuzzers run the daemon's own code rather than a copy of it.

use std::path::Path;

use crate::config::{Config, ConfigError};
use crate::store::index::FragmentRow;

/// Config parsing and validation exactly as `Config::parse` does it, except
/// that the environment is never read (so a run does not depend on it).
pub fn parse_config(text: &str, base_dir: Option<&Path>) -> Result<Config, ConfigError> {
    crate::config::parse_with_env(text, base_dir, &|_| None)
}

/// The index rows start-up recovery writes for a scanned segment file.
pub fn recovered_fragment_rows(
    segment_id: i64,
    segment_start_utc_us: i64,
    video_timescale: u32,
    fragments: &[porchlight_mp4::ScannedFragment],
) -> Vec<FragmentRow> {
    crate::store::recovery::fragment_rows(
        segment_id,
        segment_start_utc_us,
        video_timescale,
        fragments,
    )
}
