//! The owner's audit log: append-only, hash-chained, kept apart from video.
//!
//! Every request, decision, approval, denial, download, live-view minute,
//! policy change and failed login is one entry in `<data_dir>/audit.db`.
//! Each entry holds the hash of the one before, and `audit.head` remembers
//! where the log ended, so `porchlight audit verify` can name any entry that
//! was edited, removed or moved. Decisions and limits: docs/audit.md.
//!
//! Components log through a cloned [`AuditLog`]:
//!
//! ```no_run
//! # async fn example(audit: porchlight::audit::AuditLog) -> Result<(), porchlight::audit::AuditError> {
//! use porchlight::audit::{AuditEvent, Component, EventType, Identity, Outcome};
//! audit
//!     .append(
//!         AuditEvent::new(Component::Relay, EventType::AuthFailure, Identity::anonymous())
//!             .outcome(Outcome::refused("client certificate not pinned")),
//!     )
//!     .await?;
//! # Ok(()) }
//! ```

mod anchor;
mod event;
mod hash;
mod query;
pub mod show;
mod store;
mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

pub use event::{
    AuditEntry, AuditEvent, AuditObject, Component, EventType, Identity, IdentityKind, Outcome,
    OutcomeKind,
};
pub use hash::GENESIS_HASH;
pub use query::{AuditQuery, DEFAULT_LIMIT, MAX_LIMIT};
pub use verify::{Problem, VerifyReport};

use crate::store::paths;
use writer::{Command, Writer};

/// Entries are kept at least this long (a year), whatever the config says.
pub const MIN_RETENTION: Duration = Duration::from_secs(365 * 86_400);
/// Default for `audit.max_age`: a year and a bit, so a full year is always there.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 86_400);

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another Porchlight process is writing the audit log in {0} (is the daemon running?)")]
    Locked(PathBuf),
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no audit log at {0} (has the daemon run with this data_dir?)")]
    Missing(PathBuf),
    #[error("audit log {path}: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the audit log writer has stopped")]
    WriterGone,
    #[error("cannot start the audit log writer thread: {0}")]
    Thread(std::io::Error),
    #[error("an audit log kept {days} days is too short: entries are kept at least 365 days")]
    RetentionTooShort { days: u64 },
    #[error("refusing to prune a damaged audit log ({0}); run `porchlight audit verify`")]
    Damaged(String),
}

/// A handle on the open log. Cheap to clone and safe to share between
/// threads and tasks; all appends go through one writer thread, which
/// numbers and chains them in commit order.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

/// Shared by all clones; the last one dropped stops the writer and waits for
/// it, so the database is closed cleanly (WAL checkpointed) before exit.
struct Inner {
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
    data_dir: PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl AuditLog {
    /// Opens (creating if needed) `<data_dir>/audit.db` for appending and
    /// starts the writer thread. One process per data dir may hold it.
    /// Blocks briefly (file locks, SQLite open): call at start-up.
    pub fn open(data_dir: &Path) -> Result<AuditLog, AuditError> {
        let writer = Writer::open(data_dir)?;
        let (commands, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(AuditError::Thread)?;
        Ok(AuditLog {
            inner: Arc::new(Inner {
                commands: Some(commands),
                thread: Some(thread),
                data_dir: data_dir.to_path_buf(),
            }),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Records `event`; resolves once it is durably committed. Does not
    /// block the runtime: the writer thread does the I/O.
    pub async fn append(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Append {
            event: Box::new(event),
            reply,
        })?;
        answer.await.map_err(|_| AuditError::WriterGone)?
    }

    /// [`append`](Self::append) for threads that are not async (blocks
    /// until committed; do not call on a runtime worker thread).
    pub fn append_blocking(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Append {
            event: Box::new(event),
            reply,
        })?;
        futures::executor::block_on(answer).map_err(|_| AuditError::WriterGone)?
    }

    /// Prunes entries older than `max_age` (at least [`MIN_RETENTION`]) from
    /// the start of the log; `Some` is the `audit_pruned` entry recording it.
    pub async fn prune(&self, max_age: Duration) -> Result<Option<AuditEntry>, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Prune { max_age, reply })?;
        answer.await.map_err(|_| AuditError::WriterGone)?
    }

    /// Reads entries on a fresh read-only connection. Blocking: from async
    /// code, call it inside `tokio::task::spawn_blocking`.
    pub fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, AuditError> {
        AuditReader::open(self.data_dir())?.query(query)
    }

    /// Verifies the whole chain. Blocking (reads every entry): from async
    /// code, call it inside `tokio::task::spawn_blocking`.
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        Ok(AuditReader::open(self.data_dir())?.verify())
    }

    fn send(&self, command: Command) -> Result<(), AuditError> {
        self.inner
            .commands
            .as_ref()
            .ok_or(AuditError::WriterGone)?
            .send(command)
            .map_err(|_| AuditError::WriterGone)
    }
}

/// Read-only access, for the CLI and the API: works while the daemon
/// appends (WAL), and never creates or changes anything.
pub struct AuditReader {
    conn: rusqlite::Connection,
    db_path: PathBuf,
    head_path: PathBuf,
}

impl AuditReader {
    pub fn open(data_dir: &Path) -> Result<AuditReader, AuditError> {
        let db_path = paths::audit_db_path(data_dir);
        if !db_path.exists() {
            return Err(AuditError::Missing(db_path));
        }
        let conn = store::open_reader(&db_path).map_err(|source| AuditError::Database {
            path: db_path.clone(),
            source,
        })?;
        Ok(AuditReader {
            conn,
            db_path,
            head_path: paths::audit_head_path(data_dir),
        })
    }

    pub fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, AuditError> {
        query::query(&self.conn, query).map_err(|source| AuditError::Database {
            path: self.db_path.clone(),
            source,
        })
    }

    /// Walks the whole chain and checks its end against the head anchor.
    pub fn verify(&self) -> VerifyReport {
        // Anchor first: entries appended after this read only make the log
        // longer than the anchor, which is fine.
        let head = anchor::read(&self.head_path);
        verify::verify(&self.conn, head)
    }
}

#[cfg(test)]
mod tests;
