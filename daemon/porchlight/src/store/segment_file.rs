//! Appending fragments to one segment file, durably.
//!
//! Order matters for crash safety: the file is created with O_EXCL, its init
//! segment written and fdatasync'd, and its directory fsync'd; each fragment
//! is written with one vectored write and fdatasync'd before its index row is
//! sent. A failed write is rolled back (truncated) so the file never keeps a
//! half fragment that we know about.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct SegmentFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl SegmentFile {
    /// Creates the file (which must not exist) holding `init`.
    pub fn create(path: &Path, init: &[u8]) -> io::Result<SegmentFile> {
        let dir = path.parent().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "segment path has no parent")
        })?;
        std::fs::create_dir_all(dir)?;
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        let written = file.write_all(init).and_then(|()| file.sync_data());
        if let Err(e) = written {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        sync_dir(dir)?;
        Ok(SegmentFile {
            path: path.to_path_buf(),
            file,
            len: init.len() as u64,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `parts` (moof + mdat header, then sample data) and makes them
    /// durable. Returns the fragment's offset in the file.
    pub fn append(&mut self, parts: &[&[u8]]) -> io::Result<u64> {
        let offset = self.len;
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let result = write_all_vectored(&mut self.file, parts).and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += total;
                Ok(offset)
            }
            Err(e) => {
                check_sync_error(&e, &self.path);
                // Roll back whatever part of the fragment reached the file,
                // and the write position with it (else the next write leaves a hole).
                let rolled_back = self
                    .file
                    .set_len(offset)
                    .and_then(|()| self.file.seek(SeekFrom::Start(offset)));
                if let Err(trunc) = rolled_back {
                    tracing::warn!(path = %self.path.display(), error = %trunc, "could not roll back a failed write");
                }
                Err(e)
            }
        }
    }
}

fn write_all_vectored(file: &mut File, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| IoSlice::new(p))
        .collect();
    let mut remaining: &mut [IoSlice<'_>] = &mut slices;
    while !remaining.is_empty() {
        // Linux caps iovecs per call (IOV_MAX = 1024).
        let batch = remaining.len().min(1024);
        match file.write_vectored(&remaining[..batch]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            Ok(n) => IoSlice::advance_slices(&mut remaining, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// fsyncs a directory so a new or removed entry survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let result = File::open(dir).and_then(|d| d.sync_all());
    if let Err(e) = &result {
        check_sync_error(e, dir);
    }
    result
}

/// True when the error means the disk (or quota) is full.
pub fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT)
    )
}

/// After a failed fsync the kernel may have dropped the dirty pages and will
/// report success next time ("fsyncgate"), so continuing could index footage
/// that is gone. I/O errors abort; systemd restarts us and recovery checks
/// the files against the index. A full disk is not such an error.
fn check_sync_error(error: &io::Error, path: &Path) {
    if error.raw_os_error() == Some(libc::EIO) {
        tracing::error!(path = %path.display(), %error, "I/O error while syncing; aborting so recovery can run");
        std::process::abort();
    }
}
