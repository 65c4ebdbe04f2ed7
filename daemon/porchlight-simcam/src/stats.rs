//! Per-path counters ("cameras"), updated lock-free by sessions.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counters of one path as seen at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Video frames (access units) fully handed to the network, all sessions summed.
    pub frames_sent: u64,
    /// Bytes of RTP (and interleaving) sent for video and audio.
    pub bytes_sent: u64,
    /// Sessions currently set up (from the first `SETUP` until `TEARDOWN` or disconnect).
    pub sessions_active: u64,
    /// Sessions ever set up.
    pub sessions_total: u64,
    /// Requests rejected with `401` because they carried wrong credentials
    /// (the initial credential-less request that triggers the challenge is not counted).
    pub auth_failures: u64,
}

/// A snapshot of every path's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimCamStats {
    /// Per path: the URL path without leading or trailing `/` (and without
    /// `/trackID=N`), e.g. `cam0`; the root path is `""`.
    pub paths: BTreeMap<String, PathStats>,
}

impl SimCamStats {
    /// Video frames sent over all paths.
    pub fn total_frames_sent(&self) -> u64 {
        self.paths.values().map(|p| p.frames_sent).sum()
    }

    /// Wrong-credential requests over all paths.
    pub fn total_auth_failures(&self) -> u64 {
        self.paths.values().map(|p| p.auth_failures).sum()
    }
}

/// Live counters of one path.
#[derive(Debug, Default)]
pub(crate) struct PathCounters {
    pub frames_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub sessions_active: AtomicU64,
    pub sessions_total: AtomicU64,
    pub auth_failures: AtomicU64,
}

impl PathCounters {
    fn snapshot(&self) -> PathStats {
        PathStats {
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            sessions_active: self.sessions_active.load(Ordering::Relaxed),
            sessions_total: self.sessions_total.load(Ordering::Relaxed),
            auth_failures: self.auth_failures.load(Ordering::Relaxed),
        }
    }
}

/// Marks a session active on its path for as long as it lives.
#[derive(Debug)]
pub(crate) struct ActiveSession(Arc<PathCounters>);

impl ActiveSession {
    pub fn new(counters: Arc<PathCounters>) -> Self {
        counters.sessions_active.fetch_add(1, Ordering::Relaxed);
        counters.sessions_total.fetch_add(1, Ordering::Relaxed);
        ActiveSession(counters)
    }
}

impl Drop for ActiveSession {
    fn drop(&mut self) {
        self.0.sessions_active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Most distinct paths tracked; further paths share one overflow entry so a
/// client can't grow the map without bound.
const MAX_PATHS: usize = 4096;
const OVERFLOW_PATH: &str = "(other)";

/// All paths' counters.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    paths: Mutex<HashMap<String, Arc<PathCounters>>>,
}

impl Registry {
    /// Returns (creating if needed) the counters of a normalized path.
    pub fn path(&self, path: &str) -> Arc<PathCounters> {
        let mut map = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(path) {
            return c.clone();
        }
        let key = if map.len() >= MAX_PATHS {
            OVERFLOW_PATH
        } else {
            path
        };
        map.entry(key.to_owned()).or_default().clone()
    }

    /// Frames sent on a path (0 if never seen); `path` is normalized first.
    pub fn frames_sent(&self, path: &str) -> u64 {
        let map = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        map.get(normalize_path(path))
            .map(|c| c.frames_sent.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Snapshot of all paths.
    pub fn snapshot(&self) -> SimCamStats {
        let map = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        SimCamStats {
            paths: map.iter().map(|(k, v)| (k.clone(), v.snapshot())).collect(),
        }
    }
}

/// Strips leading and trailing slashes: `/cam0/` -> `cam0`.
pub(crate) fn normalize_path(path: &str) -> &str {
    path.trim_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_and_guards() {
        let r = Registry::default();
        let c = r.path("cam0");
        c.frames_sent.fetch_add(3, Ordering::Relaxed);
        assert_eq!(r.frames_sent("/cam0"), 3);
        assert_eq!(r.frames_sent("cam1"), 0);
        {
            let _g = ActiveSession::new(r.path("cam0"));
            assert_eq!(r.snapshot().paths["cam0"].sessions_active, 1);
        }
        let s = r.snapshot();
        assert_eq!(s.paths["cam0"].sessions_active, 0);
        assert_eq!(s.paths["cam0"].sessions_total, 1);
        assert_eq!(s.total_frames_sent(), 3);
    }

    #[test]
    fn bounded() {
        let r = Registry::default();
        for i in 0..MAX_PATHS + 10 {
            r.path(&format!("p{i}"));
        }
        assert_eq!(r.snapshot().paths.len(), MAX_PATHS + 1);
    }
}
