//! `GET /api/storage`: disk use and how many days of footage the disk and
//! each camera's limits hold at the current bitrate (the figures of
//! `porchlight status`, for the web UI's health page).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::recordings::ApiError;
use super::AppState;
use crate::status::{CameraStatus, Storage};

#[derive(Serialize)]
struct StorageBody {
    storage: Storage,
    /// Per camera: stored bytes, oldest/newest footage, recording rate and
    /// the forecast with the limit that sets it.
    cameras: Vec<CameraStatus>,
}

pub async fn storage(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let config = state.leaver.config.clone();
    let status = tokio::task::spawn_blocking(move || {
        crate::status::storage_forecast(&config, crate::time::now_utc_us())
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    Ok(Json(StorageBody {
        storage: status.storage,
        cameras: status.cameras,
    })
    .into_response())
}
