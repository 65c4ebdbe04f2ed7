//! Live view over HTTP: a WebSocket of fMP4 for browsers (MSE), HLS with
//! fMP4 segments for players and relays, a JSON description, and a small
//! `/live` page the web UI can reuse.
//!
//! WebSocket protocol (`GET /api/cameras/{camera}/live.ws`): a text message
//! `{"type":"init","codec":..,"mime":..,"browser_playable":..}`, then the
//! init segment as binary, then one binary message per frame (`moof` +
//! `mdat`), starting at the latest keyframe. A new camera session repeats
//! the text + init pair.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::{browser_playable, LiveFeed, LiveHub, LiveInit};
use crate::http::error_response;

/// A viewer whose socket takes longer than this to accept one frame is
/// dropped (it has long since been skipping frames).
const STALLED_SEND: Duration = Duration::from_secs(20);

pub fn routes(hub: LiveHub) -> Router {
    Router::new()
        .route("/live", get(page))
        .route("/api/cameras/{camera}/live", get(describe))
        .route("/api/cameras/{camera}/live.ws", get(websocket))
        .route("/api/cameras/{camera}/live/{file}", get(hls_file))
        .with_state(hub)
}

fn feed_or_404(hub: &LiveHub, camera: &str) -> Result<Arc<LiveFeed>, Box<Response>> {
    hub.feed(camera).cloned().ok_or_else(|| {
        Box::new(error_response(
            StatusCode::NOT_FOUND,
            format!("no camera named `{camera}`"),
        ))
    })
}

fn mime(codec: &str) -> String {
    format!("video/mp4; codecs=\"{codec}\"")
}

#[derive(Serialize)]
struct LiveBody {
    camera: String,
    streaming: bool,
    codec: Option<String>,
    mime: Option<String>,
    /// False for H.265: most browsers cannot play it; use the snapshot.
    browser_playable: Option<bool>,
    width: Option<u32>,
    height: Option<u32>,
    viewers: usize,
    websocket: String,
    hls: String,
    snapshot: String,
}

async fn describe(State(hub): State<LiveHub>, Path(camera): Path<String>) -> Response {
    let feed = match feed_or_404(&hub, &camera) {
        Ok(feed) => feed,
        Err(response) => return *response,
    };
    let init = feed.init();
    Json(LiveBody {
        streaming: feed.streaming(),
        codec: init.as_ref().map(|i| i.codec.clone()),
        mime: init.as_ref().map(|i| mime(&i.codec)),
        browser_playable: init.as_ref().map(|i| browser_playable(&i.codec)),
        width: init.as_ref().map(|i| i.width),
        height: init.as_ref().map(|i| i.height),
        viewers: feed.viewers(),
        websocket: format!("/api/cameras/{camera}/live.ws"),
        hls: format!("/api/cameras/{camera}/live/index.m3u8"),
        snapshot: format!("/api/cameras/{camera}/snapshot.jpg"),
        camera,
    })
    .into_response()
}

/// A WebSocket is readable across origins (unlike a GET), so a page from
/// elsewhere must not open one: `Origin`, when sent, must be this `Host`.
fn same_origin(headers: &HeaderMap) -> Result<(), Box<Response>> {
    crate::http::guard::same_origin(headers).map_err(|origin| {
        Box::new(error_response(
            StatusCode::FORBIDDEN,
            format!("pages from `{origin}` may not open live view here"),
        ))
    })
}

async fn websocket(
    State(hub): State<LiveHub>,
    Path(camera): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let feed = match feed_or_404(&hub, &camera) {
        Ok(feed) => feed,
        Err(response) => return *response,
    };
    if let Err(response) = same_origin(&headers) {
        return *response;
    }
    upgrade
        .on_upgrade(move |socket| async move {
            if let Err(e) = serve_viewer(&feed, socket).await {
                tracing::debug!(camera = %feed.camera, error = %e, "live viewer left");
            }
        })
        .into_response()
}

#[derive(Serialize)]
struct InitMessage<'a> {
    r#type: &'static str,
    codec: &'a str,
    mime: String,
    browser_playable: bool,
    width: u32,
    height: u32,
}

async fn send(socket: &mut WebSocket, message: Message) -> Result<(), String> {
    match tokio::time::timeout(STALLED_SEND, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("client accepted nothing for {STALLED_SEND:?}")),
    }
}

async fn send_init(socket: &mut WebSocket, init: &LiveInit) -> Result<(), String> {
    let text = serde_json::to_string(&InitMessage {
        r#type: "init",
        codec: &init.codec,
        mime: mime(&init.codec),
        browser_playable: browser_playable(&init.codec),
        width: init.width,
        height: init.height,
    })
    .map_err(|e| e.to_string())?;
    send(socket, Message::Text(text.into())).await?;
    send(socket, Message::Binary(init.bytes.clone())).await
}

/// Streams one viewer: backlog from the latest keyframe, then live frames.
/// Falling behind the ring skips to the next keyframe.
async fn serve_viewer(feed: &Arc<LiveFeed>, mut socket: WebSocket) -> Result<(), String> {
    let _viewer = feed.viewer();
    let subscription = feed.subscribe();
    let mut receiver = subscription.receiver;
    // The generation whose init this viewer has; frames of any other wait
    // for their init and a keyframe.
    let mut sent_generation = 0;
    let mut need_key = true;
    if let Some(init) = &subscription.init {
        if subscription.backlog.first().is_some_and(|f| f.is_key) {
            send_init(&mut socket, init).await?;
            sent_generation = init.generation;
            for fragment in &subscription.backlog {
                send(&mut socket, Message::Binary(fragment.bytes.clone())).await?;
            }
            need_key = false;
        }
    }
    loop {
        let fragment = tokio::select! {
            received = receiver.recv() => match received {
                Ok(fragment) => fragment,
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(camera = %feed.camera, skipped, "slow live viewer skips to the next keyframe");
                    need_key = true;
                    continue;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            incoming = socket.recv() => match incoming {
                // Viewers send nothing we need; a close or error ends it.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => continue,
            },
        };
        if fragment.generation != sent_generation {
            if !fragment.is_key {
                continue;
            }
            let Some(init) = feed.init().filter(|i| i.generation == fragment.generation) else {
                continue;
            };
            send_init(&mut socket, &init).await?;
            sent_generation = init.generation;
            need_key = false;
        } else if need_key {
            if !fragment.is_key {
                continue;
            }
            need_key = false;
        }
        send(&mut socket, Message::Binary(fragment.bytes.clone())).await?;
    }
}

/// HLS files: `index.m3u8`, `init-{generation}.mp4`, `{generation}-{sequence}.m4s`.
async fn hls_file(
    State(hub): State<LiveHub>,
    Path((camera, file)): Path<(String, String)>,
) -> Response {
    let feed = match feed_or_404(&hub, &camera) {
        Ok(feed) => feed,
        Err(response) => return *response,
    };
    let no_cache = (header::CACHE_CONTROL, "no-cache");
    if file == "index.m3u8" {
        let (init, segments) = feed.hls();
        let Some(init) = init.filter(|_| !segments.is_empty()) else {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("camera `{camera}` has no live video yet (not streaming, or waiting for a keyframe)"),
            );
        };
        return (
            [
                (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
                no_cache,
            ],
            playlist(&init, &segments),
        )
            .into_response();
    }
    if let Some(generation) = file
        .strip_prefix("init-")
        .and_then(|rest| rest.strip_suffix(".mp4"))
        .and_then(|g| g.parse::<u64>().ok())
    {
        return match feed.init().filter(|i| i.generation == generation) {
            Some(init) => {
                ([(header::CONTENT_TYPE, "video/mp4")], init.bytes.clone()).into_response()
            }
            None => error_response(
                StatusCode::NOT_FOUND,
                format!("init segment `{file}` is no longer current; reload the playlist"),
            ),
        };
    }
    if let Some((generation, sequence)) = file
        .strip_suffix(".m4s")
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(g, s)| Some((g.parse::<u64>().ok()?, s.parse::<u64>().ok()?)))
    {
        return match feed.hls_segment(generation, sequence) {
            Some(bytes) => ([(header::CONTENT_TYPE, "video/iso.segment")], bytes).into_response(),
            None => error_response(
                StatusCode::NOT_FOUND,
                format!("segment `{file}` is not held any more (live keeps the last few)"),
            ),
        };
    }
    error_response(
        StatusCode::NOT_FOUND,
        format!("no live file `{file}` (index.m3u8, init-N.mp4, N-M.m4s)"),
    )
}

fn playlist(init: &LiveInit, segments: &[super::feed::HlsEntry]) -> String {
    use std::fmt::Write;
    let target = segments
        .iter()
        .map(|s| s.2.ceil() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let first = segments.first().map_or(0, |s| s.1);
    let mut out = String::new();
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init-{}.mp4\"\n",
        init.generation
    );
    for (generation, sequence, duration) in segments {
        let _ = write!(out, "#EXTINF:{duration:.3},\n{generation}-{sequence}.m4s\n");
    }
    out
}

#[derive(Deserialize)]
struct PageQuery {
    camera: Option<String>,
}

/// A minimal player page (also what the browser tests open).
async fn page(State(hub): State<LiveHub>, Query(query): Query<PageQuery>) -> Response {
    let camera = match query
        .camera
        .or_else(|| hub.feeds().next().map(|f| f.camera.clone()))
    {
        Some(camera) => camera,
        None => return error_response(StatusCode::NOT_FOUND, "no cameras are configured".into()),
    };
    if hub.feed(&camera).is_none() {
        return error_response(StatusCode::NOT_FOUND, format!("no camera named `{camera}`"));
    }
    // The player itself is the web UI's shared module; the page names the
    // camera in an (escaped) attribute.
    Html(include_str!("page.html").replace("__CAMERA__", &crate::ui::escape(&camera)))
        .into_response()
}
