//! Browser sessions, in memory only: a restart logs browsers out, and no
//! session secret ever lands on disk. Ids are 256 random bits, kept here
//! only as SHA-256 digests; each session has its own CSRF token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// A session unused this long ends.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(12 * 3600);
/// A session ends this long after login, used or not.
pub const ABSOLUTE_EXPIRY: Duration = Duration::from_secs(7 * 86_400);
/// Most sessions held at once (the oldest unused one goes first).
const MAX_SESSIONS: usize = 1000;

#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    pub csrf_token: String,
    /// The account's `changed_us` at login: a new password ends the session.
    pub account_changed_us: i64,
    created: Instant,
    last_seen: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
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

impl Sessions {
    /// Starts a session; returns its id (for the cookie) and the session.
    pub fn create(&self, user: &str, account_changed_us: i64) -> (String, Session) {
        let id = random_token();
        let now = Instant::now();
        let session = Session {
            user: user.to_string(),
            csrf_token: random_token(),
            account_changed_us,
            created: now,
            last_seen: now,
        };
        let mut map = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| alive(s, now));
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(digest(&id), session.clone());
        (id, session)
    }

    /// The live session for `id`, touched; an expired one is dropped.
    /// `still_valid` checks the account (exists, same password); it runs
    /// after the sessions' lock is let go, so it may take its time.
    pub fn lookup(&self, id: &str, still_valid: impl Fn(&Session) -> bool) -> Option<Session> {
        let key = digest(id);
        let now = Instant::now();
        let session = {
            let mut map = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
            let session = map.get_mut(&key)?;
            if !alive(session, now) {
                map.remove(&key);
                return None;
            }
            session.last_seen = now;
            session.clone()
        };
        if !still_valid(&session) {
            self.by_digest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            return None;
        }
        Some(session)
    }

    /// Ends the session for `id` (logout).
    pub fn remove(&self, id: &str) -> bool {
        let mut map = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&digest(id)).is_some()
    }
}

fn alive(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last_seen) < IDLE_EXPIRY
        && now.duration_since(session.created) < ABSOLUTE_EXPIRY
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
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
