//! Checking the index against the files, and repairing what a crash, a
//! power cut or a full disk left behind. Runs at every start (repairing)
//! and as `porchlight check [--repair]`.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use super::index::{insert_fragment, FragmentRow};
use super::paths::RECORDINGS_DIR;

/// How thorough a check is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Start-up: parse only files still open for writing; for the rest compare sizes.
    Quick,
    /// `porchlight check`: parse every file and compare it fragment by fragment.
    Full,
}

/// One inconsistency between the index and the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A segment row whose file is gone.
    MissingFile { file: String },
    /// The file is shorter than the index says (footage the index claims is not there).
    TruncatedFile {
        file: String,
        indexed: u64,
        on_disk: u64,
    },
    /// Bytes after the last whole fragment (a write cut short).
    PartialTail { file: String, bytes: u64 },
    /// Whole fragments on disk that the index does not list yet (crash between fsync and commit).
    UnindexedFragments { file: String, count: usize },
    /// Index rows that do not match the fragments in the file.
    MismatchedFragments { file: String, detail: String },
    /// A file the index does not know.
    OrphanFile { file: String },
    /// A file that cannot be parsed at all.
    Unreadable { file: String, error: String },
    /// A segment still marked open (the writer did not close it).
    LeftOpen { file: String },
    /// A file scheduled for deletion that is still there.
    Garbage { file: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingFile { file } => {
                write!(f, "missing file: {file} (indexed but not on disk)")
            }
            Problem::TruncatedFile {
                file,
                indexed,
                on_disk,
            } => {
                write!(
                    f,
                    "truncated file: {file} has {on_disk} bytes, index expects {indexed}"
                )
            }
            Problem::PartialTail { file, bytes } => write!(
                f,
                "partial tail: {file} ends with {bytes} bytes of an unfinished fragment"
            ),
            Problem::UnindexedFragments { file, count } => write!(
                f,
                "unindexed fragments: {file} holds {count} whole fragments the index lacks"
            ),
            Problem::MismatchedFragments { file, detail } => {
                write!(f, "index mismatch: {file}: {detail}")
            }
            Problem::OrphanFile { file } => write!(f, "orphan file: {file} is not in the index"),
            Problem::Unreadable { file, error } => write!(f, "unreadable file: {file}: {error}"),
            Problem::LeftOpen { file } => write!(
                f,
                "left open: {file} was being written when the daemon stopped"
            ),
            Problem::Garbage { file } => write!(f, "pending deletion: {file}"),
        }
    }
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub segments_checked: usize,
    pub fragments_checked: usize,
    pub problems: Vec<Problem>,
    pub repaired: bool,
}

impl CheckReport {
    /// Problems that mean footage or the index is inconsistent. A segment
    /// left open is normal after a crash and not counted here.
    pub fn is_clean(&self) -> bool {
        self.problems
            .iter()
            .all(|p| matches!(p, Problem::LeftOpen { .. } | Problem::Garbage { .. }))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("index query failed: {0}")]
    Index(#[from] rusqlite::Error),
    #[error("cannot list {path}: {source}")]
    Walk {
        path: PathBuf,
        source: std::io::Error,
    },
}

struct SegmentRow {
    id: i64,
    file_name: String,
    open: bool,
    start_utc_us: i64,
    bytes: u64,
    video_timescale: u32,
}

/// Compares index and disk; with `repair`, makes them agree again, never
/// deleting footage that is whole on disk.
pub fn check(
    conn: &mut Connection,
    data_dir: &Path,
    depth: Depth,
    repair: bool,
) -> Result<CheckReport, CheckError> {
    let mut report = CheckReport {
        repaired: repair,
        ..Default::default()
    };

    collect_garbage(conn, data_dir, repair, &mut report)?;

    let segments: Vec<SegmentRow> = {
        let mut stmt = conn.prepare(
            "SELECT id, file_name, open, start_utc_us, bytes, video_timescale FROM segments ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SegmentRow {
                id: r.get(0)?,
                file_name: r.get(1)?,
                open: r.get(2)?,
                start_utc_us: r.get(3)?,
                bytes: r.get::<_, i64>(4)?.max(0) as u64,
                video_timescale: r.get::<_, i64>(5)?.clamp(1, u32::MAX as i64) as u32,
            })
        })?;
        rows.collect::<Result<_, _>>()?
    };

    let mut known = HashSet::with_capacity(segments.len());
    for segment in &segments {
        known.insert(segment.file_name.clone());
        report.segments_checked += 1;
        check_segment(conn, data_dir, segment, depth, repair, &mut report)?;
    }

    find_orphans(data_dir, &known, repair, &mut report)?;
    Ok(report)
}

fn collect_garbage(
    conn: &Connection,
    data_dir: &Path,
    repair: bool,
    report: &mut CheckReport,
) -> Result<(), CheckError> {
    let names: Vec<String> = conn
        .prepare("SELECT file_name FROM garbage")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for name in names {
        let path = data_dir.join(&name);
        if path.exists() {
            report
                .problems
                .push(Problem::Garbage { file: name.clone() });
        }
        if repair {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "cannot delete old segment");
                    continue;
                }
            }
            conn.execute("DELETE FROM garbage WHERE file_name = ?", [&name])?;
        }
    }
    Ok(())
}

fn check_segment(
    conn: &mut Connection,
    data_dir: &Path,
    segment: &SegmentRow,
    depth: Depth,
    repair: bool,
    report: &mut CheckReport,
) -> Result<(), CheckError> {
    let path = data_dir.join(&segment.file_name);
    let file = segment.file_name.clone();
    let on_disk = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(_) => {
            report.problems.push(Problem::MissingFile { file });
            if repair {
                forget_segment(conn, segment.id)?;
            }
            return Ok(());
        }
    };
    if segment.open {
        report
            .problems
            .push(Problem::LeftOpen { file: file.clone() });
    }
    let needs_scan = depth == Depth::Full || segment.open || on_disk != segment.bytes;
    if !needs_scan {
        return Ok(());
    }

    let scan = match File::open(&path)
        .map_err(|e| e.to_string())
        .and_then(|f| porchlight_mp4::scan_segment(f, on_disk).map_err(|e| e.to_string()))
    {
        Ok(scan) => scan,
        Err(error) => {
            report.problems.push(Problem::Unreadable { file, error });
            if repair {
                forget_segment(conn, segment.id)?;
                remove_file_logged(&path);
            }
            return Ok(());
        }
    };

    let indexed: Vec<(u32, u64, u64)> = conn
        .prepare(
            "SELECT seq, file_offset, length FROM fragments WHERE segment_id = ? ORDER BY seq",
        )?
        .query_map([segment.id], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, i64>(1)?.max(0) as u64,
                r.get::<_, i64>(2)?.max(0) as u64,
            ))
        })?
        .collect::<Result<_, _>>()?;
    report.fragments_checked += scan.fragments.len();

    // Index rows must be a prefix of the fragments actually in the file.
    let mut matching = 0;
    for (i, &(_, offset, length)) in indexed.iter().enumerate() {
        match scan.fragments.get(i) {
            Some(found) if found.offset == offset && found.length == length => matching += 1,
            _ => break,
        }
    }
    if matching < indexed.len() {
        let lost_bytes = indexed[matching..].iter().map(|f| f.2).sum::<u64>();
        if on_disk < segment.bytes {
            report.problems.push(Problem::TruncatedFile {
                file: file.clone(),
                indexed: segment.bytes,
                on_disk,
            });
        } else {
            report.problems.push(Problem::MismatchedFragments {
                file: file.clone(),
                detail: format!(
                    "{} of {} indexed fragments ({lost_bytes} bytes) are not in the file",
                    indexed.len() - matching,
                    indexed.len()
                ),
            });
        }
    }
    let unindexed = scan.fragments.len().saturating_sub(matching);
    if unindexed > 0 && (matching == indexed.len()) {
        report.problems.push(Problem::UnindexedFragments {
            file: file.clone(),
            count: unindexed,
        });
    }
    if scan.valid_len < on_disk {
        report.problems.push(Problem::PartialTail {
            file: file.clone(),
            bytes: on_disk - scan.valid_len,
        });
    }

    if !repair {
        return Ok(());
    }
    // Re-derive the segment's fragment rows from the file: it is the truth.
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM fragments WHERE segment_id = ?", [segment.id])?;
    tx.execute(
        "UPDATE segments SET frames = 0, bytes = init_len, end_utc_us = start_utc_us, open = 0 WHERE id = ?",
        [segment.id],
    )?;
    let rows = fragment_rows(
        segment.id,
        segment.start_utc_us,
        segment.video_timescale,
        &scan.fragments,
    );
    for row in &rows {
        insert_fragment(&tx, row)?;
    }
    if scan.fragments.is_empty() {
        tx.execute("DELETE FROM segments WHERE id = ?", [segment.id])?;
    }
    tx.commit()?;
    if scan.fragments.is_empty() {
        remove_file_logged(&path);
    } else if scan.valid_len < on_disk {
        if let Err(e) = File::options().write(true).open(&path).and_then(|f| {
            f.set_len(scan.valid_len)?;
            f.sync_all()
        }) {
            tracing::warn!(file = %segment.file_name, error = %e, "cannot truncate partial tail");
        }
    }
    Ok(())
}

/// The index rows for the fragments a scan found in a segment file (the
/// file is the truth). Times come from the file's decode times, which a
/// damaged or hostile file can make huge: they saturate rather than wrap.
pub(crate) fn fragment_rows(
    segment_id: i64,
    segment_start_utc_us: i64,
    video_timescale: u32,
    fragments: &[porchlight_mp4::ScannedFragment],
) -> Vec<FragmentRow> {
    fragments
        .iter()
        .enumerate()
        .map(|(i, found)| FragmentRow {
            segment_id,
            seq: (i + 1) as u32,
            file_offset: found.offset,
            length: found.length,
            start_utc_us: segment_start_utc_us
                .saturating_add(ticks_to_us(found.video_decode_time, video_timescale)),
            duration_us: ticks_to_us(found.video_duration, video_timescale),
            media_start: found.video_decode_time,
            frames: found.video_samples,
            starts_with_key: found.starts_with_sync,
        })
        .collect()
}

/// Ticks to microseconds, saturating at `i64::MAX` (a `u64` of ticks at a
/// small timescale does not fit).
fn ticks_to_us(ticks: u64, timescale: u32) -> i64 {
    let us = u128::from(ticks) * 1_000_000 / u128::from(timescale.max(1));
    i64::try_from(us).unwrap_or(i64::MAX)
}

fn forget_segment(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM fragments WHERE segment_id = ?", [id])?;
    conn.execute("DELETE FROM segments WHERE id = ?", params![id])?;
    Ok(())
}

fn remove_file_logged(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove file");
        }
    }
}

/// Files under recordings/ that no segment row names.
fn find_orphans(
    data_dir: &Path,
    known: &HashSet<String>,
    repair: bool,
    report: &mut CheckReport,
) -> Result<(), CheckError> {
    let root = data_dir.join(RECORDINGS_DIR);
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(CheckError::Walk { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| CheckError::Walk {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                stack.push(path);
                continue;
            }
            let Ok(relative) = path.strip_prefix(data_dir) else {
                continue;
            };
            let relative = relative.to_string_lossy().into_owned();
            if !known.contains(&relative) {
                report.problems.push(Problem::OrphanFile { file: relative });
                if repair {
                    remove_file_logged(&path);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(offset: u64, decode_time: u64, duration: u64) -> porchlight_mp4::ScannedFragment {
        porchlight_mp4::ScannedFragment {
            offset,
            length: 100,
            sequence_number: 1,
            video_decode_time: decode_time,
            video_duration: duration,
            video_samples: 30,
            audio_samples: 0,
            starts_with_sync: true,
        }
    }

    #[test]
    fn rows_follow_the_file_and_start_at_the_segment() {
        let start = 1_795_521_600_000_000;
        let rows = fragment_rows(
            3,
            start,
            90_000,
            &[fragment(800, 0, 90_000), fragment(900, 90_000, 45_000)],
        );
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].seq, rows[1].seq), (1, 2));
        assert_eq!(rows[0].start_utc_us, start);
        assert_eq!(rows[1].start_utc_us, start + 1_000_000);
        assert_eq!(rows[1].duration_us, 500_000);
        assert_eq!(rows[1].file_offset, 900);
    }

    /// A damaged file's decode time (at any timescale) used to overflow
    /// `i64`: a wrapped, even negative, start time in release builds, a
    /// panic in debug builds. The fmp4_recovery fuzz target checks this.
    #[test]
    fn huge_decode_times_saturate_instead_of_wrapping() {
        let start = 1_795_521_600_000_000;
        for timescale in [1, 90_000] {
            let rows = fragment_rows(3, start, timescale, &[fragment(800, u64::MAX, u64::MAX)]);
            assert_eq!(rows[0].start_utc_us, i64::MAX);
            assert!(rows[0].duration_us > 0);
            assert!(rows[0].start_utc_us >= start);
        }
    }
}
