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

/// Parses an RFC 3339 time (`2026-11-23T21:04:05Z`, offsets allowed) to UTC µs.
pub fn parse_utc_us(text: &str) -> Result<i64, String> {
    let parsed =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                format!("`{text}` is not an RFC 3339 time such as 2026-11-23T21:04:05Z ({e})")
            })?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1000)
        .map_err(|_| format!("`{text}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let us = parse_utc_us("2026-11-23T21:04:05.25Z").expect("parses");
        assert_eq!(format_utc_us(us), "2026-11-23T21:04:05.25Z");
        assert_eq!(parse_utc_us("2026-11-23T22:04:05.25+01:00"), Ok(us));
        assert!(parse_utc_us("yesterday").unwrap_err().contains("yesterday"));
    }
}
