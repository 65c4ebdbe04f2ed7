//! An upgrade finds an index written by an older Porchlight: the daemon
//! migrates it forward and every recording is still there. An index from a
//! newer Porchlight (a downgrade) is refused, named, and left untouched.
//!
//! The older indexes are rebuilt from the released schemas checked in as
//! `tests/data/index-schema/v*.sql` (each must equal what its migrations
//! make: see `store::schema` unit tests), holding the rows a real recording
//! left, as that release would have stored them.

mod support;

use std::path::Path;

use rusqlite::Connection;
use support::{http_get, porchlight, record};

fn released_schemas() -> Vec<(i64, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/index-schema");
    let mut out: Vec<(i64, String)> = std::fs::read_dir(&dir)
        .expect("index-schema fixtures")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = name.strip_prefix('v')?.strip_suffix(".sql")?.parse().ok()?;
            Some((version, std::fs::read_to_string(e.path()).ok()?))
        })
        .collect();
    out.sort();
    out
}

fn columns(conn: &Connection, schema: &str, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA {schema}.table_info({table})"))
        .expect("table_info");
    stmt.query_map([], |r| r.get::<_, String>(1))
        .expect("columns")
        .map(Result::unwrap)
        .collect()
}

/// Replaces the index in `data_dir` by one at schema `version`, holding the
/// same rows (the columns that schema has).
fn rewrite_index_at(data_dir: &Path, version: i64, schema: &str) {
    let path = data_dir.join("index.sqlite3");
    let old = data_dir.join("index-current.sqlite3");
    std::fs::rename(&path, &old).expect("move the index aside");
    let conn = Connection::open(&path).expect("new index");
    // Rows are copied table by table, parents not necessarily first.
    conn.pragma_update(None, "foreign_keys", false).unwrap();
    conn.execute_batch(schema).expect("the released schema");
    conn.execute("ATTACH DATABASE ?1 AS current", [old.to_str().unwrap()])
        .expect("attach");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM main.sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for table in tables {
        let theirs = columns(&conn, "current", &table);
        let shared: Vec<String> = columns(&conn, "main", &table)
            .into_iter()
            .filter(|c| theirs.contains(c))
            .collect();
        let list = shared.join(", ");
        conn.execute_batch(&format!(
            "INSERT INTO main.{table} ({list}) SELECT {list} FROM current.{table}"
        ))
        .expect("copy rows");
    }
    conn.execute_batch("DETACH DATABASE current").unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
    drop(conn);
    std::fs::remove_file(&old).unwrap();
}

fn user_version(data_dir: &Path) -> i64 {
    support::index(data_dir)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn footage(data_dir: &Path) -> (i64, i64, i64) {
    support::index(data_dir)
        .query_row(
            "SELECT COUNT(*), SUM(frames), (SELECT COUNT(*) FROM fragments) FROM segments",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_index_is_migrated_forward_with_every_recording() {
    let schemas = released_schemas();
    let current = porchlight::store::SCHEMA_VERSION;
    assert_eq!(
        schemas.last().map(|s| s.0),
        Some(current),
        "the current schema is checked in"
    );

    let recorded = record(3.0, "", "1GB").await;
    let data_dir = recorded.dir.path().join("data");
    let config = recorded.daemon.config_path.clone();
    let http = recorded.daemon.http;
    let mut daemon = recorded.daemon;
    let range = "/api/cameras/porch/recordings";
    for (version, schema) in &schemas {
        // Stop the camera feeding new footage so before/after compare.
        daemon.stop();
        let before = footage(&data_dir);
        let (code, out, err) = porchlight(&["check", "--config", config.to_str().unwrap()]);
        assert_eq!(code, 0, "check before: {out}{err}");
        rewrite_index_at(&data_dir, *version, schema);
        assert_eq!(user_version(&data_dir), *version);
        assert_eq!(
            footage(&data_dir),
            before,
            "the rebuilt v{version} index holds the rows"
        );

        daemon = tokio::task::block_in_place(|| {
            support::Daemon::start_with(config.clone(), http, recorded.dir.path())
        });
        assert_eq!(user_version(&data_dir), current, "migrated from v{version}");
        let (status, body) = http_get(http, range).expect("recordings");
        assert_eq!(status, 200, "{body}");
        let spans: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(!spans["spans"].as_array().unwrap().is_empty(), "{body}");
        let after = footage(&data_dir);
        assert!(
            after.0 >= before.0 && after.1 >= before.1 && after.2 >= before.2,
            "footage lost migrating from v{version}: {before:?} -> {after:?}"
        );
    }
    daemon.stop();
    let (code, out, err) = porchlight(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "check after: {out}{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_index_from_a_newer_porchlight_is_refused_and_kept() {
    let recorded = record(2.0, "", "1GB").await;
    let data_dir = recorded.dir.path().join("data");
    let config = recorded.daemon.config_path.clone();
    recorded.daemon.stop();
    let newer = porchlight::store::SCHEMA_VERSION + 1;
    {
        let conn = Connection::open(data_dir.join("index.sqlite3")).unwrap();
        conn.pragma_update(None, "user_version", newer).unwrap();
    }
    let before = std::fs::read(data_dir.join("index.sqlite3")).unwrap();

    let out = std::process::Command::new(support::BIN)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the daemon ran on a newer index:\n{err}"
    );
    assert!(
        err.contains(&format!(
            "the index was written by a newer Porchlight (schema {newer}, this build knows {})",
            newer - 1
        )) && err.contains("index.sqlite3"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(data_dir.join("index.sqlite3")).unwrap(),
        before,
        "the newer index was changed"
    );
}
