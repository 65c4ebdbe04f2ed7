//! Reading the log back: filters by time, camera and request, in sequence
//! order, a page at a time.

use rusqlite::types::Value;
use rusqlite::Connection;

use super::event::AuditEntry;
use super::store::{StoredRow, COLUMNS};

/// Page size when the caller gives none.
pub const DEFAULT_LIMIT: usize = 1000;
/// Largest page one query returns.
pub const MAX_LIMIT: usize = 10_000;

/// Which entries to read. Every filter is optional; entries come oldest
/// first (by seq).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Recorded at or after, UTC µs.
    pub since: Option<i64>,
    /// Recorded before, UTC µs.
    pub until: Option<i64>,
    pub camera: Option<String>,
    pub request_id: Option<String>,
    /// At most this many (default [`DEFAULT_LIMIT`], capped at [`MAX_LIMIT`]).
    pub limit: Option<usize>,
    /// Only entries after this seq: the cursor for the next page.
    pub after_seq: Option<i64>,
}

impl AuditQuery {
    pub fn effective_limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// Runs `query` on a connection to `audit.db`.
pub fn query(conn: &Connection, query: &AuditQuery) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut conditions = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    let mut filter = |condition: &str, value: Value| {
        params.push(value);
        conditions.push(format!("{condition} ?{}", params.len()));
    };
    if let Some(since) = query.since {
        filter("time_us >=", Value::Integer(since));
    }
    if let Some(until) = query.until {
        filter("time_us <", Value::Integer(until));
    }
    if let Some(camera) = &query.camera {
        filter("camera =", Value::Text(camera.clone()));
    }
    if let Some(request_id) = &query.request_id {
        filter("request_id =", Value::Text(request_id.clone()));
    }
    if let Some(after) = query.after_seq {
        filter("seq >", Value::Integer(after));
    }
    let mut sql = format!("SELECT {COLUMNS} FROM entries");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    params.push(Value::Integer(query.effective_limit() as i64));
    sql.push_str(&format!(" ORDER BY seq LIMIT ?{}", params.len()));
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(params), StoredRow::from_row)?;
    rows.map(|row| row.map(|r| r.to_entry())).collect()
}
