use super::*;

use rusqlite::Connection;

/// A log in a temp dir with `n` entries (download events on camera "porch"
/// for even seqs, "yard" for odd, request "R<seq>").
fn log_with(n: i64) -> (tempfile::TempDir, AuditLog) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(dir.path()).expect("open");
    for i in 1..=n {
        log.append_blocking(download(i)).expect("append");
    }
    (dir, log)
}

fn download(i: i64) -> AuditEvent {
    AuditEvent::new(
        Component::Relay,
        EventType::Download,
        Identity::agency("Dallas PD", Some("4711"), Some("sha256:ab")),
    )
    .request(format!("R{i}"))
    .camera(if i % 2 == 0 { "porch" } else { "yard" })
    .window(1_000_000 * i, 1_000_000 * i + 60_000_000)
    .bytes_served(1000 + i as u64)
}

/// A second connection, as someone with the sqlite3 shell would have.
fn tamper(dir: &Path, sql: &str) {
    let conn = Connection::open(paths::audit_db_path(dir)).expect("open for tampering");
    conn.execute_batch(sql).expect("tamper");
}

fn problems(dir: &Path) -> Vec<String> {
    AuditReader::open(dir)
        .expect("reader")
        .verify()
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn entries_are_numbered_and_chained_from_genesis() {
    let (dir, log) = log_with(3);
    let entries = log.query(&AuditQuery::default()).expect("query");
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(entries[0].prev_hash, GENESIS_HASH);
    assert_eq!(entries[1].prev_hash, entries[0].entry_hash);
    assert_eq!(entries[2].prev_hash, entries[1].entry_hash);
    assert_eq!(entries[2].event, download(3));

    let report = log.verify().expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.entries, 3);
    assert_eq!(report.head, Some((3, entries[2].entry_hash.clone())));
    let head = anchor::read(&paths::audit_head_path(dir.path())).expect("anchor");
    assert_eq!(head.map(|h| h.seq), Some(3));
}

#[test]
fn an_edited_field_is_named_by_seq() {
    let (dir, log) = log_with(5);
    drop(log);
    tamper(
        dir.path(),
        "UPDATE entries SET bytes_served = 0 WHERE seq = 3",
    );
    assert_eq!(
        problems(dir.path()),
        ["entry 3: contents changed (hash mismatch)"]
    );
}

#[test]
fn a_rewritten_entry_with_a_recomputed_hash_breaks_the_next_link() {
    let (dir, log) = log_with(5);
    drop(log);
    let conn = Connection::open(paths::audit_db_path(dir.path())).expect("open");
    let mut row = conn
        .query_row(
            &format!("SELECT {} FROM entries WHERE seq = 3", store::COLUMNS),
            [],
            store::StoredRow::from_row,
        )
        .expect("row");
    row.officer = Some("someone else".into());
    let new_hash = hash::entry_hash(&row);
    conn.execute(
        "UPDATE entries SET officer = ?1, entry_hash = ?2 WHERE seq = 3",
        rusqlite::params![row.officer, new_hash],
    )
    .expect("rewrite");
    assert_eq!(
        problems(dir.path()),
        ["entry 4: chain broken (entry 3 was rewritten and its hash recomputed)"]
    );
}

#[test]
fn a_deleted_entry_is_named_as_a_gap() {
    let (dir, log) = log_with(6);
    drop(log);
    tamper(dir.path(), "DELETE FROM entries WHERE seq = 4");
    assert_eq!(problems(dir.path()), ["entry 4 missing"]);
    tamper(dir.path(), "DELETE FROM entries WHERE seq IN (2, 3)");
    assert_eq!(problems(dir.path()), ["entries 2–4 missing"]);
    tamper(dir.path(), "DELETE FROM entries WHERE seq = 1");
    assert_eq!(problems(dir.path()), ["entries 1–4 missing"]);
}

#[test]
fn swapped_entries_are_named_as_out_of_order() {
    let (dir, log) = log_with(5);
    drop(log);
    tamper(
        dir.path(),
        "UPDATE entries SET seq = -1 WHERE seq = 2;
         UPDATE entries SET seq = 2 WHERE seq = 3;
         UPDATE entries SET seq = 3 WHERE seq = -1;",
    );
    assert_eq!(
        problems(dir.path()),
        [
            "entry 2 out of order (it was written as entry 3)",
            "entry 3 out of order (it was written as entry 2)"
        ]
    );
    // Put them back, then swap two that are not neighbours.
    tamper(
        dir.path(),
        "UPDATE entries SET seq = -1 WHERE seq = 2;
         UPDATE entries SET seq = 2 WHERE seq = 3;
         UPDATE entries SET seq = 3 WHERE seq = -1;",
    );
    assert!(problems(dir.path()).is_empty());
    tamper(
        dir.path(),
        "UPDATE entries SET seq = -1 WHERE seq = 1;
         UPDATE entries SET seq = 1 WHERE seq = 4;
         UPDATE entries SET seq = 4 WHERE seq = -1;",
    );
    assert_eq!(
        problems(dir.path()),
        [
            "entry 1 out of order (it was written as entry 4)",
            "entry 4 out of order (it was written as entry 1)"
        ]
    );
}

#[test]
fn entries_cut_off_the_end_are_caught_by_the_head_anchor() {
    let (dir, log) = log_with(5);
    drop(log);
    tamper(dir.path(), "DELETE FROM entries WHERE seq >= 4");
    assert_eq!(
        problems(dir.path()),
        ["head anchor says seq 5 but log ends at 3 (entries removed from the end)"]
    );
    tamper(dir.path(), "DELETE FROM entries");
    assert_eq!(
        problems(dir.path()),
        ["head anchor says seq 5 but the log is empty (entries removed)"]
    );
}

#[test]
fn a_missing_or_garbled_anchor_is_a_problem() {
    let (dir, log) = log_with(2);
    drop(log);
    let head = paths::audit_head_path(dir.path());
    std::fs::remove_file(&head).expect("remove");
    assert_eq!(problems(dir.path()).len(), 1);
    assert!(problems(dir.path())[0].contains("head anchor (audit.head) missing"));
    std::fs::write(&head, "nonsense").expect("write");
    assert!(problems(dir.path())[0].contains("garbled"));
}

#[test]
fn an_anchor_behind_the_log_is_a_crash_not_tampering() {
    let (dir, log) = log_with(3);
    let first = log.query(&AuditQuery::default()).expect("query")[1].clone();
    drop(log);
    // As if the process died between commit 3 and its anchor write.
    anchor::write(
        &paths::audit_head_path(dir.path()),
        &anchor::HeadAnchor {
            seq: 2,
            entry_hash: first.entry_hash,
        },
    )
    .expect("anchor");
    assert!(problems(dir.path()).is_empty());
    // Reopening moves it forward without raising an alarm.
    let log = AuditLog::open(dir.path()).expect("reopen");
    let head = anchor::read(&paths::audit_head_path(dir.path())).expect("anchor");
    assert_eq!(head.map(|h| h.seq), Some(3));
    assert_eq!(log.query(&AuditQuery::default()).expect("query").len(), 3);
}

#[test]
fn reopening_a_truncated_log_records_an_integrity_alert() {
    let (dir, log) = log_with(4);
    drop(log);
    tamper(dir.path(), "DELETE FROM entries WHERE seq = 4");
    let log = AuditLog::open(dir.path()).expect("reopen");
    let entries = log.query(&AuditQuery::default()).expect("query");
    let alert = entries.last().expect("an entry");
    assert_eq!(alert.seq, 4);
    assert_eq!(alert.event.event, EventType::IntegrityAlert);
    assert!(
        alert
            .event
            .outcome
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("anchor says seq 4 but log ends at 3")),
        "{alert:?}"
    );
    let report = log.verify().expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.alerts, [4]);
}

#[test]
fn only_one_process_appends() {
    let (dir, _log) = log_with(1);
    assert!(matches!(
        AuditLog::open(dir.path()),
        Err(AuditError::Locked(_))
    ));
}

#[test]
fn queries_filter_and_page() {
    let (_dir, log) = log_with(10);
    let porch = log
        .query(&AuditQuery {
            camera: Some("porch".into()),
            ..AuditQuery::default()
        })
        .expect("query");
    assert_eq!(
        porch.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [2, 4, 6, 8, 10]
    );
    let request = log
        .query(&AuditQuery {
            request_id: Some("R7".into()),
            ..AuditQuery::default()
        })
        .expect("query");
    assert_eq!(request.len(), 1);
    assert_eq!(request[0].seq, 7);

    let page = log
        .query(&AuditQuery {
            limit: Some(3),
            after_seq: Some(4),
            ..AuditQuery::default()
        })
        .expect("query");
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 6, 7]);

    let all = log.query(&AuditQuery::default()).expect("query");
    let since = log
        .query(&AuditQuery {
            since: Some(all[5].time_us),
            until: Some(all[8].time_us),
            ..AuditQuery::default()
        })
        .expect("query");
    assert!(since.iter().all(|e| e.seq >= 6 && e.seq <= 9), "{since:?}");
    assert!(since.iter().any(|e| e.seq == 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_consecutive_seqs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(dir.path()).expect("open");
    let tasks: Vec<_> = (1..=40)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(download(i)).await })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.expect("task").expect("append").seq);
    }
    seqs.sort();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    let report = tokio::task::spawn_blocking(move || log.verify())
        .await
        .expect("join")
        .expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
}

/// Moves every entry's time back by `days` and re-chains the log, as if it
/// had been written then (and as a careful attacker could: see docs/audit.md).
fn age_and_rechain(dir: &Path, seqs: std::ops::RangeInclusive<i64>, days: i64) {
    let conn = Connection::open(paths::audit_db_path(dir)).expect("open");
    let rows: Vec<store::StoredRow> = conn
        .prepare(&format!(
            "SELECT {} FROM entries ORDER BY seq",
            store::COLUMNS
        ))
        .expect("prepare")
        .query_map([], store::StoredRow::from_row)
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let mut prev = GENESIS_HASH.to_string();
    for mut row in rows {
        if seqs.contains(&row.seq) {
            row.time_us -= days * 86_400_000_000;
        }
        row.prev_hash = prev;
        row.entry_hash = hash::entry_hash(&row);
        conn.execute(
            "UPDATE entries SET time_us = ?1, prev_hash = ?2, entry_hash = ?3 WHERE seq = ?4",
            rusqlite::params![row.time_us, row.prev_hash, row.entry_hash, row.seq],
        )
        .expect("update");
        prev = row.entry_hash.clone();
        anchor::write(
            &paths::audit_head_path(dir),
            &anchor::HeadAnchor {
                seq: row.seq,
                entry_hash: row.entry_hash,
            },
        )
        .expect("anchor");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_keeps_a_year_and_a_checkpoint_the_chain_still_verifies_from() {
    let (dir, log) = log_with(6);
    drop(log);
    age_and_rechain(dir.path(), 1..=4, 500);
    let log = AuditLog::open(dir.path()).expect("reopen");

    assert!(matches!(
        log.prune(Duration::from_secs(30 * 86_400)).await,
        Err(AuditError::RetentionTooShort { days: 30 })
    ));

    let pruned = log
        .prune(DEFAULT_RETENTION)
        .await
        .expect("prune")
        .expect("something was pruned");
    assert_eq!(pruned.seq, 7);
    assert_eq!(pruned.event.event, EventType::AuditPruned);
    let details = pruned.event.details.clone().expect("details");
    assert_eq!(details["through_seq"], 4);
    assert_eq!(details["entries_removed"], 4);

    let entries = log.query(&AuditQuery::default()).expect("query");
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 6, 7]);
    let report = log.verify().expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.checkpoint.map(|c| c.0), Some(4));

    // Nothing more is old enough: no entry, no change.
    assert!(log.prune(DEFAULT_RETENTION).await.expect("prune").is_none());
    let next = log.append(download(8)).await.expect("append");
    assert_eq!(next.seq, 8);

    // Deleting from the start and faking the checkpoint is still caught.
    drop(log);
    tamper(
        dir.path(),
        "DELETE FROM entries WHERE seq = 5;
         UPDATE checkpoint SET seq = 5, entry_hash = (SELECT prev_hash FROM entries WHERE seq = 6);",
    );
    assert_eq!(
        problems(dir.path()),
        ["pruning checkpoint at entry 5 is not confirmed by an audit_pruned entry (entries removed from the start?)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_is_not_pruned() {
    let (dir, log) = log_with(3);
    drop(log);
    age_and_rechain(dir.path(), 1..=3, 500);
    tamper(dir.path(), "UPDATE entries SET camera = 'x' WHERE seq = 1");
    let log = AuditLog::open(dir.path()).expect("reopen");
    let refused = log.prune(DEFAULT_RETENTION).await;
    assert!(
        matches!(&refused, Err(AuditError::Damaged(why)) if why.contains("entry 1")),
        "{:?}",
        refused.map(|_| ())
    );
    assert_eq!(log.query(&AuditQuery::default()).expect("query").len(), 3);
}

#[test]
fn details_and_unknown_values_survive_a_round_trip() {
    let (dir, log) = log_with(0);
    let entry = log
        .append_blocking(
            AuditEvent::new(
                Component::Policy,
                EventType::PolicyChange,
                Identity::owner(Some("ana")),
            )
            .details(serde_json::json!({"camera": "porch", "from": "off", "to": "on_request"})),
        )
        .expect("append");
    assert_eq!(
        entry.event.details.as_ref().expect("details")["to"],
        "on_request"
    );
    drop(log);
    // A value from a newer build reads back as Unknown (and is flagged as an edit here).
    tamper(
        dir.path(),
        "UPDATE entries SET event = 'teleport', details = 'not json'",
    );
    let entries = AuditReader::open(dir.path())
        .expect("reader")
        .query(&AuditQuery::default())
        .expect("query");
    assert_eq!(
        entries[0].event.event,
        EventType::Unknown("teleport".into())
    );
    assert_eq!(
        entries[0].event.details,
        Some(serde_json::Value::String("not json".into()))
    );
}

#[test]
fn a_missing_log_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let error = AuditReader::open(dir.path()).err().expect("no log yet");
    assert!(error.to_string().contains("no audit log at"), "{error}");
}
