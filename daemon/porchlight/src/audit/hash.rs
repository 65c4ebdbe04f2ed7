//! The chain: each entry's hash covers its sequence number, the previous
//! entry's hash and every field, in one canonical byte encoding.
//!
//! Encoding (version 1), in this order, with no separators to confuse:
//! - the tag `porchlight-audit-v1` and a zero byte;
//! - integers as 8 bytes, big-endian, two's complement;
//! - text as its UTF-8 length (8 bytes, big-endian) then the bytes;
//! - an optional value as one byte, 0 (absent) or 1 (present, value follows).
//!
//! Fields: seq, prev_hash (64 hex characters, as text), time_us, component,
//! event, identity kind, agency?, officer?, cert_fingerprint?, owner_user?,
//! request_id?, camera?, window_from_us?, window_to_us?, outcome, reason?,
//! bytes_served, details? (the stored JSON text, byte for byte).
//!
//! Length prefixes make the encoding unambiguous: no two different entries
//! encode to the same bytes, so moving text between fields changes the hash.

use sha2::{Digest, Sha256};

use super::store::StoredRow;

/// `prev_hash` of the first entry ever written.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const TAG: &[u8] = b"porchlight-audit-v1\0";

/// The hash `row` must carry if nothing in it has changed, with the row's
/// sequence number replaced by `seq` (verify uses this to tell a moved entry
/// from an edited one).
pub fn entry_hash_at(row: &StoredRow, seq: i64) -> String {
    let mut out = Encoder(Vec::with_capacity(256));
    out.0.extend_from_slice(TAG);
    out.int(seq);
    out.text(&row.prev_hash);
    out.int(row.time_us);
    out.text(&row.component);
    out.text(&row.event);
    out.text(&row.identity_kind);
    out.optional_text(row.agency.as_deref());
    out.optional_text(row.officer.as_deref());
    out.optional_text(row.cert_fingerprint.as_deref());
    out.optional_text(row.owner_user.as_deref());
    out.optional_text(row.request_id.as_deref());
    out.optional_text(row.camera.as_deref());
    out.optional_int(row.window_from_us);
    out.optional_int(row.window_to_us);
    out.text(&row.outcome);
    out.optional_text(row.reason.as_deref());
    out.int(row.bytes_served);
    out.optional_text(row.details.as_deref());
    hex(&Sha256::digest(&out.0))
}

/// The hash of `row` as it stands.
pub fn entry_hash(row: &StoredRow) -> String {
    entry_hash_at(row, row.seq)
}

struct Encoder(Vec<u8>);

impl Encoder {
    fn int(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    fn text(&mut self, value: &str) {
        self.0
            .extend_from_slice(&(value.len() as u64).to_be_bytes());
        self.0.extend_from_slice(value.as_bytes());
    }

    fn optional_text(&mut self, value: Option<&str>) {
        match value {
            Some(text) => {
                self.0.push(1);
                self.text(text);
            }
            None => self.0.push(0),
        }
    }

    fn optional_int(&mut self, value: Option<i64>) {
        match value {
            Some(n) => {
                self.0.push(1);
                self.int(n);
            }
            None => self.0.push(0),
        }
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    text
}

/// Whether `text` looks like a hash this module wrote.
pub fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> StoredRow {
        StoredRow {
            seq: 1,
            time_us: 1_700_000_000_000_000,
            component: "relay".into(),
            event: "download".into(),
            identity_kind: "agency".into(),
            agency: Some("Dallas PD".into()),
            officer: None,
            cert_fingerprint: None,
            owner_user: None,
            request_id: Some("R1".into()),
            camera: Some("porch".into()),
            window_from_us: Some(1),
            window_to_us: Some(2),
            outcome: "ok".into(),
            reason: None,
            bytes_served: 10,
            details: None,
            prev_hash: GENESIS_HASH.into(),
            entry_hash: String::new(),
        }
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = entry_hash(&row());
        assert!(is_hash(&base));
        let edits: Vec<fn(&mut StoredRow)> = vec![
            |r| r.seq = 2,
            |r| r.time_us += 1,
            |r| r.component = "cli".into(),
            |r| r.event = "approval".into(),
            |r| r.identity_kind = "owner".into(),
            |r| r.agency = None,
            |r| r.officer = Some(String::new()),
            |r| r.cert_fingerprint = Some("x".into()),
            |r| r.owner_user = Some("x".into()),
            |r| r.request_id = Some("R2".into()),
            |r| r.camera = None,
            |r| r.window_from_us = None,
            |r| r.window_to_us = Some(3),
            |r| r.outcome = "refused".into(),
            |r| r.reason = Some("no".into()),
            |r| r.bytes_served = 11,
            |r| r.details = Some("{}".into()),
            |r| r.prev_hash = "1".repeat(64),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut changed = row();
            edit(&mut changed);
            assert_ne!(entry_hash(&changed), base, "edit {i} left the hash alone");
        }
    }

    #[test]
    fn text_cannot_slide_between_fields() {
        let mut a = row();
        a.agency = Some("ab".into());
        a.officer = Some("c".into());
        let mut b = row();
        b.agency = Some("a".into());
        b.officer = Some("bc".into());
        assert_ne!(entry_hash(&a), entry_hash(&b));
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab]), "000fab");
    }
}
