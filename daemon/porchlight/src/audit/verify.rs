//! `porchlight audit verify`: walks the chain and names every entry that was
//! edited, removed or moved, and checks the end against the head anchor.

use std::collections::HashMap;
use std::fmt;

use rusqlite::Connection;

use super::anchor::HeadAnchor;
use super::hash::{entry_hash, entry_hash_at, GENESIS_HASH};
use super::store::{self, Checkpoint, StoredRow, COLUMNS};

/// How far from its slot verify looks for a moved entry's true position.
const MOVE_SEARCH: i64 = 1024;

/// One thing wrong with the log, located by sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The entry no longer hashes to its stored hash.
    ContentsChanged {
        seq: i64,
    },
    /// The entry is intact but was written as another sequence number.
    OutOfOrder {
        seq: i64,
        written_as: i64,
    },
    /// Sequence numbers `from..=to` are absent.
    Missing {
        from: i64,
        to: i64,
    },
    /// The entry is self-consistent but does not link to the one before:
    /// the previous entry was rewritten with a recomputed hash.
    ChainBroken {
        seq: i64,
    },
    /// The anchor is ahead of the log: entries were cut off the end.
    TailRemoved {
        anchor_seq: i64,
        last_seq: Option<i64>,
    },
    /// The entry the anchor names carries another hash.
    AnchorMismatch {
        seq: i64,
    },
    /// Entries exist but no anchor does.
    AnchorMissing,
    AnchorUnreadable(String),
    /// The pruning checkpoint is not the one the last `audit_pruned` entry
    /// recorded (or no such entry remains).
    CheckpointUnconfirmed {
        seq: i64,
    },
    /// The database could not be read as an audit log.
    Unreadable(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::ContentsChanged { seq } => {
                write!(f, "entry {seq}: contents changed (hash mismatch)")
            }
            Problem::OutOfOrder { seq, written_as } => write!(
                f,
                "entry {seq} out of order (it was written as entry {written_as})"
            ),
            Problem::Missing { from, to } if from == to => write!(f, "entry {from} missing"),
            Problem::Missing { from, to } => write!(f, "entries {from}–{to} missing"),
            Problem::ChainBroken { seq } => write!(
                f,
                "entry {seq}: chain broken (entry {} was rewritten and its hash recomputed)",
                seq - 1
            ),
            Problem::TailRemoved {
                anchor_seq,
                last_seq: Some(last),
            } => write!(
                f,
                "head anchor says seq {anchor_seq} but log ends at {last} (entries removed from the end)"
            ),
            Problem::TailRemoved {
                anchor_seq,
                last_seq: None,
            } => write!(
                f,
                "head anchor says seq {anchor_seq} but the log is empty (entries removed)"
            ),
            Problem::AnchorMismatch { seq } => write!(
                f,
                "entry {seq}: hash differs from the one the head anchor recorded (rewritten)"
            ),
            Problem::AnchorMissing => f.write_str(
                "head anchor (audit.head) missing: cannot tell whether entries were removed from the end",
            ),
            Problem::AnchorUnreadable(why) => write!(f, "head anchor unreadable: {why}"),
            Problem::CheckpointUnconfirmed { seq } => write!(
                f,
                "pruning checkpoint at entry {seq} is not confirmed by an audit_pruned entry (entries removed from the start?)"
            ),
            Problem::Unreadable(why) => write!(f, "log unreadable: {why}"),
        }
    }
}

/// What verify found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Entries read.
    pub entries: u64,
    pub first_seq: Option<i64>,
    /// The newest entry's (seq, entry_hash).
    pub head: Option<(i64, String)>,
    /// Where the remaining chain starts after pruning.
    pub checkpoint: Option<(i64, String)>,
    pub problems: Vec<Problem>,
    /// Entries recording tampering the log noticed earlier (intact entries
    /// themselves, but the owner should read them).
    pub alerts: Vec<i64>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the log on `conn` against `anchor`. Read the anchor before
/// calling: the daemon may append in between, and an anchor older than the
/// log is fine while one newer than the log means entries were removed.
pub fn verify(conn: &Connection, anchor: Result<Option<HeadAnchor>, String>) -> VerifyReport {
    let mut report = VerifyReport::default();
    let (anchor, anchor_readable) = match anchor {
        Ok(anchor) => (anchor, true),
        Err(why) => {
            report.problems.push(Problem::AnchorUnreadable(why));
            (None, false)
        }
    };
    // One read transaction: a consistent snapshot while the daemon writes.
    let walked = conn
        .execute_batch("BEGIN")
        .and_then(|()| walk(conn, &mut report, anchor.as_ref()));
    let _ = conn.execute_batch("COMMIT");
    match walked {
        Ok(hash_at_anchor) => {
            if let Some(anchor) = &anchor {
                check_anchor(&mut report, anchor, hash_at_anchor);
            } else if report.entries > 0 && anchor_readable {
                report.problems.push(Problem::AnchorMissing);
            }
        }
        Err(e) => report.problems.push(Problem::Unreadable(e.to_string())),
    }
    report
}

/// Walks the chain in order, one row at a time (a year of entries need not
/// fit in memory). Returns the stored hash of the entry the anchor names.
fn walk(
    conn: &Connection,
    report: &mut VerifyReport,
    anchor: Option<&HeadAnchor>,
) -> rusqlite::Result<Option<String>> {
    let checkpoint = store::checkpoint(conn)?;
    report.checkpoint = checkpoint.as_ref().map(|c| (c.seq, c.entry_hash.clone()));
    let (mut expected_seq, mut expected_prev) = match &checkpoint {
        Some(c) => (c.seq + 1, c.entry_hash.clone()),
        None => (1, GENESIS_HASH.to_string()),
    };
    let mut hash_at_anchor = None;
    let mut last_pruned_details = None;
    // Moved entries by the seq they were written as, and links that looked
    // broken: an entry after a moved one links to it, not to its new
    // neighbour, which is no extra problem.
    let mut moved = HashMap::new();
    let mut unlinked = Vec::new();

    let mut statement = conn.prepare(&format!("SELECT {COLUMNS} FROM entries ORDER BY seq"))?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let row = StoredRow::from_row(row)?;
        report.entries += 1;
        report.first_seq.get_or_insert(row.seq);
        let mut gap = false;
        if row.seq > expected_seq {
            report.problems.push(Problem::Missing {
                from: expected_seq,
                to: row.seq - 1,
            });
            gap = true;
        }
        if entry_hash(&row) != row.entry_hash {
            report.problems.push(match written_as(&row) {
                Some(written_as) => {
                    moved.insert(written_as, row.entry_hash.clone());
                    Problem::OutOfOrder {
                        seq: row.seq,
                        written_as,
                    }
                }
                None => Problem::ContentsChanged { seq: row.seq },
            });
        } else if !gap && row.prev_hash != expected_prev {
            unlinked.push((report.problems.len(), row.seq, row.prev_hash.clone()));
            report.problems.push(Problem::ChainBroken { seq: row.seq });
        }
        match row.event.as_str() {
            "integrity_alert" => report.alerts.push(row.seq),
            "audit_pruned" => last_pruned_details = row.details.clone(),
            _ => {}
        }
        if anchor.is_some_and(|a| a.seq == row.seq) {
            hash_at_anchor = Some(row.entry_hash.clone());
        }
        // Follow the stored hash, so one edited entry is one problem.
        expected_seq = row.seq + 1;
        expected_prev = row.entry_hash.clone();
        report.head = Some((row.seq, row.entry_hash));
    }
    for (index, seq, prev_hash) in unlinked.into_iter().rev() {
        if moved.get(&(seq - 1)) == Some(&prev_hash) {
            report.problems.remove(index);
        }
    }
    if let Some(c) = &checkpoint {
        if !confirms(last_pruned_details.as_deref(), c) {
            report
                .problems
                .push(Problem::CheckpointUnconfirmed { seq: c.seq });
        }
    }
    Ok(hash_at_anchor)
}

/// The sequence number this entry hashes correctly at, if not its own:
/// evidence that it was moved rather than edited. Nearest slots first.
fn written_as(row: &StoredRow) -> Option<i64> {
    (1..=MOVE_SEARCH)
        .flat_map(|d| [row.seq.checked_sub(d), row.seq.checked_add(d)])
        .flatten()
        .filter(|&seq| seq > 0)
        .find(|&seq| entry_hash_at(row, seq) == row.entry_hash)
}

/// Whether the newest `audit_pruned` entry recorded this checkpoint.
fn confirms(details: Option<&str>, checkpoint: &Checkpoint) -> bool {
    details
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .is_some_and(|details| {
            details["through_seq"].as_i64() == Some(checkpoint.seq)
                && details["through_hash"].as_str() == Some(checkpoint.entry_hash.as_str())
        })
}

fn check_anchor(report: &mut VerifyReport, anchor: &HeadAnchor, hash_at_anchor: Option<String>) {
    let last = report.head.as_ref().map(|(seq, _)| *seq);
    if last.is_none_or(|last| anchor.seq > last) {
        report.problems.push(Problem::TailRemoved {
            anchor_seq: anchor.seq,
            last_seq: last,
        });
    } else if hash_at_anchor.is_some_and(|hash| hash != anchor.entry_hash) {
        // An anchor behind the log is a crash between commit and anchor
        // write (or appends since it was read); the entry it names must
        // still carry the hash it recorded.
        report
            .problems
            .push(Problem::AnchorMismatch { seq: anchor.seq });
    }
}
