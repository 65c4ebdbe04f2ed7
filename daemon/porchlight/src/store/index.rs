//! The one thread that writes the recording index.
//!
//! Every stream sends its index changes here; the thread commits them in
//! batches (one transaction per wake-up) so 64 cameras cost a handful of
//! commits a second, not 64.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use super::ballast::Ballast;
use crate::health::Health;

fn is_disk_full(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// A segment about to be created (its row is written before its file).
#[derive(Clone, Debug)]
pub struct NewSegment {
    pub stream_id: i64,
    pub start_utc_us: i64,
    pub init_len: u64,
    pub video_codec: String,
    pub width: u32,
    pub height: u32,
    pub audio_codec: Option<String>,
    pub video_timescale: u32,
}

/// One stored fragment (moof + mdat), already fdatasync'd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentRow {
    pub segment_id: i64,
    pub seq: u32,
    pub file_offset: u64,
    pub length: u64,
    pub start_utc_us: i64,
    pub duration_us: i64,
    pub media_start: u64,
    pub frames: u32,
    pub starts_with_key: bool,
}

/// A segment removed from the index whose file must now be unlinked.
#[derive(Clone, Debug)]
pub struct DeletedSegment {
    pub file_name: String,
    pub bytes: u64,
}

type Reply<T> = oneshot::Sender<Result<T, String>>;

enum IndexOp {
    CreateSegment(NewSegment, Reply<(i64, String)>),
    AddFragment(FragmentRow),
    CloseSegment(i64),
    DeleteSegments(Vec<i64>, Reply<Vec<DeletedSegment>>),
    ForgetGarbage(Vec<String>),
    Flush(oneshot::Sender<()>),
}

/// Cheap handle to the index thread.
#[derive(Clone)]
pub struct IndexWriter {
    tx: mpsc::Sender<IndexOp>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the index writer has stopped")]
    Stopped,
    #[error("index write failed: {0}")]
    Failed(String),
}

impl IndexWriter {
    /// Starts the writer thread on an open connection.
    pub fn spawn(
        conn: Connection,
        health: Arc<Health>,
        ballast: Arc<Ballast>,
    ) -> std::io::Result<IndexWriter> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("index-writer".into())
            .spawn(move || run(conn, rx, health, ballast))?;
        Ok(IndexWriter { tx })
    }

    /// Inserts a segment row (committed before returning) and returns its id
    /// and file name; the caller then creates the file.
    pub async fn create_segment(&self, new: NewSegment) -> Result<(i64, String), IndexError> {
        let (reply, wait) = oneshot::channel();
        self.send(IndexOp::CreateSegment(new, reply))?;
        wait.await
            .map_err(|_| IndexError::Stopped)?
            .map_err(IndexError::Failed)
    }

    /// Records a fragment whose bytes are already durable.
    pub fn add_fragment(&self, row: FragmentRow) -> Result<(), IndexError> {
        self.send(IndexOp::AddFragment(row))
    }

    pub fn close_segment(&self, segment_id: i64) -> Result<(), IndexError> {
        self.send(IndexOp::CloseSegment(segment_id))
    }

    /// Removes segments from the index (moving their files to `garbage`).
    pub async fn delete_segments(&self, ids: Vec<i64>) -> Result<Vec<DeletedSegment>, IndexError> {
        let (reply, wait) = oneshot::channel();
        self.send(IndexOp::DeleteSegments(ids, reply))?;
        wait.await
            .map_err(|_| IndexError::Stopped)?
            .map_err(IndexError::Failed)
    }

    /// Forgets garbage entries whose files are now unlinked.
    pub fn forget_garbage(&self, file_names: Vec<String>) -> Result<(), IndexError> {
        self.send(IndexOp::ForgetGarbage(file_names))
    }

    /// Waits until everything sent so far is committed.
    pub async fn flush(&self) -> Result<(), IndexError> {
        let (reply, wait) = oneshot::channel();
        self.send(IndexOp::Flush(reply))?;
        wait.await.map_err(|_| IndexError::Stopped)
    }

    fn send(&self, op: IndexOp) -> Result<(), IndexError> {
        self.tx.send(op).map_err(|_| IndexError::Stopped)
    }
}

/// Most ops we hold while the database refuses writes (disk full); past it,
/// fragment rows are dropped (their bytes stay in the files and recovery
/// re-indexes them at the next start).
const MAX_PENDING: usize = 100_000;

fn run(
    mut conn: Connection,
    rx: mpsc::Receiver<IndexOp>,
    health: Arc<Health>,
    ballast: Arc<Ballast>,
) {
    let mut pending: Vec<IndexOp> = Vec::new();
    loop {
        if pending.is_empty() {
            match rx.recv() {
                Ok(op) => pending.push(op),
                Err(_) => return,
            }
        }
        // Gather whatever else is queued, briefly, to share one commit.
        let gather_until = std::time::Instant::now() + Duration::from_millis(50);
        while let Some(left) = gather_until.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(op) => pending.push(op),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = apply_batch(&mut conn, &mut pending);
                    return;
                }
            }
        }
        match apply_batch(&mut conn, &mut pending) {
            Ok(()) => health.store_ok.store(true, Ordering::Relaxed),
            Err(e) => {
                if is_disk_full(&e) && ballast.release() {
                    // Room for this commit and for retention's deletions.
                    continue;
                }
                tracing::error!(error = %e, pending = pending.len(), "index commit failed; will retry");
                if pending.len() > MAX_PENDING {
                    tracing::error!("dropping {} queued index updates", pending.len());
                    pending.clear();
                    health.store_ok.store(false, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// What one op produced inside a successful transaction.
enum Outcome {
    Nothing,
    Created(i64, String),
    Deleted(Vec<DeletedSegment>),
}

/// Applies `pending` in one transaction. On success `pending` is emptied and
/// replies are sent; on failure ops needing a reply are answered with the
/// error and dropped, and the rest stay queued for a retry.
fn apply_batch(conn: &mut Connection, pending: &mut Vec<IndexOp>) -> rusqlite::Result<()> {
    let result = (|| -> rusqlite::Result<Vec<Outcome>> {
        let tx = conn.transaction()?;
        let mut outcomes = Vec::with_capacity(pending.len());
        for op in pending.iter() {
            outcomes.push(match op {
                IndexOp::CreateSegment(new, _) => {
                    let (id, name) = insert_segment(&tx, new)?;
                    Outcome::Created(id, name)
                }
                IndexOp::AddFragment(row) => {
                    insert_fragment(&tx, row)?;
                    Outcome::Nothing
                }
                IndexOp::CloseSegment(id) => {
                    tx.execute("UPDATE segments SET open = 0 WHERE id = ?", [*id])?;
                    Outcome::Nothing
                }
                IndexOp::DeleteSegments(ids, _) => Outcome::Deleted(delete_segments(&tx, ids)?),
                IndexOp::ForgetGarbage(names) => {
                    for name in names {
                        tx.execute("DELETE FROM garbage WHERE file_name = ?", [name])?;
                    }
                    Outcome::Nothing
                }
                IndexOp::Flush(_) => Outcome::Nothing,
            });
        }
        tx.commit()?;
        Ok(outcomes)
    })();
    match result {
        Ok(outcomes) => {
            for (op, outcome) in pending.drain(..).zip(outcomes) {
                match (op, outcome) {
                    (IndexOp::CreateSegment(_, reply), Outcome::Created(id, name)) => {
                        let _ = reply.send(Ok((id, name)));
                    }
                    (IndexOp::DeleteSegments(_, reply), Outcome::Deleted(deleted)) => {
                        let _ = reply.send(Ok(deleted));
                    }
                    (IndexOp::Flush(reply), _) => {
                        let _ = reply.send(());
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        Err(e) => {
            let message = e.to_string();
            for op in std::mem::take(pending) {
                match op {
                    IndexOp::CreateSegment(_, reply) => {
                        let _ = reply.send(Err(message.clone()));
                    }
                    IndexOp::DeleteSegments(_, reply) => {
                        let _ = reply.send(Err(message.clone()));
                    }
                    other => pending.push(other),
                }
            }
            Err(e)
        }
    }
}

pub(crate) fn insert_segment(
    conn: &Connection,
    new: &NewSegment,
) -> rusqlite::Result<(i64, String)> {
    let (camera, kind): (String, String) = conn.query_row(
        "SELECT camera, kind FROM streams WHERE id = ?",
        [new.stream_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // The id is not known before the insert; a unique placeholder name is
    // replaced right after, inside the same transaction.
    conn.execute(
        "INSERT INTO segments (stream_id, file_name, open, start_utc_us, end_utc_us, bytes, init_len,
                               frames, video_codec, width, height, audio_codec, video_timescale)
         VALUES (?1, 'pending-' || hex(randomblob(8)), 1, ?2, ?2, ?3, ?3, 0, ?4, ?5, ?6, ?7, ?8)",
        params![
            new.stream_id,
            new.start_utc_us,
            new.init_len as i64,
            new.video_codec,
            new.width,
            new.height,
            new.audio_codec,
            new.video_timescale
        ],
    )?;
    let id = conn.last_insert_rowid();
    let name = super::paths::segment_file_name(&camera, &kind, id, new.start_utc_us);
    conn.execute(
        "UPDATE segments SET file_name = ? WHERE id = ?",
        params![name, id],
    )?;
    Ok((id, name))
}

pub(crate) fn insert_fragment(conn: &Connection, row: &FragmentRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO fragments (segment_id, seq, file_offset, length, start_utc_us, duration_us,
                                media_start, frames, starts_with_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            row.segment_id,
            row.seq,
            row.file_offset as i64,
            row.length as i64,
            row.start_utc_us,
            row.duration_us,
            row.media_start as i64,
            row.frames,
            row.starts_with_key
        ],
    )?;
    conn.execute(
        "UPDATE segments SET end_utc_us = MAX(end_utc_us, ?2), bytes = MAX(bytes, ?3), frames = frames + ?4
         WHERE id = ?1",
        params![
            row.segment_id,
            row.start_utc_us + row.duration_us,
            (row.file_offset + row.length) as i64,
            row.frames
        ],
    )?;
    Ok(())
}

pub(crate) fn delete_segments(
    conn: &Connection,
    ids: &[i64],
) -> rusqlite::Result<Vec<DeletedSegment>> {
    let mut deleted = Vec::with_capacity(ids.len());
    for &id in ids {
        let found = conn.query_row(
            "SELECT file_name, bytes FROM segments WHERE id = ?",
            [id],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        );
        let (file_name, bytes) = match found {
            Ok(v) => v,
            Err(rusqlite::Error::QueryReturnedNoRows) => continue,
            Err(e) => return Err(e),
        };
        conn.execute(
            "INSERT OR IGNORE INTO garbage (file_name) VALUES (?)",
            [&file_name],
        )?;
        conn.execute("DELETE FROM fragments WHERE segment_id = ?", [id])?;
        conn.execute("DELETE FROM segments WHERE id = ?", [id])?;
        deleted.push(DeletedSegment {
            file_name,
            bytes: bytes.max(0) as u64,
        });
    }
    Ok(deleted)
}
