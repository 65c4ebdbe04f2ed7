//! The owner's switches over HTTP: privacy, each camera's sharing level and
//! recording; and the sharing settings (schedules, clip limits, audio,
//! request limits). The same `Controls` serve Home Assistant and the CLI, so every
//! channel is checked and logged alike.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::auth::OwnerUser;
use super::recordings::ApiError;
use super::requests::parse_body;
use super::AppState;
use crate::controls::sharing_settings::{CameraSharingUpdate, LimitsUpdate};
use crate::controls::{Actor, Channel, ControlError};
use crate::policy::SharingLevel;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnOff {
    on: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sharing {
    level: SharingLevel,
}

fn control_error(e: ControlError) -> ApiError {
    let status = match e {
        ControlError::UnknownCamera(_) => StatusCode::NOT_FOUND,
        ControlError::Invalid { .. } => StatusCode::BAD_REQUEST,
        ControlError::Save { .. } | ControlError::Audit(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError(status, e.to_string())
}

/// The owner API acting for `owner`.
fn api(owner: OwnerUser) -> Actor {
    Actor {
        channel: Channel::OwnerApi,
        user: owner.0,
    }
}

/// Runs a switch on the blocking pool (it saves a file and writes the audit
/// log), then answers with every switch as it now stands.
async fn apply(
    state: &AppState,
    change: impl FnOnce(&crate::controls::Controls) -> Result<(), ControlError> + Send + 'static,
) -> Result<Response, ApiError> {
    let controls = state.controls.clone();
    tokio::task::spawn_blocking(move || change(&controls).map(|()| controls.switches()))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map(|switches| Json(switches).into_response())
        .map_err(control_error)
}

/// `GET /api/settings`: the privacy switch and every camera's switches.
pub async fn settings(State(state): State<Arc<AppState>>) -> Response {
    Json(state.controls.switches()).into_response()
}

/// `PUT /api/privacy` with `{"on": true}`.
pub async fn privacy(
    State(state): State<Arc<AppState>>,
    owner: OwnerUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    let OnOff { on } = parse_body(&body)?;
    apply(&state, move |c| c.set_privacy(api(owner), on)).await
}

/// `PUT /api/cameras/{camera}/sharing` with `{"level": "on_request"}`.
pub async fn sharing(
    State(state): State<Arc<AppState>>,
    owner: OwnerUser,
    Path(camera): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Sharing { level } = parse_body(&body)?;
    apply(&state, move |c| c.set_sharing(api(owner), &camera, level)).await
}

/// `PUT /api/cameras/{camera}/recording` with `{"on": false}`.
pub async fn recording(
    State(state): State<Arc<AppState>>,
    owner: OwnerUser,
    Path(camera): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let OnOff { on } = parse_body(&body)?;
    apply(&state, move |c| c.set_recording(api(owner), &camera, on)).await
}

/// Like [`apply`], answering with the sharing settings as they now stand.
async fn apply_sharing(
    state: &AppState,
    change: impl FnOnce(&crate::controls::Controls) -> Result<(), ControlError> + Send + 'static,
) -> Result<Response, ApiError> {
    let controls = state.controls.clone();
    tokio::task::spawn_blocking(move || change(&controls).map(|()| controls.sharing()))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map(|view| Json(view).into_response())
        .map_err(control_error)
}

/// `GET /api/sharing`: every camera's level, schedule, off-hours level,
/// clip limit and audio, and the device's limits, each with its source.
pub async fn sharing_settings(State(state): State<Arc<AppState>>) -> Response {
    Json(state.controls.sharing()).into_response()
}

/// `PUT /api/cameras/{camera}/sharing-settings` with any of `level`,
/// `schedule`, `outside_schedule`, `max_clip`, `audio_to_police`.
pub async fn camera_sharing_settings(
    State(state): State<Arc<AppState>>,
    owner: OwnerUser,
    Path(camera): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let update: CameraSharingUpdate = parse_body(&body)?;
    apply_sharing(&state, move |c| {
        c.set_camera_sharing(api(owner), &camera, &update)
    })
    .await
}

/// `PUT /api/policy/limits` with any of `max_clip`, `requests_per_case`,
/// `requests_per_agency_per_day`, `max_window`, `max_radius_m`.
pub async fn limits(
    State(state): State<Arc<AppState>>,
    owner: OwnerUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    let update: LimitsUpdate = parse_body(&body)?;
    apply_sharing(&state, move |c| c.set_limits(api(owner), &update)).await
}
