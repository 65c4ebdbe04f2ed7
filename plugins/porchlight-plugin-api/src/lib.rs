//! The contract between the Porchlight daemon and its plugins (Home
//! Assistant over MQTT first). A plugin never touches the recording path:
//! it reads state and events through [`Host`], and sends the owner's
//! commands back through it, where they take the same path as the owner API
//! (the same checks, the same audit log).
//!
//! Kept in its own small crate so plugins build without the daemon and the
//! daemon links plugins without a dependency cycle.

use serde::{Deserialize, Serialize};

/// The sharing levels a camera can have, lowest first (see the daemon's
/// `docs/policy.md`).
pub const SHARING_LEVELS: [&str; 5] = [
    "off",
    "registered",
    "on_request",
    "emergency_auto",
    "emergency_live",
];

/// One camera as the plugin shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraState {
    /// The camera's configured name (a-z, 0-9, `_`, `-`): stable, so it
    /// makes stable unique ids.
    pub name: String,
    /// Every recorded stream is delivering frames.
    pub online: bool,
    /// Whether the owner has recording on for this camera.
    pub recording: bool,
    /// Main stream, frames per second over the last sample.
    pub fps: f64,
    /// Main stream, bits per second over the last sample.
    pub bitrate_bps: f64,
    pub storage_bytes: u64,
    /// Seconds since the oldest footage kept, if any.
    pub oldest_footage_age_s: Option<u64>,
    /// One of [`SHARING_LEVELS`].
    pub sharing: String,
    /// Last motion state reported by the camera, if it reports motion.
    pub motion: Option<bool>,
    /// A live share of this camera to the police relay is running.
    #[serde(default)]
    pub live_share_active: bool,
    /// The camera's police-sharing settings beyond the level.
    #[serde(default)]
    pub sharing_settings: Option<SharingAttributes>,
}

/// A camera's police-sharing settings beyond its level, as the owner set
/// them (shown as the sharing entity's attributes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingAttributes {
    /// One line per window in the owner's time zone (`mon,tue 22:00-06:00`);
    /// empty: the level applies at all times.
    pub schedule: Vec<String>,
    /// Whether the schedule is open now (always true without one).
    pub schedule_open: bool,
    /// The level outside the schedule.
    pub outside_schedule: String,
    /// The level in force now.
    pub effective_level: String,
    /// The longest clip the camera gives to police, in seconds.
    pub max_clip_s: u64,
    pub audio_to_police: bool,
    /// Whether the camera records audio at all.
    pub audio_available: bool,
}

/// The hub (the Porchlight box itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HubState {
    /// The privacy switch: while on, nothing is shared.
    pub privacy: bool,
    pub pending_requests: u32,
    /// RFC 3339 time and a one-line description of the last relay access.
    pub last_relay_access: Option<String>,
    pub disk_free_bytes: u64,
    pub version: String,
}

/// A police footage request, as the owner is told of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoliceRequest {
    pub id: String,
    pub agency: String,
    pub case_id: String,
    pub incident_type: String,
    /// pending, approved, partially_approved, denied, expired.
    pub state: String,
    /// RFC 3339.
    pub window_from: String,
    pub window_to: String,
    pub cameras: Vec<String>,
    /// When an unanswered request counts as denied (RFC 3339).
    pub expires: String,
}

/// Something happened that a plugin may show at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostEvent {
    /// A new police request arrived.
    RequestCreated(PoliceRequest),
    /// A request changed state (answered, expired).
    RequestChanged(PoliceRequest),
    /// A camera's state changed (sharing, recording, online, motion ...).
    Camera(CameraState),
    /// The hub's state changed (privacy, pending count, relay access ...).
    Hub(HubState),
}

/// Why a command was not carried out; the text names the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown camera `{0}`")]
    UnknownCamera(String),
    #[error("invalid value: {0}")]
    Invalid(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("the daemon could not do it: {0}")]
    Failed(String),
}

/// The daemon as a plugin sees it. Methods may block briefly (database,
/// audit log); call them from blocking-friendly code (`spawn_blocking`).
pub trait Host: Send + Sync + 'static {
    /// The current state of everything, for (re)publishing from scratch.
    fn state(&self) -> (HubState, Vec<CameraState>);
    /// Pending police requests.
    fn pending_requests(&self) -> Vec<PoliceRequest>;
    /// Events from now on. A slow plugin may miss some (it is told by
    /// `Lagged`) and should then republish [`Host::state`].
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<HostEvent>;
    /// The newest snapshot of `camera` as JPEG.
    fn snapshot_jpeg(&self, camera: &str) -> Result<Vec<u8>, CommandError>;

    // The owner's commands. `actor` names the channel (e.g. "mqtt") for the
    // audit log.
    fn set_sharing(&self, actor: &str, camera: &str, level: &str) -> Result<(), CommandError>;
    fn set_privacy(&self, actor: &str, on: bool) -> Result<(), CommandError>;
    fn set_recording(&self, actor: &str, camera: &str, on: bool) -> Result<(), CommandError>;
    fn approve_request(&self, actor: &str, id: &str) -> Result<(), CommandError>;
    fn deny_request(&self, actor: &str, id: &str, reason: &str) -> Result<(), CommandError>;
    /// Ends every running live share to the relay, or only `camera`'s, at
    /// once; returns how many were ended.
    fn end_live_shares(&self, actor: &str, camera: Option<&str>) -> Result<usize, CommandError>;
}
