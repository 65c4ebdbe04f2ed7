//! `audit.db`: its own SQLite file beside (never inside) the recording
//! index, so video retention cannot touch it.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};

use super::event::{
    AuditEntry, AuditEvent, AuditObject, Component, EventType, Identity, IdentityKind, Outcome,
    OutcomeKind,
};

/// STRICT tables: a value of the wrong type cannot be written, even by hand.
const V1: &str = "
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY,              -- 1, 2, 3, ... (no gaps)
    time_us INTEGER NOT NULL,             -- UTC microseconds
    component TEXT NOT NULL,
    event TEXT NOT NULL,
    identity_kind TEXT NOT NULL,
    agency TEXT,
    officer TEXT,
    cert_fingerprint TEXT,
    owner_user TEXT,
    request_id TEXT,
    camera TEXT,
    window_from_us INTEGER,
    window_to_us INTEGER,
    outcome TEXT NOT NULL,
    reason TEXT,
    bytes_served INTEGER NOT NULL,
    details TEXT,                         -- JSON, hashed as stored
    prev_hash TEXT NOT NULL,              -- hex SHA-256
    entry_hash TEXT NOT NULL              -- hex SHA-256
) STRICT;
CREATE INDEX entries_by_time ON entries (time_us);
CREATE INDEX entries_by_camera ON entries (camera, seq);
CREATE INDEX entries_by_request ON entries (request_id, seq);

-- After pruning: the last entry removed, so the chain can start after it.
CREATE TABLE checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    entry_hash TEXT NOT NULL,
    pruned_at_us INTEGER NOT NULL
) STRICT;
";

const MIGRATIONS: &[&str] = &[V1];

/// The columns in hashing order, for SELECTs.
pub const COLUMNS: &str = "seq, time_us, component, event, identity_kind, agency, officer, \
     cert_fingerprint, owner_user, request_id, camera, window_from_us, window_to_us, outcome, \
     reason, bytes_served, details, prev_hash, entry_hash";

/// One row exactly as stored: text stays text, so verification hashes what
/// is on disk, not what this build would make of it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRow {
    pub seq: i64,
    pub time_us: i64,
    pub component: String,
    pub event: String,
    pub identity_kind: String,
    pub agency: Option<String>,
    pub officer: Option<String>,
    pub cert_fingerprint: Option<String>,
    pub owner_user: Option<String>,
    pub request_id: Option<String>,
    pub camera: Option<String>,
    pub window_from_us: Option<i64>,
    pub window_to_us: Option<i64>,
    pub outcome: String,
    pub reason: Option<String>,
    pub bytes_served: i64,
    pub details: Option<String>,
    pub prev_hash: String,
    pub entry_hash: String,
}

impl StoredRow {
    /// Reads a row selected with [`COLUMNS`].
    pub fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredRow> {
        Ok(StoredRow {
            seq: row.get(0)?,
            time_us: row.get(1)?,
            component: row.get(2)?,
            event: row.get(3)?,
            identity_kind: row.get(4)?,
            agency: row.get(5)?,
            officer: row.get(6)?,
            cert_fingerprint: row.get(7)?,
            owner_user: row.get(8)?,
            request_id: row.get(9)?,
            camera: row.get(10)?,
            window_from_us: row.get(11)?,
            window_to_us: row.get(12)?,
            outcome: row.get(13)?,
            reason: row.get(14)?,
            bytes_served: row.get(15)?,
            details: row.get(16)?,
            prev_hash: row.get(17)?,
            entry_hash: row.get(18)?,
        })
    }

    /// The row for a new event (hashes left empty for the caller).
    pub fn new(seq: i64, time_us: i64, event: &AuditEvent, prev_hash: &str) -> StoredRow {
        StoredRow {
            seq,
            time_us,
            component: event.component.as_str().to_string(),
            event: event.event.as_str().to_string(),
            identity_kind: event.identity.kind.as_str().to_string(),
            agency: event.identity.agency.clone(),
            officer: event.identity.officer.clone(),
            cert_fingerprint: event.identity.cert_fingerprint.clone(),
            owner_user: event.identity.owner_user.clone(),
            request_id: event.object.request_id.clone(),
            camera: event.object.camera.clone(),
            window_from_us: event.object.window_from_us,
            window_to_us: event.object.window_to_us,
            outcome: event.outcome.result.as_str().to_string(),
            reason: event.outcome.reason.clone(),
            // SQLite integers are signed; nothing serves 9 EB.
            bytes_served: i64::try_from(event.bytes_served).unwrap_or(i64::MAX),
            details: event.details.as_ref().map(|d| d.to_string()),
            prev_hash: prev_hash.to_string(),
            entry_hash: String::new(),
        }
    }

    /// What the row says, typed. Never fails: unknown enum text becomes
    /// `Unknown`, details that are not JSON come back as a JSON string.
    pub fn to_entry(&self) -> AuditEntry {
        AuditEntry {
            seq: self.seq,
            time_us: self.time_us,
            event: AuditEvent {
                component: Component::parse(&self.component),
                event: EventType::parse(&self.event),
                identity: Identity {
                    kind: IdentityKind::parse(&self.identity_kind),
                    agency: self.agency.clone(),
                    officer: self.officer.clone(),
                    cert_fingerprint: self.cert_fingerprint.clone(),
                    owner_user: self.owner_user.clone(),
                },
                object: AuditObject {
                    request_id: self.request_id.clone(),
                    camera: self.camera.clone(),
                    window_from_us: self.window_from_us,
                    window_to_us: self.window_to_us,
                },
                outcome: Outcome {
                    result: OutcomeKind::parse(&self.outcome),
                    reason: self.reason.clone(),
                },
                bytes_served: u64::try_from(self.bytes_served).unwrap_or(0),
                details: self.details.as_ref().map(|text| {
                    serde_json::from_str(text)
                        .unwrap_or_else(|_| serde_json::Value::String(text.clone()))
                }),
            },
            prev_hash: self.prev_hash.clone(),
            entry_hash: self.entry_hash.clone(),
        }
    }

    pub fn insert(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(
            &format!(
                "INSERT INTO entries ({COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
            ),
            rusqlite::params![
                self.seq,
                self.time_us,
                self.component,
                self.event,
                self.identity_kind,
                self.agency,
                self.officer,
                self.cert_fingerprint,
                self.owner_user,
                self.request_id,
                self.camera,
                self.window_from_us,
                self.window_to_us,
                self.outcome,
                self.reason,
                self.bytes_served,
                self.details,
                self.prev_hash,
                self.entry_hash,
            ],
        )?;
        Ok(())
    }
}

/// The last entry removed by pruning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub entry_hash: String,
}

pub fn checkpoint(conn: &Connection) -> rusqlite::Result<Option<Checkpoint>> {
    conn.query_row(
        "SELECT seq, entry_hash FROM checkpoint WHERE id = 1",
        [],
        |r| {
            Ok(Checkpoint {
                seq: r.get(0)?,
                entry_hash: r.get(1)?,
            })
        },
    )
    .optional()
}

/// The newest entry's (seq, entry_hash).
pub fn last_entry(conn: &Connection) -> rusqlite::Result<Option<(i64, String)>> {
    conn.query_row(
        "SELECT seq, entry_hash FROM entries ORDER BY seq DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Opens (creating if needed) the log for writing: WAL so readers (the CLI,
/// the API) never block the writer; synchronous=FULL so an acknowledged
/// entry survives a power cut.
pub fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    migrate(&conn)?;
    Ok(conn)
}

/// A read-only connection, usable while the daemon writes.
pub fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    crate::store::schema::run_migrations(conn, "the audit log", MIGRATIONS)
}
