//! The owner's audit log: the daemon records what happens, the owner reads
//! it (CLI and API, also while the daemon runs) and `porchlight audit
//! verify` proves nobody edited, removed or reordered an entry, naming the
//! entry when someone did.

mod support;

use std::path::{Path, PathBuf};

use support::{http_get, porchlight, Daemon};

/// A daemon with no cameras: start and stop are enough to write entries.
fn config(dir: &Path) -> String {
    format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"1MB\"\n",
        dir.join("data").display()
    )
}

fn verify(config: &Path) -> (i32, String) {
    let (code, stdout, stderr) = porchlight(&["audit", "verify", "-c", path(config)]);
    (code, format!("{stdout}{stderr}"))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The audit files of a stopped daemon, to put back between tamperings.
struct Pristine {
    files: Vec<(PathBuf, Vec<u8>)>,
    data_dir: PathBuf,
}

impl Pristine {
    fn take(data_dir: &Path) -> Pristine {
        let files = ["audit.db", "audit.db-wal", "audit.head"]
            .iter()
            .map(|name| data_dir.join(name))
            .filter(|p| p.exists())
            .map(|p| {
                let bytes = std::fs::read(&p).expect("read");
                (p, bytes)
            })
            .collect();
        Pristine {
            files,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// Restores the pristine log, then runs `sql` on it the way someone with
    /// the sqlite3 shell would.
    fn tamper(&self, sql: &str) {
        for name in ["audit.db-wal", "audit.db-shm"] {
            let _ = std::fs::remove_file(self.data_dir.join(name));
        }
        for (path, bytes) in &self.files {
            std::fs::write(path, bytes).expect("restore");
        }
        let conn =
            rusqlite::Connection::open(self.data_dir.join("audit.db")).expect("open audit.db");
        conn.execute_batch(sql).expect("tamper");
    }
}

#[test]
fn the_owner_reads_and_verifies_the_log_and_any_tampering_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let daemon = Daemon::start(dir.path(), &config(dir.path()));
    let config_path = daemon.config_path.clone();

    // While it runs: the API shows the start, the CLI reads and verifies.
    let (status, body) = http_get(daemon.http, "/api/audit").expect("GET /api/audit");
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(page["entries"][0]["seq"], 1);
    assert_eq!(page["entries"][0]["event"], "daemon_start");
    assert_eq!(page["entries"][0]["component"], "daemon");
    assert_eq!(page["entries"][0]["identity"]["kind"], "system");
    assert_eq!(
        page["entries"][0]["prev_hash"],
        porchlight::audit::GENESIS_HASH
    );
    assert!(page["next_after"].is_null());

    let (code, out) = verify(&config_path);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit log intact: 1 entries"), "{out}");
    let (code, stdout, stderr) = porchlight(&[
        "audit",
        "show",
        "-c",
        path(&config_path),
        "--since",
        "1h",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let line: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("a line")).expect("json line");
    assert_eq!(line["event"], "daemon_start");

    // Bad parameters are refused, naming the parameter.
    for (query, name) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("limit=lots", "limit"),
        ("limit=0", "limit"),
        ("after=-1", "after"),
    ] {
        let (status, body) = http_get(daemon.http, &format!("/api/audit?{query}")).expect("GET");
        assert_eq!(status, 400, "{query}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).expect("json error");
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|e| e.contains(&format!("`{name}`"))),
            "{query}: {body}"
        );
    }
    daemon.stop();

    // Two more runs: six entries, start and stop each time.
    for _ in 0..2 {
        let http: std::net::SocketAddr = format!("127.0.0.1:{}", support::free_port())
            .parse()
            .expect("addr");
        let text = config(dir.path()).replace("{HTTP}", &http.to_string());
        std::fs::write(&config_path, text).expect("config");
        let daemon = Daemon::start_with(config_path.clone(), http, dir.path());
        let (status, body) =
            http_get(daemon.http, "/api/audit?limit=2&after=1").expect("GET /api/audit");
        assert_eq!(status, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(page["entries"][0]["seq"], 2);
        assert_eq!(page["entries"][0]["event"], "daemon_stop");
        assert_eq!(page["next_after"], 3);
        daemon.stop();
    }
    let (code, out) = verify(&config_path);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit log intact: 6 entries"), "{out}");
    let (code, table, _) = porchlight(&["audit", "show", "-c", path(&config_path)]);
    assert_eq!(code, 0);
    assert_eq!(table.matches("daemon_start").count(), 3, "{table}");
    assert_eq!(table.matches("daemon_stop").count(), 3, "{table}");

    // Someone edits, deletes, reorders or cuts entries while it is stopped.
    let pristine = Pristine::take(&data_dir);
    let cases = [
        (
            "UPDATE entries SET component = 'cli' WHERE seq = 3",
            vec!["entry 3: contents changed (hash mismatch)"],
        ),
        ("DELETE FROM entries WHERE seq = 4", vec!["entry 4 missing"]),
        (
            "UPDATE entries SET seq = -1 WHERE seq = 2;
             UPDATE entries SET seq = 2 WHERE seq = 3;
             UPDATE entries SET seq = 3 WHERE seq = -1;",
            vec![
                "entry 2 out of order (it was written as entry 3)",
                "entry 3 out of order (it was written as entry 2)",
            ],
        ),
        (
            "DELETE FROM entries WHERE seq >= 5",
            vec!["head anchor says seq 6 but log ends at 4 (entries removed from the end)"],
        ),
    ];
    for (sql, expected) in cases {
        pristine.tamper(sql);
        let (code, out) = verify(&config_path);
        assert_eq!(code, 1, "{sql}: {out}");
        for problem in &expected {
            assert!(
                out.contains(problem),
                "{sql}: expected {problem:?} in:\n{out}"
            );
        }
        let problems = out
            .lines()
            .filter(|l| l.starts_with("entr") || l.starts_with("head"))
            .count();
        assert_eq!(
            problems,
            expected.len(),
            "{sql}: exactly these problems:\n{out}"
        );
        assert!(out.contains("audit log DAMAGED"), "{out}");
    }

    // Put back untouched, it verifies again.
    pristine.tamper("SELECT 1");
    let (code, out) = verify(&config_path);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn verify_without_a_log_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        config(dir.path()).replace("{HTTP}", "127.0.0.1:1"),
    )
    .expect("config");
    let (code, out) = verify(&config_path);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no audit log at"), "{out}");
}
