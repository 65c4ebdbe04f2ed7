//! The owner's view of ONVIF discovery: devices seen on the LAN (pending or
//! already a camera), and adding one as a camera.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::OwnerUser;
use super::recordings::ApiError;
use super::requests::parse_body;
use super::AppState;
use crate::onboard::AddRequest;

/// `GET /api/discovery`.
pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    Json(state.onboarding.view().await).into_response()
}

/// `POST /api/discovery/{endpoint}/add` with `{"name", "username",
/// "password", "main_profile", "sub_profile"}`: 201 with the camera, which
/// records after the daemon's in-place restart.
pub async fn add(
    State(state): State<Arc<AppState>>,
    owner: OwnerUser,
    Path(endpoint): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: AddRequest = parse_body(&body)?;
    match state.onboarding.add(&endpoint, request, owner.0).await {
        Ok(added) => Ok((StatusCode::CREATED, Json(added)).into_response()),
        Err(e) => Err(ApiError(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.to_string(),
        )),
    }
}
