//! The single writer: one thread owns the write connection, so entries are
//! numbered and chained in exactly the order they are committed.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::anchor::{self, HeadAnchor};
use super::event::{AuditEntry, AuditEvent, Component, EventType, Identity, Outcome};
use super::hash::{entry_hash, GENESIS_HASH};
use super::store::{self, StoredRow};
use super::verify::{self, Problem};
use super::{AuditError, MIN_RETENTION};
use crate::store::paths;
use crate::time::{format_utc_us, now_utc_us};

/// Most appends committed in one transaction.
const MAX_BATCH: usize = 256;

type PendingAppend = (
    Box<AuditEvent>,
    oneshot::Sender<Result<AuditEntry, AuditError>>,
);

/// Work for the writer thread; each carries where to send the answer.
pub(super) enum Command {
    Append {
        event: Box<AuditEvent>,
        reply: oneshot::Sender<Result<AuditEntry, AuditError>>,
    },
    Prune {
        max_age: Duration,
        reply: oneshot::Sender<Result<Option<AuditEntry>, AuditError>>,
    },
}

pub(super) struct Writer {
    conn: Connection,
    db_path: PathBuf,
    head_path: PathBuf,
    _lock: File,
}

impl Writer {
    /// Locks, opens (creating if needed) and checks the log's end against
    /// the head anchor, recording an `integrity_alert` if they disagree.
    pub fn open(data_dir: &Path) -> Result<Writer, AuditError> {
        std::fs::create_dir_all(data_dir).map_err(|source| AuditError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let lock = lock(&paths::audit_lock_path(data_dir), data_dir)?;
        let db_path = paths::audit_db_path(data_dir);
        let conn = store::open_writer(&db_path).map_err(|source| AuditError::Database {
            path: db_path.clone(),
            source,
        })?;
        let mut writer = Writer {
            conn,
            db_path,
            head_path: paths::audit_head_path(data_dir),
            _lock: lock,
        };
        writer.reconcile_anchor()?;
        Ok(writer)
    }

    /// Serves commands until every handle is dropped. Appends that are
    /// already waiting are committed together (group commit): one disk
    /// flush for the lot, each still acknowledged only once durable.
    pub fn run(mut self, commands: Receiver<Command>) {
        while let Ok(command) = commands.recv() {
            match command {
                Command::Append { event, reply } => {
                    let mut batch = vec![(event, reply)];
                    let mut next = None;
                    while batch.len() < MAX_BATCH {
                        match commands.try_recv() {
                            Ok(Command::Append { event, reply }) => batch.push((event, reply)),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.append_batch(batch);
                    if let Some(Command::Prune { max_age, reply }) = next {
                        let _ = reply.send(self.prune(max_age));
                    }
                }
                Command::Prune { max_age, reply } => {
                    let _ = reply.send(self.prune(max_age));
                }
            }
        }
    }

    /// Commits a batch in one transaction; if that fails, each entry is
    /// tried on its own so one bad entry cannot fail the others.
    fn append_batch(&mut self, batch: Vec<PendingAppend>) {
        if batch.len() == 1 {
            for (event, reply) in batch {
                let _ = reply.send(self.append(&event));
            }
            return;
        }
        let rows = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows = batch
                .iter()
                .map(|(event, _)| insert(&tx, event))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            Ok::<_, rusqlite::Error>(rows)
        })();
        match rows {
            Ok(rows) => {
                if let Some(last) = rows.last() {
                    self.write_anchor(last);
                }
                for ((_, reply), row) in batch.into_iter().zip(rows) {
                    let _ = reply.send(Ok(row.to_entry()));
                }
            }
            Err(_) => {
                for (event, reply) in batch {
                    let _ = reply.send(self.append(&event));
                }
            }
        }
    }

    /// Commits one entry (durably: synchronous=FULL), then moves the anchor.
    fn append(&mut self, event: &AuditEvent) -> Result<AuditEntry, AuditError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(database(&self.db_path))?;
        let row = insert(&tx, event).and_then(|row| tx.commit().map(|()| row));
        let row = row.map_err(database(&self.db_path))?;
        self.write_anchor(&row);
        Ok(row.to_entry())
    }

    /// The entry is committed whatever happens here; a failed anchor write
    /// only weakens tail-truncation detection until the next append.
    fn write_anchor(&self, row: &StoredRow) {
        self.write_anchor_at(row.seq, &row.entry_hash);
    }

    /// Removes entries older than `max_age` from the start of the log,
    /// keeping a checkpoint and logging the pruning itself. Refuses when
    /// the log is damaged: pruning must not erase the evidence.
    fn prune(&mut self, max_age: Duration) -> Result<Option<AuditEntry>, AuditError> {
        if max_age < MIN_RETENTION {
            return Err(AuditError::RetentionTooShort {
                days: max_age.as_secs() / 86_400,
            });
        }
        let report = verify::verify(&self.conn, anchor::read(&self.head_path));
        if let Some(problem) = report.problems.first() {
            return Err(AuditError::Damaged(format!(
                "{problem}; {} problem(s) in all",
                report.problems.len()
            )));
        }
        let cutoff = now_utc_us().saturating_sub(max_age.as_micros() as i64);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(database(&self.db_path))?;
        let pruned = prune_before(&tx, cutoff).and_then(|row| tx.commit().map(|()| row));
        match pruned.map_err(database(&self.db_path))? {
            Some(row) => {
                self.write_anchor(&row);
                Ok(Some(row.to_entry()))
            }
            None => Ok(None),
        }
    }

    /// At start: an anchor behind the log is a crash between commit and
    /// anchor write (moved forward quietly); one that is ahead, names a
    /// different hash, is missing or garbled means someone changed the log
    /// while Porchlight was not running, and is recorded in the log itself.
    fn reconcile_anchor(&mut self) -> Result<(), AuditError> {
        let last = store::last_entry(&self.conn).map_err(database(&self.db_path))?;
        let problem = match (anchor::read(&self.head_path), &last) {
            (Ok(None), None) => None,
            (Ok(None), Some(_)) => Some(Problem::AnchorMissing),
            (Err(why), _) => Some(Problem::AnchorUnreadable(why)),
            (Ok(Some(head)), None) => Some(Problem::TailRemoved {
                anchor_seq: head.seq,
                last_seq: None,
            }),
            (Ok(Some(head)), Some((last_seq, _))) if head.seq > *last_seq => {
                Some(Problem::TailRemoved {
                    anchor_seq: head.seq,
                    last_seq: Some(*last_seq),
                })
            }
            (Ok(Some(head)), Some((last_seq, last_hash))) => {
                let stored: Option<String> = self
                    .conn
                    .query_row(
                        "SELECT entry_hash FROM entries WHERE seq = ?1",
                        [head.seq],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(database(&self.db_path))?;
                if stored.is_some_and(|hash| hash != head.entry_hash) {
                    Some(Problem::AnchorMismatch { seq: head.seq })
                } else {
                    if head.seq < *last_seq {
                        tracing::info!(
                            anchor = head.seq,
                            last = last_seq,
                            "audit head anchor was behind the log (crash after a commit); moving it forward"
                        );
                        self.write_anchor_at(*last_seq, last_hash);
                    }
                    None
                }
            }
        };
        if let Some(problem) = problem {
            tracing::error!(%problem, "the audit log was changed while Porchlight was not running");
            let alert = AuditEvent::new(
                Component::Audit,
                EventType::IntegrityAlert,
                Identity::system(),
            )
            .outcome(Outcome::error(problem.to_string()))
            .details(serde_json::json!({ "found_at_start": true }));
            self.append(&alert)?;
        }
        Ok(())
    }

    fn write_anchor_at(&self, seq: i64, entry_hash: &str) {
        let head = HeadAnchor {
            seq,
            entry_hash: entry_hash.to_string(),
        };
        if let Err(e) = anchor::write(&self.head_path, &head) {
            tracing::error!(path = %self.head_path.display(), error = %e, "cannot write the audit head anchor");
        }
    }
}

/// Wraps a SQLite error with the database's path.
fn database(path: &Path) -> impl Fn(rusqlite::Error) -> AuditError + '_ {
    move |source| AuditError::Database {
        path: path.to_path_buf(),
        source,
    }
}

/// Numbers, chains and inserts one event inside the caller's transaction.
fn insert(conn: &Connection, event: &AuditEvent) -> rusqlite::Result<StoredRow> {
    let (seq, prev_hash) = match store::last_entry(conn)? {
        Some((seq, hash)) => (seq + 1, hash),
        None => match store::checkpoint(conn)? {
            Some(c) => (c.seq + 1, c.entry_hash),
            None => (1, GENESIS_HASH.to_string()),
        },
    };
    let mut row = StoredRow::new(seq, now_utc_us(), event, &prev_hash);
    row.entry_hash = entry_hash(&row);
    row.insert(conn)?;
    Ok(row)
}

/// Deletes the run of entries at the start of the log recorded before
/// `cutoff`, sets the checkpoint, and appends the `audit_pruned` entry.
/// `None` when there is nothing to prune.
fn prune_before(conn: &Connection, cutoff: i64) -> rusqlite::Result<Option<StoredRow>> {
    let Some((last_seq, _)) = store::last_entry(conn)? else {
        return Ok(None);
    };
    let first_kept: Option<i64> = conn.query_row(
        "SELECT MIN(seq) FROM entries WHERE time_us >= ?1",
        [cutoff],
        |r| r.get(0),
    )?;
    let through = first_kept.map_or(last_seq, |seq| seq - 1);
    let already = store::checkpoint(conn)?.map_or(0, |c| c.seq);
    if through <= already {
        return Ok(None);
    }
    let through_hash: String = conn.query_row(
        "SELECT entry_hash FROM entries WHERE seq = ?1",
        [through],
        |r| r.get(0),
    )?;
    let removed = conn.execute("DELETE FROM entries WHERE seq <= ?1", [through])?;
    conn.execute(
        "INSERT OR REPLACE INTO checkpoint (id, seq, entry_hash, pruned_at_us) VALUES (1, ?1, ?2, ?3)",
        rusqlite::params![through, through_hash, now_utc_us()],
    )?;
    let event = AuditEvent::new(Component::Audit, EventType::AuditPruned, Identity::system())
        .details(serde_json::json!({
            "through_seq": through,
            "through_hash": through_hash,
            "entries_removed": removed,
            "older_than": format_utc_us(cutoff),
        }));
    insert(conn, &event).map(Some)
}

/// One appender per data dir, across processes.
fn lock(path: &Path, data_dir: &Path) -> Result<File, AuditError> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| AuditError::Lock {
            path: path.to_path_buf(),
            source,
        })?;
    // SAFETY: flock on a valid, owned descriptor.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(AuditError::Locked(data_dir.to_path_buf()));
    }
    Ok(file)
}
