//! The owner's view of the relay program: where this box stands with the
//! relay and its registry (`GET /api/relay`), and leaving it (`POST
//! /api/relay/leave`, the same as `porchlight relay leave`), and joining
//! it again (`POST /api/relay/join/preview`, `POST /api/relay/join`, the
//! same enrolment as `porchlight relay enroll`, then an in-place restart).

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
use crate::audit::{AuditEvent, Component, EventType, Identity, Outcome};
use crate::relay::join::{self, JoinError, JoinRequest};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    agency_ca_pem: String,
    registry_ca_pem: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    agency_ca_pem: String,
    registry_ca_pem: Option<String>,
    /// The agency CA's SHA-256 the owner compared with the published one.
    confirm_fingerprint: String,
}

fn join_error(e: JoinError) -> ApiError {
    match e {
        JoinError::Invalid(why) => ApiError(StatusCode::BAD_REQUEST, why),
        JoinError::Conflict(why) => ApiError(StatusCode::CONFLICT, why),
        JoinError::Failed(e) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    }
}

/// `POST /api/relay/join/preview`: what the pasted certificates are
/// (subject, validity, SHA-256), for the owner to compare. Writes nothing.
pub async fn join_preview(body: Bytes) -> Result<Response, ApiError> {
    let PreviewBody {
        agency_ca_pem,
        registry_ca_pem,
    } = parse_body(&body)?;
    let now = crate::time::now_utc_us();
    let agency = join::describe(&agency_ca_pem, "agency_ca_pem", now).map_err(join_error)?;
    let registry = match registry_ca_pem.as_deref().map(str::trim) {
        Some(pem) if !pem.is_empty() => {
            join::describe(pem, "registry_ca_pem", now).map_err(join_error)?
        }
        _ => Vec::new(),
    };
    Ok(Json(serde_json::json!({ "agency_cas": agency, "registry_cas": registry })).into_response())
}

/// `POST /api/relay/join`: pins the CAs (as `porchlight relay enroll`),
/// audits it, and restarts the daemon in place so the relay starts.
pub async fn join(
    State(state): State<Arc<AppState>>,
    owner: OwnerUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    let JoinBody {
        agency_ca_pem,
        registry_ca_pem,
        confirm_fingerprint,
    } = parse_body(&body)?;
    let config = state.leaver.config.clone();
    let membership = state.leaver.membership.clone();
    let report = tokio::task::spawn_blocking(move || {
        join::join(
            &config,
            &membership,
            &JoinRequest {
                agency_ca_pem: &agency_ca_pem,
                registry_ca_pem: registry_ca_pem.as_deref(),
                confirm_fingerprint: &confirm_fingerprint,
            },
        )
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(join_error)?;
    let entry = AuditEvent::new(
        Component::OwnerApi,
        EventType::Enrolment,
        Identity::owner(owner.0.as_deref()),
    )
    .outcome(Outcome::ok())
    .details(serde_json::json!({
        "what": "the owner joined the relay program from the owner API; the daemon restarts in place to start the relay",
        "agency_ca_sha256": report.agency_cas.iter().map(|c| &c.sha256).collect::<Vec<_>>(),
        "agency": report.agency_cas.first().map(|c| &c.agency),
        "registry_ca_sha256": report.registry_cas.iter().map(|c| &c.sha256).collect::<Vec<_>>(),
        "registry": report.registry,
    }));
    state
        .audit
        .append(entry)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    // After the answer has left: the relay listener, uplink and registry
    // start with the daemon.
    state
        .onboarding
        .request_restart(std::time::Duration::from_millis(300));
    Ok(Json(report).into_response())
}
