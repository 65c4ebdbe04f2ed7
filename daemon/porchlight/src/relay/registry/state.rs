//! The registration as kept in the data dir: `relay/registration.json`
//! while enrolled (the registry's id for this box, the last message
//! sequence, the digest of the entry the registry confirmed, and the
//! deletion in progress when leaving), `relay/left.json` once left (the
//! signed deletion request and the relay's confirmation, kept as proof).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::signed::SignedMessage;

/// Where this box stands with the registry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub registry_url: String,
    /// The registry's id for this box; `None` until it answered.
    pub registration_id: Option<String>,
    /// Sequence number of the last message sent (the registry refuses
    /// replays: each message must carry a higher one).
    pub sequence: u64,
    /// Digest of the entry the registry last confirmed.
    pub confirmed_digest: Option<String>,
    /// When the registry last confirmed, RFC 3339.
    pub confirmed_at: Option<String>,
    /// Set once the owner asked to leave; the deletion is retried until
    /// the relay confirms it.
    pub leaving: Option<Leaving>,
}

/// A leave in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaving {
    pub started_at: String,
    /// The signed deletion request, re-sent as is until confirmed.
    pub deletion: SignedMessage,
}

/// What is kept after leaving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Left {
    pub left_at: String,
    pub registration_id: Option<String>,
    pub deletion: Option<SignedMessage>,
    /// The relay's answer to the deletion request, as received.
    pub confirmation: Option<serde_json::Value>,
}

pub fn registration_path(data_dir: &Path) -> PathBuf {
    data_dir.join("relay").join("registration.json")
}

pub fn left_path(data_dir: &Path) -> PathBuf {
    data_dir.join("relay").join("left.json")
}

/// The registration, if this box is enrolled with a registry. A file that
/// does not parse is an error naming it (never silently "not enrolled").
pub fn load(data_dir: &Path) -> anyhow::Result<Option<Registration>> {
    read_json(&registration_path(data_dir))
}

pub fn load_left(data_dir: &Path) -> anyhow::Result<Option<Left>> {
    read_json(&left_path(data_dir))
}

pub fn save(data_dir: &Path, registration: &Registration) -> anyhow::Result<()> {
    write_json(&registration_path(data_dir), registration)
}

pub fn save_left(data_dir: &Path, left: &Left) -> anyhow::Result<()> {
    write_json(&left_path(data_dir), left)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{}: not valid: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Durably replaces `path` (temp file, fsync, rename), readable by the
/// owner only.
pub(super) fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let text = serde_json::to_vec_pretty(value)?;
    let result = crate::durable::replace_private(path, &text);
    result.map_err(|e: std::io::Error| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
