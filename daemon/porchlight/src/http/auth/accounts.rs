//! Owner accounts: `<data_dir>/owner-accounts.json` (mode 0600), one
//! argon2id hash per user. The CLI (`porchlight user ...`) edits the file;
//! the running daemon notices the change by the file's metadata and reads
//! it again, so an account added while it runs can log in at once.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::time::{format_utc_us, now_utc_us};

pub const ACCOUNTS_FILE: &str = "owner-accounts.json";
/// Shorter passwords are refused (a long passphrase beats symbols).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer ones are refused too, so hashing stays bounded.
pub const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("user name `{0}` is not allowed: use 1–32 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit")]
    BadName(String),
    #[error("the password is too short: at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("the password is too long: at most {MAX_PASSWORD_CHARS} characters")]
    PasswordTooLong,
    #[error("the password must not be the user name")]
    PasswordIsName,
    #[error("an owner account named `{0}` exists already")]
    Exists(String),
    #[error("no owner account named `{0}`")]
    Unknown(String),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// One owner account as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    /// PHC string: `$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
    pub password: String,
    pub created: String,
    /// When the password last changed (µs); sessions made before are void.
    pub changed_us: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AccountsFile {
    version: u32,
    accounts: Vec<Account>,
}

/// The accounts file, cached until it changes on disk.
pub struct AccountStore {
    path: PathBuf,
    cache: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    /// (inode, size, mtime ns) of the file the cache was read from.
    stamp: Option<(u64, u64, i128)>,
    accounts: Vec<Account>,
}

fn stamp(path: &Path) -> Option<(u64, u64, i128)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((
        meta.ino(),
        meta.size(),
        meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
    ))
}

impl AccountStore {
    pub fn new(data_dir: &Path) -> AccountStore {
        AccountStore {
            path: data_dir.join(ACCOUNTS_FILE),
            cache: Mutex::new(Cached::default()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every account, read again when the file changed. A file that cannot
    /// be read is an error (never "no accounts": that would open the API).
    pub fn accounts(&self) -> Result<Vec<Account>, AccountError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let now = stamp(&self.path);
        if now.is_none() || now != cache.stamp {
            cache.accounts = self.read()?;
            cache.stamp = now;
        }
        Ok(cache.accounts.clone())
    }

    /// Whether any account exists (an unreadable file counts as yes: the
    /// API stays closed rather than open).
    pub fn any(&self) -> bool {
        self.accounts().map_or(true, |a| !a.is_empty())
    }

    pub fn get(&self, name: &str) -> Option<Account> {
        self.accounts().ok()?.into_iter().find(|a| a.name == name)
    }

    fn read(&self) -> Result<Vec<Account>, AccountError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.file_error(e.to_string())),
        };
        let file: AccountsFile =
            serde_json::from_str(&text).map_err(|e| self.file_error(format!("not valid: {e}")))?;
        Ok(file.accounts)
    }

    fn file_error(&self, message: String) -> AccountError {
        AccountError::File {
            path: self.path.clone(),
            message,
        }
    }

    /// Adds an account. Blocking (hashing takes tens of milliseconds).
    pub fn add(&self, name: &str, password: &str) -> Result<(), AccountError> {
        check_name(name)?;
        check_password(name, password)?;
        let mut accounts = self.read()?;
        if accounts.iter().any(|a| a.name == name) {
            return Err(AccountError::Exists(name.into()));
        }
        let now = now_utc_us();
        accounts.push(Account {
            name: name.into(),
            password: hash_password(password)?,
            created: format_utc_us(now),
            changed_us: now,
        });
        self.write(accounts)
    }

    /// Sets a new password; the user's sessions end. Blocking.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        check_password(name, password)?;
        let mut accounts = self.read()?;
        let account = accounts
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or_else(|| AccountError::Unknown(name.into()))?;
        account.password = hash_password(password)?;
        account.changed_us = now_utc_us().max(account.changed_us + 1);
        self.write(accounts)
    }

    /// Removes an account; its sessions end.
    pub fn remove(&self, name: &str) -> Result<(), AccountError> {
        let mut accounts = self.read()?;
        let before = accounts.len();
        accounts.retain(|a| a.name != name);
        if accounts.len() == before {
            return Err(AccountError::Unknown(name.into()));
        }
        self.write(accounts)
    }

    /// The account when `password` is its password. Unknown users cost the
    /// same time as known ones (no user-name probing by timing). Blocking.
    pub fn verify(&self, name: &str, password: &str) -> Option<Account> {
        let account = self.get(name);
        let phc = account.as_ref().map_or(DUMMY_HASH, |a| a.password.as_str());
        let ok = PasswordHash::new(phc).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        });
        account.filter(|_| ok)
    }

    /// Writes the whole file anew (temp file, fsync, rename), mode 0600,
    /// owned like the data dir when root writes it (`sudo porchlight user
    /// add` must leave a file the daemon's user can read).
    fn write(&self, accounts: Vec<Account>) -> Result<(), AccountError> {
        let text = serde_json::to_string_pretty(&AccountsFile {
            version: 1,
            accounts,
        })
        .map_err(|e| self.file_error(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        let fail = |e: std::io::Error| self.file_error(e.to_string());
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(fail)?;
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        drop(file);
        owned_like_parent(&tmp).map_err(fail)?;
        std::fs::rename(&tmp, &self.path).map_err(fail)?;
        Ok(())
    }
}

/// When running as root, hands `path` to the owner of its directory.
pub(crate) fn owned_like_parent(path: &Path) -> std::io::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    let meta = std::fs::metadata(dir)?;
    std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid()))
}

/// A valid argon2id hash of a random password nobody knows, verified
/// against when the user name is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$cG9yY2hsaWdodGR1bW15$3y6q0kE9oQe0m0k3q5a4p9cXl1mJtq8Y2c8wJc1Q0aA";

fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

pub fn check_name(name: &str) -> Result<(), AccountError> {
    let ok = (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AccountError::BadName(name.into()))
    }
}

pub fn check_password(name: &str, password: &str) -> Result<(), AccountError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS || password.trim().is_empty() {
        return Err(AccountError::PasswordTooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AccountError::PasswordTooLong);
    }
    if password.eq_ignore_ascii_case(name) {
        return Err(AccountError::PasswordIsName);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_round_trip_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::new(dir.path());
        assert!(!store.any());
        store.add("alice", "correct horse battery").unwrap();
        assert!(store.any());
        let mode = std::fs::metadata(store.path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("$argon2id$"), "{text}");
        assert!(!text.contains("correct horse"));
        assert!(store.verify("alice", "correct horse battery").is_some());
        assert!(store.verify("alice", "wrong horse battery").is_none());
        assert!(store.verify("bob", "correct horse battery").is_none());
        assert!(matches!(
            store.add("alice", "another password"),
            Err(AccountError::Exists(_))
        ));
        let before = store.get("alice").unwrap().changed_us;
        store.set_password("alice", "a new passphrase").unwrap();
        assert!(store.get("alice").unwrap().changed_us > before);
        assert!(store.verify("alice", "a new passphrase").is_some());
        store.remove("alice").unwrap();
        assert!(!store.any());
        assert!(matches!(
            store.remove("alice"),
            Err(AccountError::Unknown(_))
        ));
    }

    #[test]
    fn rules_name_what_is_wrong() {
        assert!(check_name("Alice").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("alice.b_2").is_ok());
        assert_eq!(
            check_password("alice", "short").unwrap_err().to_string(),
            "the password is too short: at least 10 characters"
        );
        assert!(check_password("alicealice", "AliceAlice").is_err());
        assert!(check_password("alice", "          ").is_err());
    }

    #[test]
    fn an_unreadable_file_keeps_the_api_closed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ACCOUNTS_FILE), "not json").unwrap();
        let store = AccountStore::new(dir.path());
        assert!(store.any());
        assert!(store
            .accounts()
            .unwrap_err()
            .to_string()
            .contains("not valid"));
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
