//! The owner API for footage: coverage, per-hour days, and clip downloads
//! with HTTP Range, ETag and If-Range.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{error_response, AppState};

/// An error answer, small enough to pass around; becomes JSON at the edge.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.0, self.1)
    }
}
use crate::config::StreamKind;
use crate::export::{self, ClipFile, ClipRequest, ExportError};
use crate::time::{now_utc_us, parse_utc_us};

#[derive(Deserialize)]
pub struct RangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub audio: Option<bool>,
}

/// `from`/`to` from the query; for listings they default to the last 30 days.
pub(super) fn time_range(query: &RangeQuery, required: bool) -> Result<(i64, i64), ApiError> {
    let parse = |name: &str, value: &Option<String>, default: i64| match value {
        Some(text) => parse_utc_us(text)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("`{name}`: {e}"))),
        None if required => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("`{name}` is required (RFC 3339, e.g. 2026-11-23T21:04:05Z)"),
        )),
        None => Ok(default),
    };
    let now = now_utc_us();
    let to = parse("to", &query.to, now)?;
    let from = parse("from", &query.from, now - 30 * 86_400_000_000)?;
    if from >= to {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "`from` must be before `to`".to_string(),
        ));
    }
    Ok((from, to))
}

/// A query string that does not parse (e.g. `audio=maybe`) is a 400 whose
/// JSON error names the parameter, like every other bad request.
pub(super) fn query_or_error<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|rejection| ApiError(StatusCode::BAD_REQUEST, rejection.body_text()))
}

pub(super) fn export_error(e: ExportError) -> ApiError {
    let status = match &e {
        ExportError::UnknownCamera(_) | ExportError::NoFootage { .. } => StatusCode::NOT_FOUND,
        ExportError::EmptyRange { .. } | ExportError::TooLong { .. } => StatusCode::BAD_REQUEST,
        ExportError::Index(_) | ExportError::Segment { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError(status, e.to_string())
}

/// Runs an index query on the blocking pool.
pub(super) async fn with_index<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&rusqlite::Connection, &std::path::Path) -> Result<T, ExportError>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let data_dir = state.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        let conn = crate::store::open_reader(&data_dir)?;
        work(&conn, &data_dir)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(export_error)
}

pub async fn recordings(
    State(state): State<Arc<AppState>>,
    Path(camera): Path<String>,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = query_or_error(query)?;
    let (from, to) = time_range(&query, false)?;
    let coverage = with_index(&state, move |conn, _| {
        export::coverage(conn, &camera, from, to)
    })
    .await?;
    Ok(Json(coverage).into_response())
}

pub async fn days(
    State(state): State<Arc<AppState>>,
    Path(camera): Path<String>,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = query_or_error(query)?;
    let (from, to) = time_range(&query, false)?;
    let days = with_index(&state, move |conn, _| export::days(conn, &camera, from, to)).await?;
    Ok(Json(days).into_response())
}

pub async fn clip(
    State(state): State<Arc<AppState>>,
    Path(camera): Path<String>,
    query: Result<Query<RangeQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = query_or_error(query)?;
    let (from_us, to_us) = time_range(&query, true)?;
    let request = ClipRequest {
        camera: camera.clone(),
        stream: StreamKind::Main,
        from_us,
        to_us,
        audio: query.audio.unwrap_or(true),
        max_duration_us: state.max_clip_us,
    };
    let clip = with_index(&state, move |conn, dir| {
        export::plan_clip(conn, dir, &request)
    })
    .await?;
    Ok(serve_clip(
        Arc::new(clip),
        &headers,
        &format!("{camera}.mp4"),
    ))
}

/// Serves a clip, whole or one byte range, streaming it from the files.
pub(crate) fn serve_clip(clip: Arc<ClipFile>, headers: &HeaderMap, file_name: &str) -> Response {
    serve_file(clip, headers, file_name, "video/mp4", "inline")
}

/// Serves a virtual file whole or one byte range (Range, ETag, If-Range).
pub(crate) fn serve_file(
    clip: Arc<ClipFile>,
    headers: &HeaderMap,
    file_name: &str,
    content_type: &str,
    disposition: &str,
) -> Response {
    let len = clip.len();
    // If-Range: honour Range only when the client's copy is this one.
    let range_allowed = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v == clip.etag()));
    let range = match headers.get(header::RANGE).filter(|_| range_allowed) {
        None => None,
        Some(value) => match parse_range(value.to_str().unwrap_or(""), len) {
            Ok(range) => range,
            Err(()) => {
                return (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                    Json(super::ErrorBody {
                        error: format!("range not satisfiable for a {len}-byte clip"),
                    }),
                )
                    .into_response()
            }
        },
    };
    let (status, start, end) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end),
        None => (StatusCode::OK, 0, len),
    };
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, end - start)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, clip.etag())
        .header(
            header::CONTENT_DISPOSITION,
            format!("{disposition}; filename=\"{file_name}\""),
        );
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    let body = Body::from_stream(stream_bytes(clip, start, end));
    response
        .body(body)
        .unwrap_or_else(|e| error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Reads [start, end) on the blocking pool in 2 MiB pieces.
fn stream_bytes(
    clip: Arc<ClipFile>,
    start: u64,
    end: u64,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut at = start;
        while at < end {
            let mut buf = vec![0u8; (end - at).min(2 << 20) as usize];
            let result = clip.read_at(at, &mut buf).and_then(|n| {
                if n == 0 {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "clip ended early",
                    ))
                } else {
                    buf.truncate(n);
                    Ok(buf)
                }
            });
            let failed = result.is_err();
            let item = result.map(|buf| {
                at += buf.len() as u64;
                bytes::Bytes::from(buf)
            });
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// One `bytes=` range as [start, end). `Ok(None)` means "serve it all"
/// (several ranges, which we answer with the whole clip as RFC 9110 allows).
fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = spec.split_once('-').ok_or(())?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let suffix: u64 = last.parse().map_err(|_| ())?;
        if suffix == 0 {
            return Err(());
        }
        (len.saturating_sub(suffix), len)
    } else {
        let start: u64 = first.parse().map_err(|_| ())?;
        let end = if last.is_empty() {
            len
        } else {
            last.parse::<u64>()
                .map_err(|_| ())?
                .saturating_add(1)
                .min(len)
        };
        (start, end)
    };
    if range.0 >= range.1 || range.0 >= len {
        return Err(());
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn byte_ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Ok(Some((0, 100))));
        assert_eq!(parse_range("bytes=900-", 1000), Ok(Some((900, 1000))));
        assert_eq!(parse_range("bytes=-100", 1000), Ok(Some((900, 1000))));
        assert_eq!(parse_range("bytes=990-2000", 1000), Ok(Some((990, 1000))));
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Ok(None));
        assert_eq!(parse_range("bytes=1000-", 1000), Err(()));
        assert_eq!(parse_range("bytes=abc", 1000), Err(()));
        assert_eq!(parse_range("bytes=-0", 1000), Err(()));
        assert_eq!(parse_range("items=0-1", 1000), Ok(None));
    }
}

#[derive(Deserialize)]
pub struct SnapshotQuery {
    at: Option<String>,
}

/// Latest (or nearest to `at`) keyframe as JPEG. Decoded once per keyframe:
/// a dashboard polling every second gets the cached image until the next
/// keyframe is stored.
pub async fn snapshot(
    State(state): State<Arc<AppState>>,
    Path(camera): Path<String>,
    query: Result<Query<SnapshotQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = query_or_error(query)?;
    let at = match &query.at {
        Some(text) => Some(
            parse_utc_us(text)
                .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("`at`: {e}")))?,
        ),
        None => None,
    };
    let cache = state.snapshots.clone();
    let data_dir = state.data_dir.clone();
    let (jpeg, utc_us) = tokio::task::spawn_blocking(move || {
        export::snapshot::cached_jpeg(&cache, &data_dir, &camera, at)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| match e {
        export::snapshot::SnapshotFailure::Export(e) => export_error(e),
        export::snapshot::SnapshotFailure::Decode(
            e @ export::snapshot::SnapshotError::NotBuilt,
        ) => ApiError(StatusCode::NOT_IMPLEMENTED, e.to_string()),
        export::snapshot::SnapshotFailure::Decode(e) => {
            ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
            (
                header::HeaderName::from_static("x-porchlight-frame-time"),
                crate::time::format_utc_us(utc_us),
            ),
        ],
        jpeg.as_ref().clone(),
    )
        .into_response())
}
