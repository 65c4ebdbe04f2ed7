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
    index_headroom: u64,
}

/// Footage never takes the last `index_headroom` bytes of the disk: deleting
/// old footage needs an index commit, and a commit needs a little room.
/// Without this floor the writers fill every byte the ballast frees before
/// retention can commit, and the disk stays full for good. A write that
/// would cross the floor fails as ENOSPC, like a truly full disk.
fn ensure_room(available: u64, bytes: u64, index_headroom: u64) -> io::Result<()> {
    if available < bytes.saturating_add(index_headroom) {
        return Err(io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(())
}

impl SegmentFile {
    /// Creates the file (which must not exist) holding `init`, if the disk
    /// has room for it above `index_headroom`.
    pub fn create(path: &Path, init: &[u8], index_headroom: u64) -> io::Result<SegmentFile> {
        let dir = path.parent().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "segment path has no parent")
        })?;
        std::fs::create_dir_all(dir)?;
        ensure_room(
            super::retention::disk_space(dir)?.available,
            init.len() as u64,
            index_headroom,
        )?;
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
            index_headroom,
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
        ensure_room(
            super::retention::disk_space(&self.path)?.available,
            total,
            self.index_headroom,
        )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_would_take_the_index_headroom_is_refused_as_a_full_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cam/main/1.mp4");
        let mut file = SegmentFile::create(&path, b"init", 0).expect("create with no headroom");
        assert_eq!(file.append(&[b"moof", b"mdat"]).expect("append"), 4);

        // Headroom larger than any disk: every write is refused, as ENOSPC,
        // and the file keeps only what was durable before.
        file.index_headroom = u64::MAX / 2;
        let refused = file.append(&[b"more"]).expect_err("refused");
        assert!(is_disk_full(&refused), "{refused}");
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), 12);

        let other = dir.path().join("cam/main/2.mp4");
        let refused = SegmentFile::create(&other, b"init", u64::MAX / 2).err();
        assert!(refused.as_ref().is_some_and(is_disk_full), "{refused:?}");
        assert!(!other.exists(), "no file is left for a refused segment");
    }
}
