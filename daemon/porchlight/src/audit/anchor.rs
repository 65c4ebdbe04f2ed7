//! `audit.head`: the newest (seq, hash), kept outside the database.
//!
//! A hash chain shows edits, removals and reordering inside the log, but not
//! entries cut off the end: what remains is still a valid chain. The anchor
//! remembers where the log ended, so verify can say "entries removed from
//! the end". It is rewritten after every append (temp file, fsync, rename),
//! so it is either the old or the new head, never half of one. The
//! directory is not fsynced: after a power cut the anchor may name an older
//! head, which verify accepts (an anchor *behind* the log is benign; only
//! one *ahead* of it means entries were removed), and it saves a disk flush
//! on every audited call.
//!
//! Limit: someone who can write the data dir can rewrite the anchor too. It
//! catches an edit of the database alone (a `DELETE` in the sqlite3 shell, a
//! restored old copy); it is no defence against a careful attacker with the
//! same rights as the daemon (see docs/audit.md).

use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::hash::is_hash;

const MAGIC: &str = "porchlight audit head v1";

/// Where the log ended when the anchor was last written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadAnchor {
    pub seq: i64,
    pub entry_hash: String,
}

/// Reads the anchor: `Ok(None)` when there is none yet, `Err` (a sentence)
/// when it is there but garbled.
pub fn read(path: &Path) -> Result<Option<HeadAnchor>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    parse(&text)
        .map(Some)
        .ok_or_else(|| format!("{} is not a head anchor (garbled)", path.display()))
}

fn parse(text: &str) -> Option<HeadAnchor> {
    let mut lines = text.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    let seq = lines.next()?.strip_prefix("seq ")?.parse().ok()?;
    let entry_hash = lines.next()?.strip_prefix("hash ")?.to_string();
    is_hash(&entry_hash).then_some(HeadAnchor { seq, entry_hash })
}

/// Replaces the anchor atomically (see the module docs on durability).
pub fn write(path: &Path, anchor: &HeadAnchor) -> std::io::Result<()> {
    let temp = path.with_extension("head.tmp");
    {
        let mut file = File::create(&temp)?;
        writeln!(
            file,
            "{MAGIC}\nseq {}\nhash {}",
            anchor.seq, anchor.entry_hash
        )?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.head");
        assert_eq!(read(&path), Ok(None));
        let anchor = HeadAnchor {
            seq: 42,
            entry_hash: "a".repeat(64),
        };
        write(&path, &anchor).expect("write");
        assert_eq!(read(&path), Ok(Some(anchor)));
        std::fs::write(&path, "seq 42\n").expect("write");
        assert!(read(&path).unwrap_err().contains("garbled"));
    }
}
