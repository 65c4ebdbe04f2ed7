//! `porchlight audit show`: entries as a table for people, or JSON lines.

use std::fmt::Write as _;

use super::event::{AuditEntry, IdentityKind, OutcomeKind};
use crate::time::format_utc_us;

/// `--since`: an RFC 3339 time, or a duration back from `now_us` (`24h`, `7d`).
pub fn parse_since(text: &str, now_us: i64) -> Result<i64, String> {
    if let Ok(utc_us) = crate::time::parse_utc_us(text) {
        return Ok(utc_us);
    }
    match crate::config::units::parse_duration(text) {
        Ok(ago) => Ok(now_us.saturating_sub(i64::try_from(ago.as_micros()).unwrap_or(i64::MAX))),
        Err(_) => Err(format!(
            "`{text}` is neither an RFC 3339 time (2026-11-23T21:04:05Z) nor a duration (24h, 7d)"
        )),
    }
}

pub const TABLE_HEADER: &str =
    "SEQ     TIME (UTC)                   COMPONENT  EVENT             WHO / WHAT / OUTCOME";

/// One line per entry: seq, time, component, event, then who, what and how
/// it ended, leaving out what is empty.
pub fn table_row(entry: &AuditEntry) -> String {
    let event = &entry.event;
    let mut line = format!(
        "{:<7} {:<28} {:<10} {:<17} {}",
        entry.seq,
        format_utc_us(entry.time_us),
        event.component,
        event.event,
        who(entry),
    );
    let object = &event.object;
    if let Some(request) = &object.request_id {
        let _ = write!(line, "  request {request}");
    }
    if let Some(camera) = &object.camera {
        let _ = write!(line, "  camera {camera}");
    }
    if let (Some(from), Some(to)) = (object.window_from_us, object.window_to_us) {
        let _ = write!(line, "  {}..{}", format_utc_us(from), format_utc_us(to));
    }
    if event.bytes_served > 0 {
        let _ = write!(line, "  {} bytes", event.bytes_served);
    }
    if event.outcome.result != OutcomeKind::Ok || event.outcome.reason.is_some() {
        let _ = write!(line, "  => {}", event.outcome.result);
        if let Some(reason) = &event.outcome.reason {
            let _ = write!(line, ": {reason}");
        }
    }
    line
}

fn who(entry: &AuditEntry) -> String {
    let identity = &entry.event.identity;
    let mut text = identity.kind.to_string();
    match identity.kind {
        IdentityKind::Owner => {
            if let Some(user) = &identity.owner_user {
                let _ = write!(text, " {user}");
            }
        }
        _ => {
            for part in [&identity.agency, &identity.officer].into_iter().flatten() {
                let _ = write!(text, " {part}");
            }
            if let Some(fingerprint) = &identity.cert_fingerprint {
                let _ = write!(text, " (cert {fingerprint})");
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, Component, EventType, Identity, Outcome};

    #[test]
    fn since_takes_a_time_or_a_duration_back() {
        let now = 1_700_000_000_000_000;
        assert_eq!(parse_since("24h", now), Ok(now - 86_400_000_000));
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z", 0),
            Ok(1_700_000_000_000_000)
        );
        assert!(parse_since("last tuesday", now)
            .unwrap_err()
            .contains("last tuesday"));
    }

    #[test]
    fn rows_say_who_what_and_how_it_ended() {
        let entry = AuditEntry {
            seq: 12,
            time_us: 1_700_000_000_000_000,
            event: AuditEvent::new(
                Component::Relay,
                EventType::Denial,
                Identity::agency("Dallas PD", Some("4711"), None),
            )
            .request("R9")
            .camera("porch")
            .outcome(Outcome::refused("owner said no")),
            prev_hash: String::new(),
            entry_hash: String::new(),
        };
        let row = table_row(&entry);
        for part in [
            "12",
            "2023-11-14T22:13:20Z",
            "relay",
            "denial",
            "agency Dallas PD 4711",
            "request R9",
            "camera porch",
            "=> refused: owner said no",
        ] {
            assert!(row.contains(part), "{part:?} missing from {row:?}");
        }
    }
}
