//! The recording store: segment files of fragmented MP4 under the data dir,
//! and a SQLite index of which bytes cover which UTC time.
//!
//! Layout and crash-safety rules are in docs/storage.md.

pub mod ballast;
pub mod index;
pub mod paths;
pub mod recovery;
pub mod retention;
pub(crate) mod schema;
pub mod segment_file;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};

use crate::config::{CameraConfig, StreamKind};
use crate::health::Health;
pub use index::IndexWriter;
pub use schema::SCHEMA_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another Porchlight process is using {0} (is the daemon running?)")]
    Locked(PathBuf),
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the recording index {path}: {source}")]
    Index {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("recovery failed: {0}")]
    Recovery(#[from] recovery::CheckError),
    #[error("cannot start the index writer: {0}")]
    Thread(std::io::Error),
}

/// An exclusive claim on a data dir, held for the life of the process.
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = paths::lock_path(data_dir);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StoreError::Lock {
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on a valid, owned descriptor.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(StoreError::Locked(data_dir.to_path_buf()));
        }
        Ok(DataDirLock { _file: file })
    }
}

/// An open store: the lock, the writer thread and the stream ids.
pub struct Store {
    pub data_dir: PathBuf,
    pub index: IndexWriter,
    pub ballast: Arc<ballast::Ballast>,
    stream_ids: BTreeMap<(String, StreamKind), i64>,
    _lock: DataDirLock,
}

impl Store {
    /// Locks the data dir, opens (or creates) the index, repairs what a crash
    /// left behind, and starts the index writer.
    pub fn open(
        data_dir: &Path,
        cameras: &[CameraConfig],
        health: Arc<Health>,
    ) -> Result<Store, StoreError> {
        let lock = DataDirLock::acquire(data_dir)?;
        let index_path = paths::index_path(data_dir);
        let mut conn = schema::open(&index_path).map_err(|source| StoreError::Index {
            path: index_path.clone(),
            source,
        })?;

        let report = recovery::check(&mut conn, data_dir, recovery::Depth::Quick, true)?;
        for problem in &report.problems {
            tracing::info!(%problem, "repaired at start-up");
        }

        let mut stream_ids = BTreeMap::new();
        for cam in cameras {
            for &kind in &cam.streams {
                let id =
                    ensure_stream(&conn, &cam.name, kind).map_err(|source| StoreError::Index {
                        path: index_path.clone(),
                        source,
                    })?;
                stream_ids.insert((cam.name.clone(), kind), id);
            }
        }
        let disk_total = retention::disk_space(data_dir)
            .map(|d| d.total)
            .unwrap_or(0);
        let ballast = Arc::new(ballast::Ballast::new(data_dir, disk_total));
        if let Err(e) = ballast.lay_down() {
            tracing::warn!(error = %e, "cannot lay down the disk-full ballast (is the disk already full?)");
        }
        let index =
            IndexWriter::spawn(conn, health, ballast.clone()).map_err(StoreError::Thread)?;
        Ok(Store {
            data_dir: data_dir.to_path_buf(),
            index,
            ballast,
            stream_ids,
            _lock: lock,
        })
    }

    pub fn stream_id(&self, camera: &str, kind: StreamKind) -> Option<i64> {
        self.stream_ids.get(&(camera.to_string(), kind)).copied()
    }
}

/// A read-only connection for queries (WAL lets it run beside the writer).
pub fn open_reader(data_dir: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        paths::index_path(data_dir),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Opens the index for `porchlight check` (the caller holds the lock).
pub fn open_index_for_check(data_dir: &Path) -> rusqlite::Result<Connection> {
    schema::open(&paths::index_path(data_dir))
}

fn ensure_stream(conn: &Connection, camera: &str, kind: StreamKind) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT OR IGNORE INTO streams (camera, kind) VALUES (?, ?)",
        [camera, kind.as_str()],
    )?;
    conn.query_row(
        "SELECT id FROM streams WHERE camera = ? AND kind = ?",
        [camera, kind.as_str()],
        |r| r.get(0),
    )
}
