//! The recording index's SQLite schema and its forward migrations.
//!
//! Files hold the footage; the index says which bytes of which file cover
//! which UTC time. A row is only ever written after the bytes it points at
//! are on disk (fdatasync), so the index never claims footage that a power
//! cut could have lost.

use rusqlite::Connection;

/// Bump when adding a migration below; `open` upgrades older indexes.
pub const SCHEMA_VERSION: i64 = 1;

const V1: &str = "
CREATE TABLE streams (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    kind TEXT NOT NULL,
    UNIQUE (camera, kind)
);

-- One fragmented-MP4 file: an init segment followed by fragments (one per GOP).
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL REFERENCES streams (id),
    file_name TEXT NOT NULL UNIQUE,       -- relative to the data dir
    open INTEGER NOT NULL,                -- 1 while still being written
    start_utc_us INTEGER NOT NULL,
    end_utc_us INTEGER NOT NULL,
    bytes INTEGER NOT NULL,               -- indexed length: init + indexed fragments
    init_len INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    video_codec TEXT NOT NULL,            -- RFC 6381, e.g. avc1.64001f
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    audio_codec TEXT,
    video_timescale INTEGER NOT NULL
);
CREATE INDEX segments_by_stream_start ON segments (stream_id, start_utc_us);
-- For retention: oldest closed segments first.
CREATE INDEX segments_by_open_start ON segments (open, start_utc_us);

-- One moof+mdat pair. Keyframe positions: starts_with_key marks fragments that
-- can be decoded on their own (nearly all: a fragment is cut at each keyframe).
CREATE TABLE fragments (
    segment_id INTEGER NOT NULL REFERENCES segments (id),
    seq INTEGER NOT NULL,
    file_offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    start_utc_us INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    media_start INTEGER NOT NULL,         -- video decode time (timescale units) within the segment
    frames INTEGER NOT NULL,
    starts_with_key INTEGER NOT NULL,
    PRIMARY KEY (segment_id, seq)
) WITHOUT ROWID;

-- Files whose rows are gone but which may still be on disk: unlinked, then
-- removed from here. Makes deletion crash-safe in both orders.
CREATE TABLE garbage (
    file_name TEXT PRIMARY KEY
);
";

const MIGRATIONS: &[&str] = &[V1];

/// Opens (creating if needed) the index and brings its schema up to date.
pub fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // Before any pragma writes: an index from a newer build stays untouched.
    refuse_newer(&conn, "the index", MIGRATIONS.len())?;
    configure(&conn)?;
    migrate(&conn)?;
    Ok(conn)
}

/// Pragmas every connection needs: WAL so readers never block the writer.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL in WAL mode keeps the database consistent on power loss; a
    // commit may roll back, which recovery re-derives from the files.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    run_migrations(conn, "the index", MIGRATIONS)
}

/// The database's schema version, or an error naming `what` when a newer
/// build wrote it (schema `known` is the newest this build understands).
fn refuse_newer(conn: &Connection, what: &str, known: usize) -> rusqlite::Result<i64> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > known as i64 {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!(
                "{what} was written by a newer Porchlight (schema {version}, this build knows {known}); \
                 refusing to open it so it stays as it is: run that version again, or a newer one"
            )),
        ));
    }
    Ok(version)
}

/// Brings a database (`what` names it in errors) up to the last of
/// `migrations`, one transaction per step, tracked in `user_version`; a
/// database from a newer build is refused, never downgraded. Shared by the
/// index, the audit log and the request store.
pub fn run_migrations(conn: &Connection, what: &str, migrations: &[&str]) -> rusqlite::Result<()> {
    let version = refuse_newer(conn, what, migrations.len())?;
    for (i, step) in migrations.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema objects of a database as their `CREATE` statements, one per
/// line group, sorted by name: the form of `tests/data/index-schema/v*.sql`.
#[cfg(test)]
pub(crate) fn dump_schema(conn: &Connection) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = String::new();
    for sql in rows {
        out.push_str(&sql?);
        out.push_str(";\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each released schema, as `dump_schema` printed it. A new migration
    /// adds a file here; an edit of an old migration fails the test below.
    const RELEASED: &[(i64, &str)] = &[(
        1,
        include_str!("../../../../tests/data/index-schema/v1.sql"),
    )];

    fn at_version(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        run_migrations(&conn, "the index", &MIGRATIONS[..version]).unwrap();
        conn
    }

    #[test]
    fn every_released_schema_is_what_its_migrations_make() {
        assert_eq!(
            RELEASED.last().map(|r| r.0),
            Some(SCHEMA_VERSION),
            "add tests/data/index-schema/v{SCHEMA_VERSION}.sql (porchlight's dump_schema of a fresh index)"
        );
        for &(version, fixture) in RELEASED {
            let made = dump_schema(&at_version(version as usize)).unwrap();
            assert_eq!(
                made, fixture,
                "migrations 1..={version} no longer make the released schema v{version}"
            );
        }
    }

    #[test]
    fn every_released_schema_migrates_to_the_current_one() {
        let current = dump_schema(&at_version(MIGRATIONS.len())).unwrap();
        for &(version, fixture) in RELEASED {
            let conn = Connection::open_in_memory().unwrap();
            conn.execute_batch(fixture).unwrap();
            conn.pragma_update(None, "user_version", version).unwrap();
            migrate(&conn).unwrap();
            assert_eq!(dump_schema(&conn).unwrap(), current, "from v{version}");
            let now: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(now, SCHEMA_VERSION);
        }
    }

    #[test]
    fn a_newer_index_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite3");
        {
            let conn = open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let error = open(&path).expect_err("refused").to_string();
        assert!(
            error.contains(&format!(
                "the index was written by a newer Porchlight (schema {}, this build knows {SCHEMA_VERSION})",
                SCHEMA_VERSION + 1
            )),
            "{error}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the refused index changed"
        );
    }
}
