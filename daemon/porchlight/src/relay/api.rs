//! The agency-facing API (docs/relay-protocol.md). Every call passes the
//! per-certificate rate limit, then the one policy gate for anything about
//! footage, and every call, served or refused, goes into the audit log.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::delivery;
use super::listener::Caller;
use super::RelayState;
use crate::audit::{AuditEvent, Component, EventType, Identity, Outcome as AuditOutcome};
use crate::events::DaemonEvent;
use crate::policy::{self, RequestError, TimeWindow};
use crate::requests::{outcome, StoredCamera, StoredRequest, TokenError};
use crate::time::{format_utc_us, now_utc_us};

/// Largest request body the relay reads.
const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

pub fn router(state: Arc<RelayState>) -> Router {
    Router::new()
        .route("/v1/requests", post(create_request))
        .route("/v1/requests/{id}", get(request_status))
        .route("/v1/requests/{id}/packages/{camera}", get(download))
        .route("/v1/requests/{id}/live", post(super::live_share::start))
        .route(
            "/v1/requests/{id}/live/{camera}",
            get(super::live_share::stream),
        )
        .route("/v1/device", get(device))
        .fallback(not_found)
        .with_state(state)
}

/// A refusal, in the protocol's error format.
#[derive(Debug)]
pub struct RelayError {
    status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
    field: Option<String>,
    retry_after_s: Option<u64>,
}

impl RelayError {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> RelayError {
        RelayError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after_s: None,
        }
    }

    /// The package is still being made: try again shortly.
    pub fn preparing() -> RelayError {
        RelayError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the evidence package is being prepared",
        )
        .retry_after(5)
    }

    fn retry_after(mut self, seconds: u64) -> RelayError {
        self.retry_after_s = Some(seconds);
        self
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for RelayError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            if let Ok(value) = seconds.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<RequestError> for RelayError {
    fn from(e: RequestError) -> RelayError {
        let status = match e {
            RequestError::AgencyMismatch { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        RelayError {
            status,
            code: e.code(),
            field: e.field().map(str::to_string),
            message: e.to_string(),
            retry_after_s: None,
        }
    }
}

pub(super) fn internal(error: impl std::fmt::Display) -> RelayError {
    tracing::error!(%error, "relay: internal error");
    RelayError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the box cannot answer right now",
    )
    .retry_after(30)
}

/// What a call was about, for the audit log.
#[derive(Default)]
pub(super) struct Object {
    pub(super) request_id: Option<String>,
    pub(super) camera: Option<String>,
    pub(super) window: Option<TimeWindow>,
}

impl RelayState {
    /// The download token for this request, camera and certificate: issued
    /// once and reused while the daemon runs, so polling does not write.
    async fn token_for(
        &self,
        id: &str,
        camera: &str,
        fingerprint: &str,
        expires_us: i64,
    ) -> Result<Option<String>, RelayError> {
        let key = (id.to_string(), camera.to_string(), fingerprint.to_string());
        if let Some(token) = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Some(token.clone()));
        }
        let store = self.requests.store.clone();
        let (i, c, f) = key.clone();
        let issued = tokio::task::spawn_blocking(move || store.issue_token(&i, &c, &f, expires_us))
            .await
            .map_err(internal)?;
        let token = match issued {
            Ok(token) => token,
            // Another certificate of the agency than the one that asked:
            // no link for it (tokens stay bound to the asking certificate).
            Err(crate::requests::RequestStoreError::CertificateMismatch { .. }) => return Ok(None),
            Err(e) => return Err(internal(e)),
        };
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, token.clone());
        Ok(Some(token))
    }

    /// Whether the owner still shares `camera` at all (privacy off, level
    /// above `off`): checked again at every download and status answer.
    fn still_shared(&self, camera: &str) -> bool {
        let policy = self.policy.current();
        !policy.privacy
            && policy
                .cameras
                .iter()
                .any(|c| c.name == camera && c.level != policy::SharingLevel::Off)
    }

    pub(super) fn identity(caller: &Caller) -> Identity {
        Identity::agency(
            &caller.identity.name,
            None,
            Some(&caller.identity.cert_fingerprint),
        )
    }

    /// The checks every call passes first: an enrolled agency, within its rate.
    pub(super) fn admit(&self, caller: &Caller) -> Result<(), RelayError> {
        if !self.membership.is_member() {
            // A backstop: the listener and the uplink stop serving as the
            // owner leaves; a call already under way when it happens ends here.
            return Err(RelayError::new(
                StatusCode::FORBIDDEN,
                "not_enrolled",
                "this box has left the relay program",
            ));
        }
        if caller.identity.name.is_empty() {
            return Err(RelayError::new(
                StatusCode::FORBIDDEN,
                "unknown_agency",
                "the client certificate names no agency (subject O or CN)",
            ));
        }
        self.rate
            .check(&caller.identity.cert_fingerprint)
            .map_err(|wait| {
                RelayError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    format!(
                        "more than {} calls a minute from this certificate",
                        self.rate.per_minute()
                    ),
                )
                .retry_after(wait)
            })
    }

    /// Logs a refused call (throttled per certificate during floods; the
    /// rest are counted into a summary entry).
    pub(super) async fn audit_refusal(
        &self,
        caller: &Caller,
        what: &str,
        error: &RelayError,
        object: Object,
    ) {
        let Some(suppressed) = self.refusals.admit(&caller.identity.cert_fingerprint) else {
            return;
        };
        let mut details = serde_json::json!({
            "call": what,
            "status": error.status.as_u16(),
            "code": error.code,
            "peer": caller.peer.to_string(),
        });
        if suppressed > 0 {
            details["earlier_refusals_not_logged_individually"] = suppressed.into();
        }
        let kind = if error.status == StatusCode::FORBIDDEN {
            EventType::AuthFailure
        } else {
            EventType::RequestRefused
        };
        let mut event = AuditEvent::new(Component::Relay, kind, Self::identity(caller))
            .outcome(AuditOutcome::refused(format!(
                "{}: {}",
                error.code, error.message
            )))
            .details(details);
        event = with_object(event, object);
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, "cannot write to the audit log");
        }
    }

    pub(super) async fn audit_ok(
        &self,
        caller: &Caller,
        kind: EventType,
        object: Object,
        details: serde_json::Value,
        bytes: u64,
    ) -> bool {
        self.requests.bus.publish(DaemonEvent::RelayAccess {
            time: format_utc_us(now_utc_us()),
            agency: caller.identity.name.clone(),
            summary: format!(
                "{}{}",
                kind.as_str(),
                object
                    .request_id
                    .as_deref()
                    .map(|id| format!(" {id}"))
                    .unwrap_or_default()
            ),
        });
        let event = AuditEvent::new(Component::Relay, kind, Self::identity(caller))
            .outcome(AuditOutcome::ok())
            .bytes_served(bytes)
            .details(details);
        match self.audit.append(with_object(event, object)).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, "cannot write to the audit log");
                false
            }
        }
    }
}

fn with_object(mut event: AuditEvent, object: Object) -> AuditEvent {
    if let Some(id) = object.request_id {
        event = event.request(id);
    }
    if let Some(camera) = object.camera {
        event = event.camera(camera);
    }
    if let Some(w) = object.window {
        event = event.window(w.from_us, w.to_us);
    }
    event
}

async fn not_found(
    State(state): State<Arc<RelayState>>,
    Extension(caller): Extension<Caller>,
    method: Method,
    uri: Uri,
) -> Response {
    // Unknown paths count against the call rate like any other call.
    let error = state.admit(&caller).err().unwrap_or_else(|| {
        RelayError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no such endpoint: {method} {}",
                uri.path().chars().take(200).collect::<String>()
            ),
        )
    });
    state
        .audit_refusal(&caller, "unknown endpoint", &error, Object::default())
        .await;
    error.into_response()
}

// ---------------------------------------------------------------- requests

async fn create_request(
    State(state): State<Arc<RelayState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match create_request_inner(&state, &caller, &headers, body).await {
        Ok(response) => response,
        Err(error) => {
            state
                .audit_refusal(&caller, "POST /v1/requests", &error, Object::default())
                .await;
            error.into_response()
        }
    }
}

async fn create_request_inner(
    state: &RelayState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, RelayError> {
    state.admit(caller)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(RelayError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/json",
        ));
    }
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
    {
        Err(_) => {
            return Err(RelayError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ))
        }
        Ok(Err(_)) => {
            return Err(RelayError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is over {} KiB", MAX_BODY / 1024),
            ))
        }
        Ok(Ok(bytes)) => bytes,
    };
    let now = now_utc_us();
    // The policy in force now (the owner may have flipped a switch).
    let policy = state.policy.current();
    let raw = policy::parse_request(&bytes)?;
    let request = policy::validate(raw, &caller.identity, &policy.limits, now)?;
    // One request at a time from count to record, so parallel requests
    // cannot all slip under the per-case and per-day limits.
    let _intake = state.intake.lock().await;
    let store = state.requests.store.clone();
    let (agency, case) = (caller.identity.name.clone(), request.case_id().to_string());
    let history = tokio::task::spawn_blocking(move || store.history(&agency, &case, now))
        .await
        .map_err(internal)?
        .map_err(internal)?;

    // The one gate.
    let decision = policy::decide(&policy, &request, &history, now);
    match decision.whole_request {
        Some(policy::Refusal::CaseLimitReached) => {
            return Err(RelayError::new(
                StatusCode::CONFLICT,
                "case_limit_reached",
                format!(
                    "this case already has {} request(s), the most the owner allows",
                    history.earlier_requests_for_case
                ),
            ))
        }
        Some(policy::Refusal::AgencyDailyLimitReached) => {
            return Err(RelayError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "agency_daily_limit_reached",
                "this agency has reached the owner's daily request limit",
            )
            .retry_after(3600))
        }
        _ => {}
    }
    let stored = {
        let (store, request, decision) = (
            state.requests.store.clone(),
            request.clone(),
            decision.clone(),
        );
        let expiry = policy.approval_expiry;
        let cameras_now = policy.cameras.clone();
        tokio::task::spawn_blocking(move || {
            store.record_located(&request, &decision, &cameras_now, now, expiry)
        })
        .await
        .map_err(internal)?
        .map_err(internal)?
    };
    state.requests.bus.publish(DaemonEvent::RequestCreated {
        id: stored.id.clone(),
    });
    state.requests.bus.publish(DaemonEvent::RequestChanged {
        id: stored.id.clone(),
        state: stored.state,
    });
    state
        .audit_ok(
            caller,
            EventType::RequestReceived,
            Object {
                request_id: Some(stored.id.clone()),
                window: Some(request.window()),
                ..Object::default()
            },
            serde_json::json!({
                "officer": request.officer(),
                "case_id": request.case_id(),
                "incident_type": request.incident_type(),
                "legal_basis": request.legal_basis(),
                "reason": request.reason(),
                "decision": decision,
            }),
            0,
        )
        .await;
    if decision.serves_any() {
        // Served without the owner's say: the owner hears at once (bus,
        // MQTT, UI) and it stays in the record as its own entry.
        tracing::warn!(request = %stored.id, agency = %caller.identity.name, "emergency request served at once");
        let served: Vec<&str> = stored
            .servable_cameras()
            .map(|c| c.camera.as_str())
            .collect();
        state
            .audit_ok(
                caller,
                EventType::Decision,
                Object {
                    request_id: Some(stored.id.clone()),
                    window: Some(request.window()),
                    ..Object::default()
                },
                serde_json::json!({
                    "served_at_once": served,
                    "why": "emergency request on cameras the owner set to serve emergencies at once",
                }),
                0,
            )
            .await;
    }
    delivery::prepare_servable(state, &stored);
    let body = status_body(state, caller, &stored).await?;
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(location) = format!("/v1/requests/{}", stored.id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn request_status(
    State(state): State<Arc<RelayState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        state.admit(&caller)?;
        let stored = own_request(&state, &caller, &id).await?;
        delivery::prepare_servable(&state, &stored);
        let body = status_body(&state, &caller, &stored).await?;
        Ok::<_, RelayError>((stored, body))
    }
    .await;
    match result {
        Ok((stored, body)) => {
            state
                .audit_ok(
                    &caller,
                    EventType::Access,
                    Object {
                        request_id: Some(stored.id.clone()),
                        ..Object::default()
                    },
                    serde_json::json!({ "call": "GET /v1/requests/{id}", "status": body.status }),
                    0,
                )
                .await;
            Json(body).into_response()
        }
        Err(error) => {
            let object = Object {
                request_id: valid_id(&id).then(|| id.clone()),
                ..Object::default()
            };
            state
                .audit_refusal(&caller, "GET /v1/requests/{id}", &error, object)
                .await;
            error.into_response()
        }
    }
}

pub(super) fn valid_id(id: &str) -> bool {
    id.len() == 24
        && id.starts_with("req_")
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The request `id`, if it exists and belongs to the calling agency; other
/// agencies' requests look exactly like missing ones.
pub(super) async fn own_request(
    state: &RelayState,
    caller: &Caller,
    id: &str,
) -> Result<StoredRequest, RelayError> {
    let not_found = || RelayError::new(StatusCode::NOT_FOUND, "not_found", "no such request");
    if !valid_id(id) {
        return Err(not_found());
    }
    let store = state.requests.store.clone();
    let id = id.to_string();
    let stored = tokio::task::spawn_blocking(move || store.get(&id))
        .await
        .map_err(internal)?
        .map_err(internal)?
        .ok_or_else(not_found)?;
    if stored.agency != caller.identity.name {
        return Err(not_found());
    }
    Ok(stored)
}

#[derive(Serialize)]
struct StatusBody {
    id: String,
    status: &'static str,
    case_id: String,
    created_at: String,
    approval_expires_at: String,
    cameras: Vec<CameraStatus>,
}

#[derive(Serialize)]
struct CameraStatus {
    camera: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<WireWindowOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    package: Option<PackageLink>,
}

#[derive(Serialize)]
struct WireWindowOut {
    from: String,
    to: String,
}

#[derive(Serialize)]
struct PackageLink {
    /// `ready`, or `preparing` (poll again; `Retry-After` on the download).
    state: &'static str,
    url: String,
    expires_at: String,
}

/// The agency's view of a request. Download links carry a fresh token bound
/// to this certificate.
async fn status_body(
    state: &RelayState,
    caller: &Caller,
    stored: &StoredRequest,
) -> Result<StatusBody, RelayError> {
    let mut cameras = Vec::new();
    for camera in &stored.cameras {
        let Some(status) = agency_camera_status(camera) else {
            continue; // never mentioned to the agency
        };
        let servable = camera.is_servable() && state.still_shared(&camera.camera);
        let package = if servable {
            let expires_us = stored.servable_since_us()
                + state.policy.current().download_expiry.as_micros() as i64;
            let token = state
                .token_for(
                    &stored.id,
                    &camera.camera,
                    &caller.identity.cert_fingerprint,
                    expires_us,
                )
                .await?;
            token.map(|token| PackageLink {
                state: if delivery::is_ready(state, &stored.id, &camera.camera) {
                    "ready"
                } else {
                    "preparing"
                },
                url: format!(
                    "/v1/requests/{}/packages/{}?token={token}",
                    stored.id, camera.camera
                ),
                expires_at: format_utc_us(expires_us),
            })
        } else {
            None
        };
        cameras.push(CameraStatus {
            camera: camera.camera.clone(),
            status,
            window: servable
                .then_some(camera.window)
                .flatten()
                .map(|w| WireWindowOut {
                    from: format_utc_us(w.from_us),
                    to: format_utc_us(w.to_us),
                }),
            audio: servable.then_some(camera.audio),
            reason: agency_reason(camera),
            package,
        });
    }
    Ok(StatusBody {
        id: stored.id.clone(),
        status: stored.state.as_str(),
        case_id: stored.case_id.clone(),
        created_at: format_utc_us(stored.received_us),
        approval_expires_at: format_utc_us(stored.expires_us),
        cameras,
    })
}

/// A camera's status as the agency may see it; `None` for cameras it may
/// not even know of.
fn agency_camera_status(camera: &StoredCamera) -> Option<&'static str> {
    if !camera.visible_to_agency {
        return None;
    }
    Some(match camera.outcome.as_str() {
        outcome::SERVE | outcome::APPROVED => "approved",
        outcome::AWAIT_OWNER | outcome::SHOW_TO_OWNER_ONLY => "pending",
        _ => "denied",
    })
}

/// Why a camera is denied, in the agency's terms: reasons that would reveal
/// the owner's settings or habits all read `not_available`.
fn agency_reason(camera: &StoredCamera) -> Option<String> {
    let reason = match camera.outcome.as_str() {
        outcome::DENIED => "denied_by_owner",
        outcome::EXPIRED => "expired",
        outcome::REVOKED => "revoked",
        outcome::REFUSE => camera
            .refusal
            .as_deref()
            .filter(|code| {
                matches!(
                    *code,
                    "outside_radius"
                        | "outside_limits"
                        | "case_limit_reached"
                        | "agency_daily_limit_reached"
                )
            })
            .unwrap_or("not_available"),
        _ => return None,
    };
    Some(reason.to_string())
}

// ---------------------------------------------------------------- download

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    pub(super) token: Option<String>,
}

async fn download(
    State(state): State<Arc<RelayState>>,
    Extension(caller): Extension<Caller>,
    Path((id, camera)): Path<(String, String)>,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let token = query.ok().and_then(|Query(q)| q.token).unwrap_or_default();
    let object = || Object {
        request_id: valid_id(&id).then(|| id.clone()),
        camera: crate::config::is_valid_camera_name(&camera).then(|| camera.clone()),
        ..Object::default()
    };
    let result = async {
        state.admit(&caller)?;
        let invalid = || {
            RelayError::new(
                StatusCode::FORBIDDEN,
                "invalid_token",
                "the token is not valid for this request, camera and certificate",
            )
        };
        if !valid_id(&id)
            || !crate::config::is_valid_camera_name(&camera)
            || token.is_empty()
            || token.len() > 128
        {
            return Err(invalid());
        }
        let store = state.requests.store.clone();
        let (i, c, t, f) = (
            id.clone(),
            camera.clone(),
            token.clone(),
            caller.identity.cert_fingerprint.clone(),
        );
        let grant =
            tokio::task::spawn_blocking(move || store.check_token(&t, &i, &c, &f, now_utc_us()))
                .await
                .map_err(internal)?
                .map_err(|e| match e {
                    TokenError::Expired => RelayError::new(
                        StatusCode::GONE,
                        "token_expired",
                        "the download token has expired",
                    ),
                    _ => invalid(),
                })?;
        // The owner's switches as they stand now: privacy on, or the camera
        // no longer shared, stops every download at once.
        if !state.still_shared(&grant.camera) {
            return Err(RelayError::new(
                StatusCode::FORBIDDEN,
                "not_available",
                "the owner no longer shares this footage",
            ));
        }
        let package = delivery::open_package(&state, &grant).await?;
        Ok::<_, RelayError>((grant, package))
    }
    .await;
    match result {
        Ok((grant, package)) => {
            let (response, bytes) = delivery::serve(package, &headers);
            if response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
                let error = RelayError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    "the requested byte range is outside the package",
                );
                state
                    .audit_refusal(
                        &caller,
                        "GET /v1/requests/{id}/packages/{camera}",
                        &error,
                        object(),
                    )
                    .await;
                return response;
            }
            // No footage leaves without its audit entry: if the log cannot
            // be written, nothing is sent.
            let logged = state
                .audit_ok(
                    &caller,
                    EventType::Download,
                    Object {
                        request_id: Some(grant.request_id.clone()),
                        camera: Some(grant.camera.clone()),
                        window: Some(grant.window),
                    },
                    serde_json::json!({
                        "range": headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
                        "status": response.status().as_u16(),
                        "peer": caller.peer.to_string(),
                    }),
                    bytes,
                )
                .await;
            if !logged {
                return internal("the audit log cannot be written").into_response();
            }
            if method == Method::HEAD {
                return response;
            }
            // For the owner's history: who took what, and how much of it.
            let start = crate::requests::DownloadStart {
                request_id: grant.request_id.clone(),
                camera: grant.camera.clone(),
                agency: caller.identity.name.clone(),
                cert_fingerprint: caller.identity.cert_fingerprint.clone(),
                range: headers
                    .get(header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.chars().take(200).collect()),
                status: response.status().as_u16(),
                bytes_planned: bytes,
                started_us: now_utc_us(),
            };
            let store = state.requests.store.clone();
            let recorded = {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.start_download(&start)).await
            };
            match recorded {
                Ok(Ok(download)) => delivery::count_sent(response, store, download),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot record a download in the request history");
                    response
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record a download in the request history");
                    response
                }
            }
        }
        Err(error) => {
            state
                .audit_refusal(
                    &caller,
                    "GET /v1/requests/{id}/packages/{camera}",
                    &error,
                    object(),
                )
                .await;
            error.into_response()
        }
    }
}

// ---------------------------------------------------------------- device

#[derive(Serialize)]
struct DeviceBody {
    device: DeviceInfo,
    cameras: Vec<RegisteredCamera>,
}

#[derive(Serialize)]
struct DeviceInfo {
    cert_fingerprint: String,
    software: String,
    time: String,
}

#[derive(Serialize)]
struct RegisteredCamera {
    camera: String,
    location: Option<policy::GeoPoint>,
    level: policy::SharingLevel,
}

async fn device(
    State(state): State<Arc<RelayState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if let Err(error) = state.admit(&caller) {
        state
            .audit_refusal(&caller, "GET /v1/device", &error, Object::default())
            .await;
        return error.into_response();
    }
    state
        .audit_ok(
            &caller,
            EventType::Access,
            Object::default(),
            serde_json::json!({ "call": "GET /v1/device" }),
            0,
        )
        .await;
    let policy = state.policy.current();
    let cameras = if policy.privacy {
        Vec::new()
    } else {
        policy
            .cameras
            .iter()
            .filter(|c| c.level != policy::SharingLevel::Off)
            .map(|c| RegisteredCamera {
                camera: c.name.clone(),
                location: c.location.map(policy::GeoPoint::coarse),
                level: c.level,
            })
            .collect()
    };
    Json(DeviceBody {
        device: DeviceInfo {
            cert_fingerprint: format!("sha256:{}", state.evidence.device.fingerprint()),
            software: format!("porchlight {}", env!("CARGO_PKG_VERSION")),
            time: format_utc_us(now_utc_us()),
        },
        cameras,
    })
    .into_response()
}
