//! Where things live under the data directory.

use std::path::{Path, PathBuf};

/// The SQLite index.
pub fn index_path(data_dir: &Path) -> PathBuf {
    data_dir.join("index.sqlite3")
}

/// Held (flock) by whoever may write the store: the daemon or `check --repair`.
pub fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join("porchlight.lock")
}

/// Top of the segment file tree.
pub const RECORDINGS_DIR: &str = "recordings";

/// `recordings/<camera>/<stream>/<id>-<UTC start>.mp4`, relative to the data
/// dir. The id makes it unique; the time makes the tree browsable by hand.
pub fn segment_file_name(camera: &str, stream: &str, id: i64, start_utc_us: i64) -> String {
    let stamp = time::OffsetDateTime::from_unix_timestamp(start_utc_us.div_euclid(1_000_000))
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| "unknown-time".into());
    format!("{RECORDINGS_DIR}/{camera}/{stream}/{id:010}-{stamp}.mp4")
}

/// The owner's audit log: its own database, never touched by video retention.
pub fn audit_db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit.db")
}

/// The audit log's head anchor (newest seq and hash), outside the database.
pub fn audit_head_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit.head")
}

/// Held (flock) by the one process that appends to the audit log.
pub fn audit_lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit.lock")
}

/// Police footage requests, the owner's answers and download tokens: its
/// own database, written by the daemon and the owner's CLI.
pub fn requests_db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("requests.db")
}
