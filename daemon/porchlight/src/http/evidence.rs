//! `GET /api/cameras/{camera}/evidence`: a signed evidence package for a
//! time range, streamed as it is made (tar; see docs/evidence.md).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::recordings::{query_or_error, time_range, with_index, ApiError, RangeQuery};
use super::{error_response, AppState};
use crate::audit::{AuditEvent, Component, EventType, Identity, Outcome};
use crate::config::StreamKind;
use crate::evidence::{package_name, write_package};
use crate::export::ClipRequest;

#[derive(Deserialize)]
pub struct EvidenceQuery {
    from: Option<String>,
    to: Option<String>,
    audio: Option<bool>,
    /// Who is exporting (goes into the seal and the manifest).
    operator: Option<String>,
    /// Case or incident number the package is for.
    case: Option<String>,
}

/// Free text that ends up in the package: bounded and without control characters.
fn label(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.chars().count() > 200 || v.chars().any(char::is_control) => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("`{name}` must be at most 200 characters, without control characters"),
        )),
        other => Ok(other.filter(|v| !v.trim().is_empty())),
    }
}

pub async fn evidence(
    State(state): State<Arc<AppState>>,
    Path(camera): Path<String>,
    query: Result<Query<EvidenceQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = query_or_error(query)?;
    let (from_us, to_us) = time_range(
        &RangeQuery {
            from: query.from,
            to: query.to,
            audio: query.audio,
        },
        true,
    )?;
    let operator = label("operator", query.operator)?;
    let case_id = label("case", query.case)?;
    let clip = ClipRequest {
        camera: camera.clone(),
        stream: StreamKind::Main,
        from_us,
        to_us,
        audio: query.audio.unwrap_or(true),
        max_duration_us: state.max_clip_us,
    };
    let settings = state.evidence.clone();
    let request = settings.request(&clip, operator, case_id, None);
    // Plan first, so a bad range is a clean 4xx before any byte is sent.
    let plan = with_index(&state, move |conn, dir| {
        crate::export::plan_footage(conn, dir, &clip)
    })
    .await?;

    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let audit = state.audit.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let exporter = settings.exporter();
        let result = write_package(plan, &request, &exporter, &mut out);
        // Every export is in the owner's audit log, finished or not.
        let event = AuditEvent::new(
            Component::OwnerApi,
            EventType::Export,
            Identity::owner(request.operator.as_deref()),
        )
        .camera(request.camera.clone())
        .window(request.from_us, request.to_us);
        let event = match &result {
            Ok(summary) => {
                tracing::info!(
                    camera = %request.camera,
                    bytes = summary.bytes,
                    export_id = %summary.manifest.export_id,
                    "evidence package exported"
                );
                event
                    .outcome(Outcome::ok())
                    .bytes_served(summary.bytes)
                    .details(serde_json::json!({
                        "export_id": summary.manifest.export_id,
                        "case_id": request.case_id,
                    }))
            }
            Err(e) => {
                tracing::warn!(camera = %request.camera, error = %e, "evidence export failed");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                event.outcome(Outcome::error(e.to_string()))
            }
        };
        if let Err(e) = audit.append_blocking(event) {
            tracing::error!(error = %e, "cannot write the export to the audit log");
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-tar")
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}.tar\"",
                package_name(&camera, from_us)
            ),
        )
        .body(body)
        .unwrap_or_else(|e| error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())))
}

const CHUNK: usize = 1 << 20;

/// Hands the package to the HTTP body in 1 MiB pieces; a client that goes
/// away makes the next write fail, which stops the export.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(bytes::Bytes::from(chunk)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}
