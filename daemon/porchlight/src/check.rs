//! `porchlight check`: the fsck of the recording store.

use std::path::Path;

use anyhow::Context;

use crate::store::recovery::{self, CheckReport, Depth};
use crate::store::{open_index_for_check, paths, DataDirLock};

/// Checks every segment file against the index; repairs when asked. Refuses
/// to run while the daemon holds the data dir.
pub fn run(data_dir: &Path, repair: bool) -> anyhow::Result<CheckReport> {
    if !paths::index_path(data_dir).exists() {
        anyhow::bail!(
            "no recording index at {} (has the daemon ever run with this data_dir?)",
            paths::index_path(data_dir).display()
        );
    }
    let _lock = DataDirLock::acquire(data_dir)?;
    let mut conn = open_index_for_check(data_dir).context("cannot open the recording index")?;
    Ok(recovery::check(&mut conn, data_dir, Depth::Full, repair)?)
}
