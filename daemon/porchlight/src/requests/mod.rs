//! Footage requests that wait for the owner.
//!
//! The relay listener validates a police request, asks the policy gate
//! ([`crate::policy::decide`]) and hands both to [`RequestStore::record`].
//! From then on this module keeps the request's state: cameras the policy
//! served at once, cameras waiting for the owner's answer, the owner's
//! approval (perhaps of fewer cameras or a shorter window) or denial, and
//! expiry when the owner does not answer in time (no answer is a denial).
//! Download tokens for servable cameras are issued and checked here too.
//!
//! [`RequestStore`] is the database alone (blocking, no audit, no events),
//! so the relay and tests can use it anywhere. Owner-facing changes go
//! through [`RequestService`], which also writes the audit log and tells
//! the [`crate::events::EventBus`]. Decisions: docs/requests.md.

mod activity;
pub mod cli;
mod service;
mod store;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

use crate::policy::{GeoPoint, Officer, TimeWindow};
use crate::time::format_utc_us;

pub use activity::{
    Activity, Delivery, Download, DownloadStart, LiveMinute, LiveView, LIVE_VIEW_LEFT,
};
pub use service::{RequestService, ServiceError};
pub use store::{RequestStore, RevokedAll, TokenGrant};

/// Where a request stands, as the owner and the agency see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Something waits for the owner and nothing has been granted yet.
    Pending,
    /// Every camera the agency may know of is servable.
    Approved,
    /// Some cameras are servable, others denied, refused or still waiting.
    PartiallyApproved,
    /// Nothing servable and nothing waiting: the owner or the policy said no.
    Denied,
    /// The owner did not answer in time; nothing was granted.
    Expired,
}

impl RequestState {
    pub const ALL: [RequestState; 5] = [
        RequestState::Pending,
        RequestState::Approved,
        RequestState::PartiallyApproved,
        RequestState::Denied,
        RequestState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::PartiallyApproved => "partially_approved",
            RequestState::Denied => "denied",
            RequestState::Expired => "expired",
        }
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for RequestState {
    type Err = String;

    fn from_str(text: &str) -> Result<RequestState, String> {
        RequestState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = RequestState::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "`{text}` is not a request state (one of {})",
                    known.join(", ")
                )
            })
    }
}

/// The per-camera outcomes a [`StoredCamera`] can have. Text in the database
/// and the API, so a newer state never breaks an older reader's listing.
pub mod outcome {
    /// Served at once by the policy (emergency on an `emergency_*` camera).
    pub const SERVE: &str = "serve";
    /// Waits for the owner; `approvable_window` is the most they can grant.
    pub const AWAIT_OWNER: &str = "await_owner";
    /// A `registered` camera: shown to the owner, served only if the owner
    /// names it in an approval.
    pub const SHOW_TO_OWNER_ONLY: &str = "show_to_owner_only";
    /// Refused by the policy; nothing the owner does here can add it.
    pub const REFUSE: &str = "refuse";
    /// Approved by the owner: servable.
    pub const APPROVED: &str = "approved";
    /// Denied by the owner (or left out of a partial approval).
    pub const DENIED: &str = "denied";
    /// Still waiting when the request expired.
    pub const EXPIRED: &str = "expired";
    /// Was servable; the owner took it back (left the relay).
    pub const REVOKED: &str = "revoked";

    /// Outcomes that still wait for the owner's answer.
    pub fn is_awaiting(outcome: &str) -> bool {
        outcome == AWAIT_OWNER || outcome == SHOW_TO_OWNER_ONLY
    }

    /// Outcomes whose footage may be handed out.
    pub fn is_servable(outcome: &str) -> bool {
        outcome == SERVE || outcome == APPROVED
    }
}

/// A request as recorded, with every camera's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredRequest {
    /// `req_` and 20 lowercase hex digits.
    pub id: String,
    /// The agency named by the client certificate.
    pub agency: String,
    /// SHA-256 of the client certificate that asked; download tokens only
    /// work over the same certificate.
    pub cert_fingerprint: String,
    pub officer: Officer,
    pub case_id: String,
    pub incident_type: String,
    /// As [`crate::policy::LegalBasis`] serializes it (`{"kind": "warrant", "reference": ...}`).
    pub legal_basis: serde_json::Value,
    pub reason: String,
    /// The window the agency asked for.
    #[serde(serialize_with = "window_rfc3339")]
    pub window: TimeWindow,
    /// Where the incident was and how far around it the agency asked;
    /// `None` for requests recorded before schema 2 kept them.
    pub location: Option<GeoPoint>,
    pub radius_m: Option<f64>,
    #[serde(rename = "received", serialize_with = "time_rfc3339")]
    pub received_us: i64,
    /// When waiting cameras count as denied (no answer means no).
    #[serde(rename = "expires", serialize_with = "time_rfc3339")]
    pub expires_us: i64,
    /// When the owner answered (or the request expired); `None` while
    /// waiting, or when the policy served it at once.
    #[serde(skip)]
    pub answered_us: Option<i64>,
    pub state: RequestState,
    /// The owner's reason, or the policy's refusal of the whole request.
    pub denial_reason: Option<String>,
    pub cameras: Vec<StoredCamera>,
}

/// One camera of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredCamera {
    pub camera: String,
    /// One of the [`outcome`] texts.
    pub outcome: String,
    /// Servable cameras: the window to serve. Waiting ones: what the policy
    /// would let the owner approve. Otherwise none.
    #[serde(serialize_with = "optional_window_rfc3339")]
    pub window: Option<TimeWindow>,
    pub audio: bool,
    /// The policy's refusal code (owner side, see `policy::Refusal::code`).
    pub refusal: Option<String>,
    /// The most the owner may approve (waiting cameras, kept once answered).
    #[serde(
        serialize_with = "optional_window_rfc3339",
        skip_serializing_if = "Option::is_none"
    )]
    pub approvable_window: Option<TimeWindow>,
    /// Whether the agency's answer may mention this camera
    /// (`policy::CameraDecision::visible_to_agency`).
    pub visible_to_agency: bool,
    /// Metres from the incident to the camera, rounded, as the policy
    /// stood when the request was decided. `None` when the camera had no
    /// location then, or for requests recorded before schema 2.
    pub distance_m: Option<u64>,
}

impl StoredCamera {
    pub fn is_servable(&self) -> bool {
        outcome::is_servable(&self.outcome)
    }

    pub fn is_awaiting(&self) -> bool {
        outcome::is_awaiting(&self.outcome)
    }
}

impl StoredRequest {
    /// Cameras whose footage may be handed out now (`serve` or `approved`).
    /// From when footage became servable: download tokens run from here.
    pub fn servable_since_us(&self) -> i64 {
        self.answered_us.unwrap_or(self.received_us)
    }

    pub fn servable_cameras(&self) -> impl Iterator<Item = &StoredCamera> {
        self.cameras.iter().filter(|c| c.is_servable())
    }

    /// Cameras still waiting for the owner.
    pub fn awaiting_cameras(&self) -> impl Iterator<Item = &StoredCamera> {
        self.cameras.iter().filter(|c| c.is_awaiting())
    }

    pub fn camera(&self, name: &str) -> Option<&StoredCamera> {
        self.cameras.iter().find(|c| c.camera == name)
    }
}

/// Whether `text` has the shape of a request id (`req_` + 20 lowercase hex),
/// checked before any lookup so nothing else reaches the database.
pub fn is_request_id(text: &str) -> bool {
    text.strip_prefix("req_").is_some_and(|hex| {
        hex.len() == 20 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Longest owner denial reason, in characters (as for agency reasons).
pub const MAX_DENIAL_REASON_CHARS: usize = crate::policy::MAX_REASON_CHARS;

/// Why the store could not do what was asked. The owner-facing variants name
/// the request and the problem, for CLI and API errors alike.
#[derive(Debug, thiserror::Error)]
pub enum RequestStoreError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("request database {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        source: rusqlite::Error,
    },
    #[error("request database: {context}: {source}")]
    Database {
        context: &'static str,
        source: rusqlite::Error,
    },
    #[error("request database: {0}")]
    Corrupt(String),
    #[error("unknown request id `{0}`")]
    UnknownRequest(String),
    #[error("request {id} was already answered (it is {state}); nothing waits for you")]
    AlreadyAnswered { id: String, state: RequestState },
    #[error("request {id} expired at {expired_at}: it can no longer be approved or denied")]
    Expired { id: String, expired_at: String },
    #[error("camera `{camera}` is not in request {id} (it has: {known})")]
    CameraNotInRequest {
        id: String,
        camera: String,
        known: String,
    },
    #[error("camera `{camera}` of request {id} cannot be approved: {why}")]
    CameraNotApprovable {
        id: String,
        camera: String,
        why: String,
    },
    #[error("request {id}: nothing to approve without naming cameras ({hint})")]
    NothingToApprove { id: String, hint: String },
    #[error("name at least one camera to approve, or none to approve every waiting camera")]
    NoCamerasNamed,
    #[error("the window {from} to {to} is empty: `from` must be before `to`")]
    EmptyWindow { from: String, to: String },
    #[error("the window {from} to {to} lies outside what camera `{camera}` may give ({allowed_from} to {allowed_to})")]
    WindowOutside {
        camera: String,
        from: String,
        to: String,
        allowed_from: String,
        allowed_to: String,
    },
    #[error("a denial needs a reason of 1 to {MAX_DENIAL_REASON_CHARS} characters without control characters other than newlines")]
    BadReason,
    #[error("camera `{camera}` of request {id} is not servable (it is {outcome}); no token")]
    NotServable {
        id: String,
        camera: String,
        outcome: String,
    },
    #[error("request {id} was made with another client certificate; tokens are bound to the one that asked")]
    CertificateMismatch { id: String },
}

impl RequestStoreError {
    /// How the owner API answers: the owner's mistakes are 4xx, ours 500.
    pub fn kind(&self) -> ErrorKind {
        use RequestStoreError::*;
        match self {
            UnknownRequest(_) => ErrorKind::NotFound,
            AlreadyAnswered { .. } | Expired { .. } => ErrorKind::Conflict,
            CameraNotInRequest { .. }
            | CameraNotApprovable { .. }
            | NothingToApprove { .. }
            | NoCamerasNamed
            | EmptyWindow { .. }
            | WindowOutside { .. }
            | BadReason
            | NotServable { .. }
            | CertificateMismatch { .. } => ErrorKind::BadInput,
            DataDir { .. } | Open { .. } | Database { .. } | Corrupt(_) => ErrorKind::Internal,
        }
    }
}

/// Coarse classes of [`RequestStoreError`], for status codes and exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    BadInput,
    Internal,
}

/// Why a download token was not accepted. The relay maps `Invalid` and
/// `Revoked` to `403 invalid_token` and `Expired` to `410 token_expired`.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token (malformed, unknown, or for another request, camera or certificate)")]
    Invalid,
    #[error("the download token has expired")]
    Expired,
    #[error("the download token was revoked by the owner")]
    Revoked,
    #[error("cannot check the token: {0}")]
    Store(#[from] RequestStoreError),
}

fn time_rfc3339<S: Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_utc_us(*us))
}

#[derive(Serialize)]
struct WireWindow {
    from: String,
    to: String,
}

fn window_rfc3339<S: Serializer>(window: &TimeWindow, s: S) -> Result<S::Ok, S::Error> {
    WireWindow {
        from: format_utc_us(window.from_us),
        to: format_utc_us(window.to_us),
    }
    .serialize(s)
}

fn optional_window_rfc3339<S: Serializer>(
    window: &Option<TimeWindow>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match window {
        Some(window) => window_rfc3339(window, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests;
