//! The owner's view of the relay program: where this box stands with the
//! relay and its registry (`GET /api/relay`), and leaving it (`POST
//! /api/relay/leave`, the same as `porchlight relay leave`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::auth::OwnerUser;
use super::recordings::ApiError;
use super::requests::parse_body;
use super::AppState;

/// Longest the owner may ask a leave to wait for the relay's confirmation.
const MAX_WAIT_S: u64 = 300;
const DEFAULT_WAIT_S: u64 = 30;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaveBody {
    /// Seconds to wait for the relay to confirm the deletion (1–300).
    wait_s: Option<u64>,
}

/// `GET /api/relay`.
pub async fn status(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let status = crate::relay::status(&state.leaver.config, &state.leaver.membership)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    Ok(Json(status).into_response())
}

/// `POST /api/relay/leave` with `{}` or `{"wait_s": 60}`: 200 when the
/// relay confirmed the deletion (or no registry had this box), 202 while
/// the daemon keeps re-sending it.
pub async fn leave(
    State(state): State<Arc<AppState>>,
    owner: OwnerUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    let LeaveBody { wait_s } = parse_body(&body)?;
    let wait_s = wait_s.unwrap_or(DEFAULT_WAIT_S);
    if !(1..=MAX_WAIT_S).contains(&wait_s) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("`wait_s`: {wait_s} is not between 1 and {MAX_WAIT_S}"),
        ));
    }
    let report = state
        .leaver
        .leave_as(owner.0.as_deref(), Duration::from_secs(wait_s))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    let code = if report.deletion == "pending" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(report)).into_response())
}
