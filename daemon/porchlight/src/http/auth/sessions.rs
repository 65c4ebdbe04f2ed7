//! Browser sessions. They live in memory and are kept in
//! `<data_dir>/owner-sessions.json` (mode 0600, replaced durably) so a
//! restart — adding a camera, joining the relay program, an upgrade, a
//! reboot — does not log every browser out.
//!
//! Ids are 256 random bits; neither memory nor the file holds one, only its
//! SHA-256 digest (a stolen file cannot be turned into a cookie). The file
//! also holds each session's user, CSRF token, the account's `changed_us`
//! at login, and login / last-seen times as wall-clock UTC microseconds.
//!
//! Sessions are a convenience, not data the owner would lose: a file that
//! cannot be read or parsed is logged (naming it) and treated as empty, so
//! the worst case is logging in again; it never stops the daemon. At load,
//! sessions past their idle or absolute expiry, and those whose account is
//! gone or changed password since login, are dropped.
//!
//! The file is rewritten (on a blocking thread, not an async worker) when a
//! session starts or ends; last-seen times are saved at most once per
//! [`LAST_SEEN_SAVE_EVERY`] per session (and at a clean stop), so API calls
//! do not each rewrite it. After a crash a session may thus look up to that
//! much older, and end that much sooner.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::time::now_utc_us;

/// The sessions file's name in the data dir.
pub const FILE_NAME: &str = "owner-sessions.json";
/// A session unused this long ends.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(12 * 3600);
/// A session ends this long after login, used or not.
pub const ABSOLUTE_EXPIRY: Duration = Duration::from_secs(7 * 86_400);
/// A session's last-seen time reaches the file at most this often.
pub const LAST_SEEN_SAVE_EVERY: Duration = Duration::from_secs(60);
/// Most sessions held at once (the oldest unused one goes first).
const MAX_SESSIONS: usize = 1000;

#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    pub csrf_token: String,
    /// The account's `changed_us` at login: a new password ends the session.
    pub account_changed_us: i64,
    /// Login, wall-clock UTC µs (an `Instant` would not survive a restart).
    created_us: i64,
    /// Last use, wall-clock UTC µs.
    last_seen_us: i64,
    /// The last-seen time the file holds.
    saved_last_seen_us: i64,
}

/// One session as the file holds it.
#[derive(Serialize, Deserialize)]
struct StoredSession {
    /// SHA-256 of the session id, lowercase hex (never the id itself).
    id_sha256: String,
    user: String,
    csrf_token: String,
    account_changed_us: i64,
    created_us: i64,
    last_seen_us: i64,
}

#[derive(Serialize, Deserialize)]
struct SessionsFile {
    version: u32,
    sessions: Vec<StoredSession>,
}

#[derive(Default)]
pub struct Sessions(Arc<Store>);

#[derive(Default)]
struct Store {
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
    /// Where they are kept; `None` keeps them in memory only.
    file: Option<PathBuf>,
    /// Held across a whole save, and the map is read after taking it, so
    /// the last save to run wrote the newest state, whatever order saves
    /// started in.
    saving: Mutex<()>,
}

/// 256 random bits, URL-safe base64 (cookie and header safe).
pub fn random_token() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Equal-length byte comparison whose time does not depend on where the
/// first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Sessions {
    /// Sessions kept in `<data_dir>/owner-sessions.json`, starting with the
    /// live ones found there. `account_still_valid(user, changed_us)` says
    /// whether the account still exists with that password. Never fails:
    /// a damaged file is logged and treated as empty.
    pub fn load(data_dir: &Path, account_still_valid: impl Fn(&str, i64) -> bool) -> Sessions {
        let path = data_dir.join(FILE_NAME);
        let stored = match std::fs::read_to_string(&path) {
            Ok(text) => match serde_json::from_str::<SessionsFile>(&text) {
                Ok(file) => file.sessions,
                Err(e) => {
                    tracing::warn!(
                        file = %path.display(),
                        error = %e,
                        "the owner sessions file is damaged: ignoring it (browsers log in again; it is rewritten at the next login)"
                    );
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::warn!(
                    file = %path.display(),
                    error = %e,
                    "cannot read the owner sessions file: ignoring it (browsers log in again)"
                );
                Vec::new()
            }
        };
        let now = now_utc_us();
        let found = stored.len();
        let mut kept: Vec<([u8; 32], Session)> = stored
            .into_iter()
            .filter_map(|s| {
                let session = Session {
                    user: s.user,
                    csrf_token: s.csrf_token,
                    account_changed_us: s.account_changed_us,
                    created_us: s.created_us,
                    last_seen_us: s.last_seen_us,
                    saved_last_seen_us: s.last_seen_us,
                };
                let key = parse_digest(&s.id_sha256)?;
                (alive(&session, now)
                    && account_still_valid(&session.user, session.account_changed_us))
                .then_some((key, session))
            })
            .collect();
        // Most recently used first, so the cap keeps those.
        kept.sort_by_key(|(_, s)| std::cmp::Reverse(s.last_seen_us));
        kept.truncate(MAX_SESSIONS);
        let dropped = found - kept.len();
        if found > 0 {
            tracing::info!(
                kept = kept.len(),
                dropped,
                "owner sessions restored (expired ones and those of removed accounts or changed passwords dropped)"
            );
        }
        let sessions = Sessions(Arc::new(Store {
            by_digest: Mutex::new(kept.into_iter().collect()),
            file: Some(path),
            saving: Mutex::new(()),
        }));
        if dropped > 0 {
            sessions.0.save();
        }
        sessions
    }

    /// Starts a session; returns its id (for the cookie) and the session.
    pub fn create(&self, user: &str, account_changed_us: i64) -> (String, Session) {
        let id = random_token();
        let now = now_utc_us();
        let session = Session {
            user: user.to_string(),
            csrf_token: random_token(),
            account_changed_us,
            created_us: now,
            last_seen_us: now,
            saved_last_seen_us: now,
        };
        {
            let mut map = self.lock();
            map.retain(|_, s| alive(s, now));
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen_us)
                    .map(|(k, _)| *k)
                {
                    map.remove(&oldest);
                }
            }
            map.insert(digest(&id), session.clone());
        }
        self.save_soon();
        (id, session)
    }

    /// The live session for `id`, touched; an expired one is dropped.
    /// `still_valid` checks the account (exists, same password); it runs
    /// after the sessions' lock is let go, so it may take its time.
    pub fn lookup(&self, id: &str, still_valid: impl Fn(&Session) -> bool) -> Option<Session> {
        let key = digest(id);
        let now = now_utc_us();
        let (session, last_seen_due) = {
            let mut map = self.lock();
            let session = map.get_mut(&key)?;
            if !alive(session, now) {
                map.remove(&key);
                drop(map);
                self.save_soon();
                return None;
            }
            session.last_seen_us = session.last_seen_us.max(now);
            let due = session.last_seen_us - session.saved_last_seen_us
                >= LAST_SEEN_SAVE_EVERY.as_micros() as i64;
            (session.clone(), due)
        };
        if !still_valid(&session) {
            self.lock().remove(&key);
            self.save_soon();
            return None;
        }
        if last_seen_due {
            self.save_soon();
        }
        Some(session)
    }

    /// Ends the session for `id` (logout).
    pub fn remove(&self, id: &str) -> bool {
        let removed = self.lock().remove(&digest(id)).is_some();
        if removed {
            self.save_soon();
        }
        removed
    }

    /// Saves last-seen times not yet in the file (at a clean stop).
    pub fn flush(&self) {
        let behind = self
            .lock()
            .values()
            .any(|s| s.last_seen_us != s.saved_last_seen_us);
        if behind {
            self.0.save();
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.0.lock()
    }

    /// Saves off the async workers when called on one (an fsync on a disk
    /// busy recording may take a while); inline otherwise. The save reads
    /// the sessions when it runs, so it holds this change or a newer state.
    fn save_soon(&self) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let store = self.0.clone();
                runtime.spawn_blocking(move || store.save());
            }
            Err(_) => self.0.save(),
        }
    }
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.by_digest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes every session to the file; a failure is logged (the sessions
    /// still work until the next restart).
    fn save(&self) {
        let Some(path) = &self.file else {
            return;
        };
        let _saving = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        let sessions = {
            let mut map = self.lock();
            map.iter_mut()
                .map(|(key, s)| {
                    s.saved_last_seen_us = s.last_seen_us;
                    StoredSession {
                        id_sha256: crate::evidence::hex(key),
                        user: s.user.clone(),
                        csrf_token: s.csrf_token.clone(),
                        account_changed_us: s.account_changed_us,
                        created_us: s.created_us,
                        last_seen_us: s.last_seen_us,
                    }
                })
                .collect()
        };
        let text = match serde_json::to_vec_pretty(&SessionsFile {
            version: 1,
            sessions,
        }) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode the owner sessions");
                return;
            }
        };
        if let Err(e) = crate::durable::replace_private(path, &text) {
            tracing::warn!(
                file = %path.display(),
                error = %e,
                "cannot save the owner sessions: browsers will have to log in again after a restart"
            );
        }
    }
}

/// Within both expiries. A login time far in the future means the clock
/// was wrong then (or is now): such a session ends rather than living on.
fn alive(session: &Session, now_us: i64) -> bool {
    let idle = IDLE_EXPIRY.as_micros() as i64;
    let absolute = ABSOLUTE_EXPIRY.as_micros() as i64;
    now_us.saturating_sub(session.last_seen_us) < idle
        && now_us.saturating_sub(session.created_us) < absolute
        && session.created_us.saturating_sub(now_us) < idle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_id_and_end_on_logout() {
        let sessions = Sessions::default();
        let (id, session) = sessions.create("alice", 1);
        assert_eq!(id.len(), 43);
        assert_ne!(session.csrf_token, id);
        assert_eq!(sessions.lookup(&id, |_| true).unwrap().user, "alice");
        assert!(sessions.lookup("not-an-id", |_| true).is_none());
        // An account that changed password ends it.
        assert!(sessions
            .lookup(&id, |s| s.account_changed_us == 2)
            .is_none());
        assert!(sessions.lookup(&id, |_| true).is_none());
        let (id, _) = sessions.create("alice", 1);
        assert!(sessions.remove(&id));
        assert!(sessions.lookup(&id, |_| true).is_none());
    }

    #[test]
    fn a_session_survives_a_save_and_load_with_its_csrf_token() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = Sessions::load(dir.path(), |_, _| true);
        let (id, session) = sessions.create("alice", 7);
        let (gone, _) = sessions.create("bob", 3);
        assert!(sessions.remove(&gone));
        drop(sessions);

        let again = Sessions::load(dir.path(), |_, _| true);
        let found = again.lookup(&id, |_| true).expect("restored session");
        assert_eq!(found.user, "alice");
        assert_eq!(found.csrf_token, session.csrf_token);
        assert_eq!(found.account_changed_us, 7);
        assert!(
            again.lookup(&gone, |_| true).is_none(),
            "logged out stays out"
        );
    }

    #[test]
    fn load_drops_expired_sessions_and_those_of_changed_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = Sessions::load(dir.path(), |_, _| true);
        let (idle, _) = sessions.create("alice", 1);
        let (old, _) = sessions.create("alice", 1);
        let (fresh, _) = sessions.create("alice", 1);
        let (repassworded, _) = sessions.create("bob", 1);
        let (removed, _) = sessions.create("carol", 1);
        let hour = 3_600_000_000i64;
        {
            let mut map = sessions.lock();
            let idle = map.get_mut(&digest(&idle)).unwrap();
            idle.last_seen_us -= 13 * hour;
            idle.created_us -= 13 * hour;
            let old = map.get_mut(&digest(&old)).unwrap();
            old.created_us -= 8 * 24 * hour;
        }
        sessions.flush();
        drop(sessions);

        // bob's password changed (changed_us 2 now), carol is gone.
        let again = Sessions::load(dir.path(), |user, changed| match user {
            "alice" => changed == 1,
            "bob" => changed == 2,
            _ => false,
        });
        assert!(again.lookup(&fresh, |_| true).is_some());
        for id in [&idle, &old, &repassworded, &removed] {
            assert!(again.lookup(id, |_| true).is_none());
        }
        // The dropped ones left the file too.
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        let file: SessionsFile = serde_json::from_str(&text).unwrap();
        assert_eq!(file.sessions.len(), 1);
    }

    #[test]
    fn a_damaged_file_means_no_sessions_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        for junk in [
            "",
            "{not json",
            "{\"version\":1,\"sessions\":[{\"user\":5}]}",
        ] {
            std::fs::write(&path, junk).unwrap();
            let sessions = Sessions::load(dir.path(), |_, _| true);
            assert!(sessions.lock().is_empty(), "{junk:?}");
        }
        // A digest that is not hex is skipped.
        let now = now_utc_us();
        std::fs::write(
            &path,
            format!(
                r#"{{"version":1,"sessions":[{{"id_sha256":"zz","user":"alice","csrf_token":"t",
                "account_changed_us":1,"created_us":{now},"last_seen_us":{now}}}]}}"#
            ),
        )
        .unwrap();
        assert!(Sessions::load(dir.path(), |_, _| true).lock().is_empty());
        // The next login makes the file good again.
        let sessions = Sessions::load(dir.path(), |_, _| true);
        let (id, _) = sessions.create("alice", 1);
        drop(sessions);
        let again = Sessions::load(dir.path(), |_, _| true);
        assert!(again.lookup(&id, |_| true).is_some());
    }

    #[test]
    fn the_file_is_owner_only_and_holds_no_session_id() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let sessions = Sessions::load(dir.path(), |_, _| true);
        let (id, session) = sessions.create("alice", 1);
        let path = dir.path().join(FILE_NAME);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&id), "the session id is on disk: {text}");
        assert!(text.contains(&crate::evidence::hex(&digest(&id))));
        assert!(text.contains(&session.csrf_token));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn last_seen_is_saved_at_most_once_a_minute_per_session() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = Sessions::load(dir.path(), |_, _| true);
        let (id, _) = sessions.create("alice", 1);
        let path = dir.path().join(FILE_NAME);
        let before = std::fs::read(&path).unwrap();
        // Used again at once: nothing is rewritten.
        assert!(sessions.lookup(&id, |_| true).is_some());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // The file's last-seen a minute behind: the next use saves it.
        let minute = LAST_SEEN_SAVE_EVERY.as_micros() as i64;
        sessions
            .lock()
            .get_mut(&digest(&id))
            .unwrap()
            .saved_last_seen_us -= minute;
        assert!(sessions.lookup(&id, |_| true).is_some());
        assert_ne!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
