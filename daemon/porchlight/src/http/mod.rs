//! The daemon's HTTP endpoints: health, metrics, cameras, footage, audit
//! log, and the owner's answers to police requests.

mod audit;
pub mod auth;
mod controls;
mod discovery;
mod evidence;
pub(crate) mod guard;
mod live_shares;
pub(crate) mod recordings;
mod relay;
mod requests;
mod storage;
mod verify;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Serialize;

use crate::health::{Health, StreamSnapshot, StreamState};
use crate::time::format_utc_us;

/// What the handlers share.
pub struct AppState {
    /// Where the owner API listens (which `Host` names it answers to).
    pub bind: std::net::SocketAddr,
    pub health: Arc<Health>,
    pub data_dir: std::path::PathBuf,
    /// Longest range one clip may cover, from `export.max_clip`.
    pub max_clip_us: i64,
    /// Last decoded snapshot per camera, keyed by its keyframe.
    pub snapshots: SnapshotCache,
    /// The device key and what evidence exports say about this box.
    pub evidence: Arc<crate::evidence::EvidenceSettings>,
    /// The owner's switches (privacy, sharing levels, recording).
    pub controls: Arc<crate::controls::Controls>,
    /// The owner's audit log (read by `GET /api/audit`).
    pub audit: crate::audit::AuditLog,
    /// Police requests waiting for the owner, their answers and expiry.
    pub requests: crate::requests::RequestService,
    /// Discovered ONVIF devices and adding them as cameras.
    pub onboarding: Arc<crate::onboard::Onboarding>,
    /// Leaving the relay program (`POST /api/relay/leave`).
    pub leaver: Arc<crate::relay::leave::Leaver>,
    /// Every camera's live feed (WebSocket/HLS live view).
    pub live: crate::live::LiveHub,
    /// Live shares running to the relay (`/api/live-shares`).
    pub live_shares: crate::live::LiveShares,
    /// Owner login: accounts, sessions, the CLI token.
    pub auth: Arc<auth::Auth>,
}

pub use crate::export::snapshot::SnapshotCache;

pub fn router(state: AppState) -> Router {
    let hosts = guard::AllowedHosts::for_bind(state.bind);
    let live = state.live.clone();
    let auth = state.auth.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/cameras", get(cameras))
        .route(
            "/api/cameras/{camera}/recordings",
            get(recordings::recordings),
        )
        .route("/api/cameras/{camera}/days", get(recordings::days))
        .route("/api/cameras/{camera}/clip.mp4", get(recordings::clip))
        .route("/api/cameras/{camera}/evidence", get(evidence::evidence))
        .route("/api/evidence/verify", post(verify::verify))
        .route(
            "/api/cameras/{camera}/snapshot.jpg",
            get(recordings::snapshot),
        )
        .route("/api/audit", get(audit::audit))
        .route("/api/audit/verify", get(audit::verify))
        .route("/api/storage", get(storage::storage))
        .route("/api/settings", get(controls::settings))
        .route("/api/privacy", put(controls::privacy))
        .route("/api/cameras/{camera}/sharing", put(controls::sharing))
        .route("/api/cameras/{camera}/recording", put(controls::recording))
        .route("/api/sharing", get(controls::sharing_settings))
        .route(
            "/api/cameras/{camera}/sharing-settings",
            put(controls::camera_sharing_settings),
        )
        .route("/api/policy/limits", put(controls::limits))
        .route("/api/relay", get(relay::status))
        .route("/api/relay/leave", post(relay::leave))
        .route("/api/relay/join/preview", post(relay::join_preview))
        .route("/api/relay/join", post(relay::join))
        .route("/api/requests", get(requests::list))
        .route("/api/requests/{id}", get(requests::get))
        .route("/api/requests/{id}/approve", post(requests::approve))
        .route("/api/requests/{id}/deny", post(requests::deny))
        .route(
            "/api/live-shares",
            get(live_shares::list).delete(live_shares::end_all),
        )
        .route("/api/live-shares/{id}", delete(live_shares::end))
        .route("/api/discovery", get(discovery::list))
        .route("/api/discovery/{endpoint}/add", post(discovery::add))
        .with_state(Arc::new(state))
        .merge(crate::live::http::routes(live))
        .merge(crate::ui::routes())
        .merge(auth::routes(auth.clone()))
        .fallback(not_found)
        // Inside the Host/Origin guard: the guard answers first.
        .layer(axum::middleware::from_fn_with_state(
            auth,
            auth::require_owner,
        ))
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            guard::owner_only,
        ))
}

#[derive(Serialize)]
pub(crate) struct ErrorBody {
    pub error: String,
}

/// Every error is JSON that names the problem.
pub(crate) fn error_response(status: StatusCode, error: String) -> Response {
    (status, Json(ErrorBody { error })).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {}", uri.path()),
    )
}

#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
    store_ok: bool,
    /// False when every camera meant to record has stored nothing for
    /// `health::INGEST_STALL` (the systemd watchdog is withheld then).
    ingest_ok: bool,
    cameras_total: usize,
    cameras_up: usize,
}

/// 200 while the store can write; cameras being down is not the daemon's
/// ill health (it is reported, and the daemon keeps retrying).
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let health = &state.health;
    let store_ok = health.store_ok.load(Ordering::Relaxed);
    let body = HealthBody {
        status: if store_ok { "ok" } else { "store_failing" },
        store_ok,
        ingest_ok: health.ingest_ok(),
        cameras_total: health.cameras.len(),
        cameras_up: health.cameras.values().filter(|c| c.is_up()).count(),
    };
    let status = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let health = &state.health;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(health),
    )
        .into_response()
}

#[derive(Serialize)]
struct CameraBody {
    name: String,
    enabled: bool,
    status: StreamState,
    up: bool,
    codec: Option<String>,
    resolution: Option<String>,
    fps: f64,
    bitrate_bps: u64,
    audio_codec: Option<String>,
    last_error: Option<String>,
    storage_bytes: u64,
    oldest_recording: Option<String>,
    reconnects: u64,
    streams: Vec<StreamSnapshot>,
}

async fn cameras(State(state): State<Arc<AppState>>) -> Json<Vec<CameraBody>> {
    let health = &state.health;
    let list = health
        .cameras
        .values()
        .map(|cam| {
            let streams: Vec<StreamSnapshot> = cam.streams.iter().map(|s| s.snapshot()).collect();
            let main = streams.first();
            let oldest = cam.oldest_recording_utc_us.load(Ordering::Relaxed);
            CameraBody {
                name: cam.name.clone(),
                enabled: cam.enabled,
                status: main.map_or(StreamState::Disabled, |s| s.state),
                up: cam.is_up(),
                codec: main.and_then(|s| s.description.video_codec.clone()),
                resolution: main.and_then(|s| {
                    Some(format!(
                        "{}x{}",
                        s.description.width?, s.description.height?
                    ))
                }),
                fps: main.map_or(0.0, |s| s.fps),
                bitrate_bps: main.map_or(0, |s| s.bitrate_bps),
                audio_codec: main.and_then(|s| s.description.audio_codec.clone()),
                last_error: streams.iter().find_map(|s| s.last_error.clone()),
                storage_bytes: cam.storage_bytes.load(Ordering::Relaxed),
                oldest_recording: (oldest > 0).then(|| format_utc_us(oldest)),
                reconnects: cam.reconnects_total.load(Ordering::Relaxed),
                streams,
            }
        })
        .collect();
    Json(list)
}
