//! Wall-clock helpers. Stored times are UTC microseconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in UTC microseconds since the epoch.
pub fn now_utc_us() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// RFC 3339 rendering for APIs and logs.
pub fn format_utc_us(utc_us: i64) -> String {
    let nanos = i128::from(utc_us) * 1000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{utc_us}us"))
}
