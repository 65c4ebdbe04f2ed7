//! What footage exists: spans and gaps for a range, hours covered per day.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::ExportError;
use crate::config::StreamKind;
use crate::time::format_utc_us;

/// Segments closer than this are one continuous span.
const JOIN_TOLERANCE_US: i64 = 1_000_000;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Span {
    pub from: String,
    pub to: String,
    #[serde(skip)]
    pub from_us: i64,
    #[serde(skip)]
    pub to_us: i64,
}

#[derive(Debug, Serialize)]
pub struct Coverage {
    pub camera: String,
    pub from: String,
    pub to: String,
    pub spans: Vec<Span>,
    pub gaps: Vec<Span>,
}

fn span(from_us: i64, to_us: i64) -> Span {
    Span {
        from: format_utc_us(from_us),
        to: format_utc_us(to_us),
        from_us,
        to_us,
    }
}

/// (start, end) of each segment overlapping the range, oldest first.
fn segments(
    conn: &Connection,
    camera: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(i64, i64)>, ExportError> {
    super::ensure_camera(conn, camera)?;
    let mut stmt = conn.prepare(
        "SELECT s.start_utc_us, s.end_utc_us FROM segments s JOIN streams st ON st.id = s.stream_id
         WHERE st.camera = ?1 AND st.kind = ?2 AND s.start_utc_us < ?4 AND s.end_utc_us > ?3 AND s.frames > 0
         ORDER BY s.start_utc_us",
    )?;
    let rows = stmt.query_map(
        params![camera, StreamKind::Main.as_str(), from_us, to_us],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Continuous spans of footage in [from, to) and the gaps between them.
pub fn coverage(
    conn: &Connection,
    camera: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Coverage, ExportError> {
    let mut spans: Vec<Span> = Vec::new();
    for (start, end) in segments(conn, camera, from_us, to_us)? {
        let (start, end) = (start.max(from_us), end.min(to_us));
        match spans.last_mut() {
            Some(last) if start - last.to_us <= JOIN_TOLERANCE_US => {
                *last = span(last.from_us, last.to_us.max(end));
            }
            _ => spans.push(span(start, end)),
        }
    }
    let mut gaps = Vec::new();
    let mut cursor = from_us;
    for s in &spans {
        if s.from_us - cursor > JOIN_TOLERANCE_US {
            gaps.push(span(cursor, s.from_us));
        }
        cursor = s.to_us;
    }
    if to_us - cursor > JOIN_TOLERANCE_US {
        gaps.push(span(cursor, to_us));
    }
    Ok(Coverage {
        camera: camera.to_string(),
        from: format_utc_us(from_us),
        to: format_utc_us(to_us),
        spans,
        gaps,
    })
}

#[derive(Debug, Serialize)]
pub struct DayCoverage {
    /// UTC date, YYYY-MM-DD.
    pub day: String,
    /// Seconds of footage in each UTC hour, 0..=3600.
    pub hours: [u32; 24],
}

/// Per-hour coverage of every UTC day that has footage in [from, to).
pub fn days(
    conn: &Connection,
    camera: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<DayCoverage>, ExportError> {
    const HOUR: i64 = 3_600_000_000;
    let mut by_day: std::collections::BTreeMap<i64, [u32; 24]> = Default::default();
    for (start, end) in segments(conn, camera, from_us, to_us)? {
        let (mut t, end) = (start.max(from_us), end.min(to_us));
        while t < end {
            let hour_start = t.div_euclid(HOUR) * HOUR;
            let until = end.min(hour_start + HOUR);
            let day = hour_start.div_euclid(24 * HOUR);
            let hour = (hour_start.div_euclid(HOUR)).rem_euclid(24) as usize;
            let seconds = ((until - t) / 1_000_000) as u32;
            let slot = &mut by_day.entry(day).or_insert([0; 24])[hour];
            *slot = (*slot + seconds).min(3600);
            t = until;
        }
    }
    Ok(by_day
        .into_iter()
        .map(|(day, hours)| {
            let stamp = format_utc_us(day * 24 * HOUR);
            DayCoverage {
                day: stamp.get(..10).unwrap_or(&stamp).to_string(),
                hours,
            }
        })
        .collect())
}
