//! Owner accounts: `<data_dir>/owner-accounts.json` (mode 0600), one
//! argon2id hash per user. The CLI (`porchlight user ...`) edits the file;
//! the running daemon looks at the file's metadata at most once a second
//! ([`RECHECK`]) and reads it again when it changed, so an account added,
//! removed or given a new password while it runs counts within a second.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
/// How long the daemon trusts what it last saw of the accounts file before
/// looking at the file's metadata again.
pub const RECHECK: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, thiserror::Error)]
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

type Stamp = (u64, u64, i128);

struct Cached {
    /// When the file's metadata was last looked at (`None`: never, or the
    /// store itself wrote the file since).
    checked_at: Option<Instant>,
    /// (inode, size, mtime ns) of the file the cache was read from; `None`
    /// when there was no file.
    stamp: Option<Stamp>,
    /// What was read: a missing file is no accounts; an unreadable one is an
    /// error (never "no accounts": that would open the API).
    accounts: Result<Vec<Account>, AccountError>,
}

/// The file's stamp, `None` when it does not exist.
fn stamp(path: &Path) -> std::io::Result<Option<Stamp>> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some((
            meta.ino(),
            meta.size(),
            meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl AccountStore {
    pub fn new(data_dir: &Path) -> AccountStore {
        AccountStore {
            path: data_dir.join(ACCOUNTS_FILE),
            cache: Mutex::new(Cached {
                checked_at: None,
                stamp: None,
                accounts: Ok(Vec::new()),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the cached accounts, first bringing them up to date when
    /// the file was last looked at `max_age` ago or more (a stat, and a
    /// read only when the file changed). The lock is held while `f` runs:
    /// keep it short.
    fn with<T>(
        &self,
        max_age: Duration,
        f: impl FnOnce(Result<&[Account], &AccountError>) -> T,
    ) -> T {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let stale = cache
            .checked_at
            .is_none_or(|at| now.duration_since(at) >= max_age);
        if stale {
            match stamp(&self.path) {
                Ok(current) => {
                    if cache.checked_at.is_none() || current != cache.stamp {
                        cache.accounts = match current {
                            None => Ok(Vec::new()),
                            Some(_) => self.read(),
                        };
                        cache.stamp = current;
                    }
                }
                Err(e) => {
                    cache.accounts = Err(self.file_error(e.to_string()));
                    cache.stamp = None;
                }
            }
            // An error is kept for `max_age` too: a broken file costs one
            // look a second, and it stays an error (the API stays closed).
            cache.checked_at = Some(now);
        }
        f(cache.accounts.as_deref())
    }

    /// Forgets what was seen: the next look reads the file again.
    fn invalidate(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.checked_at = None;
    }

    /// Every account, as the file says now. A file that cannot be read is
    /// an error (never "no accounts": that would open the API).
    pub fn accounts(&self) -> Result<Vec<Account>, AccountError> {
        self.with(Duration::ZERO, |accounts| {
            accounts.map(<[Account]>::to_vec).map_err(Clone::clone)
        })
    }

    /// Whether any account exists, as seen within [`RECHECK`] (an
    /// unreadable file counts as yes: the API stays closed rather than
    /// open).
    pub fn any(&self) -> bool {
        self.with(RECHECK, |accounts| accounts.map_or(true, |a| !a.is_empty()))
    }

    /// Like [`any`](Self::any), but as the file says now (for logins and
    /// setup, so an account added a moment ago counts at once).
    pub fn any_now(&self) -> bool {
        self.with(Duration::ZERO, |accounts| {
            accounts.map_or(true, |a| !a.is_empty())
        })
    }

    /// The account named `name`, as seen within [`RECHECK`].
    pub fn get(&self, name: &str) -> Option<Account> {
        self.lookup(name, RECHECK)
    }

    fn lookup(&self, name: &str, max_age: Duration) -> Option<Account> {
        self.with(max_age, |accounts| {
            accounts.ok()?.iter().find(|a| a.name == name).cloned()
        })
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

    /// The account when `password` is its password, as the file says now.
    /// Unknown users cost the same time as known ones (no user-name probing
    /// by timing). Blocking.
    pub fn verify(&self, name: &str, password: &str) -> Option<Account> {
        let account = self.lookup(name, Duration::ZERO);
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
        self.invalidate();
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
    fn another_writer_is_seen_within_a_recheck() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = AccountStore::new(dir.path());
        // No file: no accounts (and no file is remembered as such).
        assert!(!daemon.any());
        assert!(daemon.get("alice").is_none());
        // The CLI, another process, adds and removes: logins see it at
        // once, everything else within RECHECK.
        AccountStore::new(dir.path())
            .add("alice", "correct horse battery")
            .unwrap();
        assert!(daemon.any_now());
        assert!(daemon.get("alice").is_some());
        AccountStore::new(dir.path()).remove("alice").unwrap();
        std::thread::sleep(RECHECK);
        assert!(!daemon.any());
        assert!(daemon.get("alice").is_none());
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
