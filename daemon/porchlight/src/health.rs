//! What the daemon knows about each camera right now: the numbers behind
//! `/metrics`, `/api/cameras` and the systemd watchdog.
//!
//! Ingest tasks write here; HTTP handlers read. Counters are atomics so the
//! recording path never waits on a reader.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::StreamKind;

/// Connection state of one stream, as shown to the owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    Starting,
    Connecting,
    Streaming,
    /// The camera answered but refused our credentials; retried slowly.
    AuthFailed,
    /// Any other failure; retried with backoff.
    Error,
    Disabled,
    /// The owner switched recording off.
    Paused,
}

/// Slowly changing facts about a stream (set on connect and on new parameters).
#[derive(Clone, Debug, Default, Serialize)]
pub struct StreamDescription {
    pub video_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub audio_codec: Option<String>,
}

#[derive(Debug)]
pub struct StreamHealth {
    pub kind: StreamKind,
    pub frames_total: AtomicU64,
    pub bytes_written_total: AtomicU64,
    pub fragments_dropped_total: AtomicU64,
    pub packets_lost_total: AtomicU64,
    inner: Mutex<StreamInner>,
}

#[derive(Debug)]
struct StreamInner {
    state: StreamState,
    description: StreamDescription,
    last_error: Option<String>,
    last_frame_at: Option<Instant>,
    /// Since when this stream has been meant to record (enabled, not
    /// paused); `None` while it is not. The watchdog's clock for "no
    /// footage for long".
    active_since: Option<Instant>,
    /// (when, frames_total, bytes) at the previous rate sample, for fps/bitrate.
    rate_sample: (Instant, u64, u64),
    rates: (f64, f64),
    video_bytes_total: u64,
}

impl StreamHealth {
    fn new(kind: StreamKind, enabled: bool) -> StreamHealth {
        StreamHealth {
            kind,
            frames_total: AtomicU64::new(0),
            bytes_written_total: AtomicU64::new(0),
            fragments_dropped_total: AtomicU64::new(0),
            packets_lost_total: AtomicU64::new(0),
            inner: Mutex::new(StreamInner {
                state: if enabled {
                    StreamState::Starting
                } else {
                    StreamState::Disabled
                },
                description: StreamDescription::default(),
                last_error: None,
                last_frame_at: None,
                active_since: enabled.then(Instant::now),
                rate_sample: (Instant::now(), 0, 0),
                rates: (0.0, 0.0),
                video_bytes_total: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StreamInner> {
        // A panic elsewhere must not take the status page down with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_state(&self, state: StreamState, error: Option<String>) {
        let mut inner = self.lock();
        inner.state = state;
        match state {
            StreamState::Disabled | StreamState::Paused => inner.active_since = None,
            _ => {
                inner.active_since.get_or_insert_with(Instant::now);
            }
        }
        if error.is_some() || state == StreamState::Streaming {
            inner.last_error = error;
        }
    }

    pub fn set_description(&self, description: StreamDescription) {
        self.lock().description = description;
    }

    pub fn state(&self) -> StreamState {
        self.lock().state
    }

    /// Called once per stored fragment (about once a second), not per frame.
    pub fn record_fragment(&self, frames: u64, media_bytes: u64) {
        self.frames_total.fetch_add(frames, Ordering::Relaxed);
        let mut inner = self.lock();
        inner.last_frame_at = Some(Instant::now());
        inner.video_bytes_total += media_bytes;
    }

    /// When this stream last showed it can record, if it is meant to: its
    /// last stored fragment, or when it became active if later.
    fn last_sign_of_life(&self) -> Option<Instant> {
        let inner = self.lock();
        let active = inner.active_since?;
        Some(
            inner
                .last_frame_at
                .map_or(active, |frame| frame.max(active)),
        )
    }

    pub fn snapshot(&self) -> StreamSnapshot {
        let frames = self.frames_total.load(Ordering::Relaxed);
        let mut inner = self.lock();
        let now = Instant::now();
        let (then, then_frames, then_bytes) = inner.rate_sample;
        let elapsed = now.duration_since(then).as_secs_f64();
        if elapsed >= 2.0 {
            let fps = (frames - then_frames) as f64 / elapsed;
            let bps = (inner.video_bytes_total - then_bytes) as f64 * 8.0 / elapsed;
            inner.rates = (fps, bps);
            inner.rate_sample = (now, frames, inner.video_bytes_total);
        }
        StreamSnapshot {
            stream: self.kind.as_str(),
            state: inner.state,
            description: inner.description.clone(),
            fps: (inner.rates.0 * 10.0).round() / 10.0,
            bitrate_bps: inner.rates.1.round() as u64,
            frames_total: frames,
            last_error: inner.last_error.clone(),
            seconds_since_last_frame: inner
                .last_frame_at
                .map(|t| now.duration_since(t).as_secs_f64()),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StreamSnapshot {
    pub stream: &'static str,
    pub state: StreamState,
    #[serde(flatten)]
    pub description: StreamDescription,
    pub fps: f64,
    pub bitrate_bps: u64,
    pub frames_total: u64,
    pub last_error: Option<String>,
    pub seconds_since_last_frame: Option<f64>,
}

/// One camera: its streams plus storage figures kept fresh by retention.
#[derive(Debug)]
pub struct CameraHealth {
    pub name: String,
    pub enabled: bool,
    pub streams: Vec<Arc<StreamHealth>>,
    pub reconnects_total: AtomicU64,
    pub storage_bytes: AtomicU64,
    /// UTC microseconds of the oldest footage kept, or 0 when none.
    pub oldest_recording_utc_us: AtomicI64,
}

impl CameraHealth {
    pub fn stream(&self, kind: StreamKind) -> Option<&Arc<StreamHealth>> {
        self.streams.iter().find(|s| s.kind == kind)
    }

    /// Up means every recorded stream is delivering frames.
    pub fn is_up(&self) -> bool {
        self.enabled
            && !self.streams.is_empty()
            && self
                .streams
                .iter()
                .all(|s| s.state() == StreamState::Streaming)
    }
}

/// How long every camera may go without storing footage before the daemon
/// stops feeding the systemd watchdog (and so gets restarted).
pub const INGEST_STALL: Duration = Duration::from_secs(15 * 60);

/// Everything `/metrics` and `/api/cameras` show.
#[derive(Debug, Default)]
pub struct Health {
    pub cameras: BTreeMap<String, Arc<CameraHealth>>,
    /// Cleared when the store can no longer write (the watchdog stops).
    pub store_ok: AtomicBool,
    pub retention_deleted_segments_total: AtomicU64,
    pub retention_deleted_bytes_total: AtomicU64,
    pub disk_free_bytes: AtomicU64,
    /// The relay uplink, when `[relay] uplink` is set.
    pub uplink: UplinkHealth,
}

/// The outbound tunnel to the relay, for `/metrics`.
#[derive(Debug, Default)]
pub struct UplinkHealth {
    /// Set once the uplink task runs; the metrics appear only then.
    pub configured: AtomicBool,
    /// True while the tunnel is up (TLS verified, upgrade accepted).
    pub connected: AtomicBool,
    /// Tunnels established, the first one included.
    pub connections_total: AtomicU64,
    /// Tunnels established again after one ended.
    pub reconnects_total: AtomicU64,
    /// Attempts that failed: no TCP, TLS refused, upgrade refused.
    pub failed_attempts_total: AtomicU64,
}

impl Health {
    pub fn new(cameras: &[crate::config::CameraConfig]) -> Health {
        let cameras = cameras
            .iter()
            .map(|cam| {
                let streams = cam
                    .streams
                    .iter()
                    .map(|&kind| Arc::new(StreamHealth::new(kind, cam.enabled)))
                    .collect();
                let health = CameraHealth {
                    name: cam.name.clone(),
                    enabled: cam.enabled,
                    streams,
                    reconnects_total: AtomicU64::new(0),
                    storage_bytes: AtomicU64::new(0),
                    oldest_recording_utc_us: AtomicI64::new(0),
                };
                (cam.name.clone(), Arc::new(health))
            })
            .collect();
        Health {
            cameras,
            store_ok: AtomicBool::new(true),
            ..Default::default()
        }
    }
}

impl Health {
    /// Ingest is healthy unless there are streams meant to record and none
    /// of them has stored footage (or become active) within `stall`. One
    /// camera offline, or several while another records, is the camera's
    /// trouble, reported per camera and retried; only when *every* camera
    /// has been silent for long is a restart worth trying (a wedged ingest,
    /// a network stack gone odd). See docs/packaging.md.
    pub fn ingest_ok_at(&self, now: Instant, stall: Duration) -> bool {
        let mut any_active = false;
        for stream in self.cameras.values().flat_map(|c| c.streams.iter()) {
            if let Some(seen) = stream.last_sign_of_life() {
                any_active = true;
                if now.saturating_duration_since(seen) < stall {
                    return true;
                }
            }
        }
        !any_active
    }

    pub fn ingest_ok(&self) -> bool {
        self.ingest_ok_at(Instant::now(), INGEST_STALL)
    }

    /// What the systemd watchdog vouches for: the store can write and
    /// ingest is not stalled everywhere.
    pub fn watchdog_ok(&self) -> bool {
        self.store_ok.load(std::sync::atomic::Ordering::Relaxed) && self.ingest_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(cameras: &str) -> Health {
        let config =
            crate::config::Config::parse(&format!("data_dir = \"/tmp/x\"\n{cameras}"), None)
                .expect("config");
        Health::new(&config.cameras)
    }

    const TWO: &str = "[[cameras]]\nname = \"a\"\nurl = \"rtsp://127.0.0.1/a\"\n\
                       [[cameras]]\nname = \"b\"\nurl = \"rtsp://127.0.0.1/b\"\n";
    const STALL: Duration = Duration::from_secs(900);

    fn stream(h: &Health, camera: &str) -> Arc<StreamHealth> {
        h.cameras[camera].streams[0].clone()
    }

    #[test]
    fn no_cameras_is_healthy() {
        let h = health("");
        assert!(h.ingest_ok_at(Instant::now() + 10 * STALL, STALL));
    }

    #[test]
    fn a_fresh_start_gets_the_whole_stall_window() {
        let h = health(TWO);
        let now = Instant::now();
        assert!(h.ingest_ok_at(now + STALL / 2, STALL));
        assert!(!h.ingest_ok_at(now + STALL * 2, STALL));
    }

    #[test]
    fn one_camera_offline_while_another_records_is_healthy() {
        let h = health(TWO);
        let start = Instant::now();
        stream(&h, "b").set_state(StreamState::Error, Some("connection refused".into()));
        stream(&h, "a").record_fragment(30, 1000);
        assert!(h.ingest_ok_at(start + STALL - Duration::from_secs(1), STALL));
        // Both silent for longer than the window: withhold the watchdog.
        assert!(!h.ingest_ok_at(Instant::now() + STALL * 2, STALL));
    }

    #[test]
    fn paused_and_disabled_cameras_do_not_count() {
        let h = health(&format!(
            "{TWO}[[cameras]]\nname = \"c\"\nurl = \"rtsp://127.0.0.1/c\"\nenabled = false\n"
        ));
        stream(&h, "a").set_state(StreamState::Paused, None);
        stream(&h, "b").set_state(StreamState::Paused, None);
        assert!(h.ingest_ok_at(Instant::now() + STALL * 2, STALL));
        // Resumed: the window starts again from the resume.
        stream(&h, "a").set_state(StreamState::Connecting, None);
        assert!(h.ingest_ok_at(Instant::now() + STALL / 2, STALL));
        assert!(!h.ingest_ok_at(Instant::now() + STALL * 2, STALL));
    }
}
