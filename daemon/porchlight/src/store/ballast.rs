//! A small file kept on the data disk so that a full disk never wedges the
//! index: deleting old footage needs a database commit, and a commit needs
//! a little space. When a commit fails, the ballast is released; retention
//! then frees real space and the ballast is laid down again. Footage
//! writers also leave the ballast's size free (see `segment_file`), so the
//! room a release makes is the index's, not the next fragment's.

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Ballast {
    path: PathBuf,
    size: u64,
}

impl Ballast {
    /// 1% of the disk, between 1 MiB and 64 MiB.
    pub fn new(data_dir: &Path, disk_total: u64) -> Ballast {
        Ballast {
            path: data_dir.join("ballast"),
            size: (disk_total / 100).clamp(1 << 20, 64 << 20),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn is_present(&self) -> bool {
        self.path.exists()
    }

    /// Writes the ballast (real zeros, not a sparse file, so it holds space).
    pub fn lay_down(&self) -> std::io::Result<()> {
        if self.is_present() {
            return Ok(());
        }
        let temp = self.path.with_extension("new");
        let result = (|| {
            let mut file = std::fs::File::create(&temp)?;
            let chunk = vec![0u8; 1 << 20];
            let mut left = self.size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                file.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    /// Frees the ballast's space at once. True if there was one to free.
    pub fn release(&self) -> bool {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                tracing::warn!(
                    bytes = self.size,
                    "disk full: released the ballast so old footage can be deleted"
                );
                true
            }
            Err(_) => false,
        }
    }
}
