//! Live shares over the relay API (docs/relay-protocol.md, "Live share"):
//! `POST /v1/requests/{id}/live` asks the live-share gate for every camera
//! of the request and answers with a URL per allowed camera;
//! `GET /v1/requests/{id}/live/{camera}?token=` streams that camera as one
//! fragmented MP4 over chunked HTTP until the share ends.
//!
//! No minute of video leaves without its audit entry: the entry for each
//! started minute is written before that minute's first byte. After it, the
//! minute goes into the owner's request history (`requests.db`
//! `live_views`, best effort: logged if it cannot be written), and so does
//! the end of each stream.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::api::{internal, own_request, valid_id, Object, RelayError, TokenQuery};
use super::listener::Caller;
use super::RelayState;
use crate::audit::{AuditEvent, Component, EventType};
use crate::live::share::{OpenError, StreamTicket};
use crate::live::{LiveFeed, LiveFragment};
use crate::policy::{decide_live, LiveAsk, LiveRefusal};
use crate::requests::{LiveMinute, RequestStoreError, LIVE_VIEW_LEFT};
use crate::time::{format_utc_us, now_utc_us};

/// Chunks queued for a slow relay before the stream waits for it.
const STREAM_QUEUE: usize = 64;
const MINUTE: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct LiveBody {
    request: String,
    live: Vec<LiveLink>,
    refused: Vec<LiveRefused>,
}

#[derive(Serialize)]
struct LiveLink {
    camera: String,
    share: String,
    url: String,
    content_type: &'static str,
    started_at: String,
    expires_at: String,
}

#[derive(Serialize)]
struct LiveRefused {
    camera: String,
    code: &'static str,
    message: String,
}

fn refusal_error(refusal: LiveRefusal) -> RelayError {
    RelayError::new(
        StatusCode::FORBIDDEN,
        refusal.agency_code(),
        refusal.agency_message(),
    )
}

/// `POST /v1/requests/{id}/live`.
pub(super) async fn start(
    State(state): State<Arc<RelayState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match start_inner(&state, &caller, &id).await {
        Ok(response) => response,
        Err(error) => {
            let object = Object {
                request_id: valid_id(&id).then(|| id.clone()),
                ..Object::default()
            };
            state
                .audit_refusal(&caller, "POST /v1/requests/{id}/live", &error, object)
                .await;
            error.into_response()
        }
    }
}

async fn start_inner(
    state: &RelayState,
    caller: &Caller,
    id: &str,
) -> Result<Response, RelayError> {
    state.admit(caller)?;
    let stored = own_request(state, caller, id).await?;
    if stored.cert_fingerprint != caller.identity.cert_fingerprint {
        return Err(RelayError::new(
            StatusCode::FORBIDDEN,
            "wrong_certificate",
            "live shares are bound to the client certificate that made the request",
        ));
    }
    let emergency = stored.legal_basis["kind"] == "emergency";
    let policy = state.policy.current();
    let now_us = now_utc_us();
    let mut body = LiveBody {
        request: stored.id.clone(),
        live: Vec::new(),
        refused: Vec::new(),
    };
    let mut first_error = None;
    for camera in stored.cameras.iter().filter(|c| c.visible_to_agency) {
        let ask = LiveAsk {
            camera: &camera.camera,
            emergency,
            in_request: camera.is_servable(),
        };
        let decided = decide_live(&policy, ask, now_us);
        let granted = match decided {
            Ok(()) => state
                .live_shares
                .grant(
                    &stored.id,
                    &camera.camera,
                    &caller.identity.name,
                    &caller.identity.cert_fingerprint,
                    policy.live_share_max,
                )
                .map_err(|e| RelayError::new(StatusCode::GONE, "live_share_ended", e.to_string())),
            Err(refusal) => Err(refusal_error(refusal)),
        };
        let object = Object {
            request_id: Some(stored.id.clone()),
            camera: Some(camera.camera.clone()),
            ..Object::default()
        };
        match granted {
            Ok(granted) => {
                let info = granted.info;
                state
                    .audit_ok(
                        caller,
                        EventType::Decision,
                        object,
                        serde_json::json!({
                            "live_share": info.id,
                            "started": info.started,
                            "expires": info.expires,
                            "why": "emergency request on a camera the owner shares live in emergencies",
                        }),
                        0,
                    )
                    .await;
                body.live.push(LiveLink {
                    url: format!(
                        "/v1/requests/{}/live/{}?token={}",
                        stored.id, camera.camera, granted.token
                    ),
                    camera: camera.camera.clone(),
                    share: info.id,
                    content_type: "video/mp4",
                    started_at: info.started,
                    expires_at: info.expires,
                });
            }
            Err(error) => {
                // The owner's log keeps the gate's own reason.
                let owner_reason = decided.err().map(|r| r.code());
                tracing::info!(request = %stored.id, camera = %camera.camera, reason = ?owner_reason, "live share refused");
                state
                    .audit_refusal(caller, "POST /v1/requests/{id}/live", &error, object)
                    .await;
                body.refused.push(LiveRefused {
                    camera: camera.camera.clone(),
                    code: error.code,
                    message: error.message.clone(),
                });
                first_error.get_or_insert(error);
            }
        }
    }
    if body.live.is_empty() {
        return Err(first_error.unwrap_or_else(|| refusal_error(LiveRefusal::NotInRequest)));
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /v1/requests/{id}/live/{camera}?token=`.
pub(super) async fn stream(
    State(state): State<Arc<RelayState>>,
    Extension(caller): Extension<Caller>,
    Path((id, camera)): Path<(String, String)>,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let token = query.ok().and_then(|Query(q)| q.token).unwrap_or_default();
    match open(&state, &caller, &id, &camera, &token).await {
        Ok(response) => response,
        Err(error) => {
            let object = Object {
                request_id: valid_id(&id).then(|| id.clone()),
                camera: crate::config::is_valid_camera_name(&camera).then(|| camera.clone()),
                ..Object::default()
            };
            state
                .audit_refusal(
                    &caller,
                    "GET /v1/requests/{id}/live/{camera}",
                    &error,
                    object,
                )
                .await;
            error.into_response()
        }
    }
}

async fn open(
    state: &Arc<RelayState>,
    caller: &Caller,
    id: &str,
    camera: &str,
    token: &str,
) -> Result<Response, RelayError> {
    state.admit(caller)?;
    let invalid = || {
        RelayError::new(
            StatusCode::FORBIDDEN,
            "invalid_token",
            "the token is not valid for this request, camera and certificate",
        )
    };
    if !valid_id(id)
        || !crate::config::is_valid_camera_name(camera)
        || token.is_empty()
        || token.len() > 128
    {
        return Err(invalid());
    }
    let ticket = state
        .live_shares
        .open(token, id, camera, &caller.identity.cert_fingerprint)
        .map_err(|e| match e {
            OpenError::Invalid => invalid(),
            OpenError::Expired => RelayError::new(
                StatusCode::GONE,
                "token_expired",
                "the live share has expired",
            ),
            OpenError::Ended(reason) => RelayError::new(
                StatusCode::GONE,
                "live_share_ended",
                format!("the live share was ended ({reason})"),
            ),
        })?;
    // The switches as they stand now (the enforcer ends the share too).
    let ask = LiveAsk {
        camera,
        emergency: true,
        in_request: true,
    };
    if let Err(refusal) = decide_live(&state.policy.current(), ask, now_utc_us()) {
        return Err(refusal_error(refusal));
    }
    let feed = state
        .live
        .feed(camera)
        .cloned()
        .ok_or_else(|| refusal_error(LiveRefusal::UnknownCamera))?;
    // The first minute is in the log before the first byte goes out.
    if !log_minute(state, caller, &ticket, 1).await {
        return Err(internal("the audit log cannot be written"));
    }
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(STREAM_QUEUE);
    let expires = ticket.info.expires.clone();
    tokio::spawn(pump(state.clone(), caller.clone(), ticket, feed, sender));
    let body = Body::from_stream(futures::stream::unfold(receiver, |mut receiver| async {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    }));
    Ok((
        [
            (header::CONTENT_TYPE, "video/mp4".to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (
                header::HeaderName::from_static("x-live-share-expires"),
                expires,
            ),
        ],
        body,
    )
        .into_response())
}

/// Writes the audit entry for the `minute`-th started minute of a stream.
async fn log_minute(
    state: &RelayState,
    caller: &Caller,
    ticket: &StreamTicket,
    minute: u64,
) -> bool {
    let total = state.live_shares.count_minute(&ticket.info.id);
    let event = AuditEvent::new(
        Component::Relay,
        EventType::LiveViewMinute,
        RelayState::identity(caller),
    )
    .outcome(crate::audit::Outcome::ok())
    .request(ticket.info.request_id.clone())
    .camera(ticket.info.camera.clone())
    .details(serde_json::json!({
        "live_share": ticket.info.id,
        "minute_of_stream": minute,
        "minutes_of_share": total,
        "peer": caller.peer.to_string(),
        "at": format_utc_us(now_utc_us()),
    }));
    if let Err(e) = state.audit.append(event).await {
        tracing::error!(error = %e, "cannot write to the audit log: live stream stops");
        return false;
    }
    let store = state.requests.store.clone();
    let info = ticket.info.clone();
    let at_us = now_utc_us();
    let recorded = tokio::task::spawn_blocking(move || {
        store.record_live_minute(&LiveMinute {
            share: &info.id,
            request_id: &info.request_id,
            camera: &info.camera,
            agency: &info.agency,
            cert_fingerprint: &info.cert_fingerprint,
            minutes: total,
            at_us,
        })
    })
    .await;
    if let Some(e) = history_error(recorded) {
        tracing::warn!(error = %e, share = %ticket.info.id, "cannot record a live view minute in the request history");
    }
    true
}

/// Records in the request history that a stream of the share stopped: the
/// share's own end reason if it ended, else the agency left.
async fn log_stream_end(state: &RelayState, ticket: &StreamTicket) {
    let reason = ticket
        .end
        .borrow()
        .as_ref()
        .map_or_else(|| LIVE_VIEW_LEFT.to_string(), |r| r.code());
    let store = state.requests.store.clone();
    let share = ticket.info.id.clone();
    let recorded =
        tokio::task::spawn_blocking(move || store.end_live_view(&share, &reason, now_utc_us()))
            .await;
    if let Some(e) = history_error(recorded) {
        tracing::warn!(error = %e, share = %ticket.info.id, "cannot record the end of a live view in the request history");
    }
}

fn history_error(
    recorded: Result<Result<(), RequestStoreError>, tokio::task::JoinError>,
) -> Option<String> {
    match recorded {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    }
}

/// What ended a stream's wait.
enum Step {
    Frame(Arc<LiveFragment>),
    Minute,
    Stop,
}

/// Feeds one stream: the init segment and the frames from the latest
/// keyframe, then live frames, until the share ends or expires, the relay
/// goes away, or the camera starts a new session (the relay reconnects).
async fn pump(
    state: Arc<RelayState>,
    caller: Caller,
    mut ticket: StreamTicket,
    feed: Arc<LiveFeed>,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let _viewer = feed.viewer();
    let remaining_us = (ticket.info.expires_us - now_utc_us()).max(0) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_micros(remaining_us);
    let mut minutes = tokio::time::interval_at(tokio::time::Instant::now() + MINUTE, MINUTE);
    let mut minute = 1;
    let subscription = feed.subscribe();
    let mut receiver = subscription.receiver;
    let mut generation = None;
    let mut queue: Vec<Bytes> = Vec::new();
    if let Some(init) = &subscription.init {
        if subscription.backlog.first().is_some_and(|f| f.is_key) {
            generation = Some(init.generation);
            queue.push(init.bytes.clone());
            queue.extend(subscription.backlog.iter().map(|f| f.bytes.clone()));
        }
    }
    let id = ticket.info.id.clone();
    loop {
        for chunk in queue.drain(..) {
            let sent = tokio::select! {
                sent = sender.send(Ok(chunk)) => sent.is_ok(),
                _ = ticket.end.changed() => false,
                _ = tokio::time::sleep_until(deadline) => false,
            };
            if !sent {
                break;
            }
        }
        if ticket.end.borrow().is_some() || sender.is_closed() {
            break;
        }
        let step = tokio::select! {
            received = receiver.recv() => match received {
                Ok(fragment) => Step::Frame(fragment),
                // Fell behind the ring: an MP4 stream cannot skip, so it ends
                // and the relay reconnects at the next keyframe.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => Step::Stop,
            },
            _ = minutes.tick() => Step::Minute,
            _ = ticket.end.changed() => Step::Stop,
            _ = sender.closed() => Step::Stop,
            _ = tokio::time::sleep_until(deadline) => {
                state.live_shares.end(&id, crate::live::EndReason::Expired, Component::Relay);
                Step::Stop
            }
        };
        match step {
            Step::Stop => break,
            Step::Minute => {
                minute += 1;
                if !log_minute(&state, &caller, &ticket, minute).await {
                    break;
                }
            }
            Step::Frame(fragment) => match generation {
                Some(g) if g == fragment.generation => queue.push(fragment.bytes.clone()),
                // A new camera session: a new init cannot follow in one MP4.
                Some(_) => break,
                None if fragment.is_key => {
                    let Some(init) = feed.init().filter(|i| i.generation == fragment.generation)
                    else {
                        continue;
                    };
                    generation = Some(init.generation);
                    queue.push(init.bytes.clone());
                    queue.push(fragment.bytes.clone());
                }
                None => {}
            },
        }
    }
    log_stream_end(&state, &ticket).await;
    tracing::info!(share = %id, minutes = minute, "live share stream ended");
}
