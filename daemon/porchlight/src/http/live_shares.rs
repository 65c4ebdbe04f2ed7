//! The owner's view of live shares to the relay: list them, end one or all
//! (or all of one camera) at once. The CLI (`porchlight live-shares`) calls
//! these; Home Assistant ends shares through the same `LiveShares::end_where`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::recordings::ApiError;
use super::AppState;
use crate::audit::Component;
use crate::live::EndReason;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndAllParams {
    camera: Option<String>,
}

/// `GET /api/live-shares`: the shares running now.
pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    Json(serde_json::json!({ "live_shares": state.live_shares.list() })).into_response()
}

/// `DELETE /api/live-shares/{id}`: ends one share; its streams stop at once.
pub async fn end(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let well_formed = id.len() == 19
        && id
            .strip_prefix("ls_")
            .is_some_and(|hex| hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    if !well_formed {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "`id`: `{}` is not a live share id (ls_ followed by 16 lowercase hex digits)",
                id.chars().take(64).collect::<String>()
            ),
        ));
    }
    match state
        .live_shares
        .end(&id, EndReason::Owner, Component::OwnerApi)
    {
        Some(ended) => Ok(Json(serde_json::json!({ "ended": [ended] })).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no running live share `{id}` (see GET /api/live-shares)"),
        )),
    }
}

/// `DELETE /api/live-shares` (`?camera=NAME` for one camera's): ends them
/// all at once. Ending nothing is not an error.
pub async fn end_all(
    State(state): State<Arc<AppState>>,
    query: Result<Query<EndAllParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    if let Some(camera) = &params.camera {
        if !state.health.cameras.contains_key(camera) {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no camera named `{camera}`"),
            ));
        }
    }
    let ended = state.live_shares.end_where(
        |s| params.camera.as_ref().is_none_or(|c| *c == s.camera),
        EndReason::Owner,
        Component::OwnerApi,
    );
    Ok(Json(serde_json::json!({ "ended": ended })).into_response())
}
