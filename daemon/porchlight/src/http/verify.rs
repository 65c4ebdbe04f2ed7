//! `POST /api/evidence/verify`: the owner hands a package (or a sealed MP4)
//! back and gets the same offline checks `porchlight verify` runs, as JSON.
//! The body is streamed to a temporary file under `<data_dir>/tmp` (never
//! held in memory) and refused past [`MAX_VERIFY_BYTES`].

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use futures::StreamExt as _;
use serde::Serialize;

use super::recordings::ApiError;
use super::AppState;
use crate::evidence::{verify_path, VerifyReport};

/// Largest package accepted for verification: well above any export the
/// clip limit allows, small enough that a stray upload cannot fill the disk.
pub const MAX_VERIFY_BYTES: u64 = 4 << 30;

#[derive(Serialize)]
pub struct CheckBody {
    subject: String,
    passed: bool,
    detail: String,
}

#[derive(Serialize)]
pub struct VerifyBody {
    /// Every check passed.
    ok: bool,
    bytes: u64,
    /// SHA-256 fingerprint of the device certificate that signed it.
    signed_by: Option<String>,
    /// Whether that is this box's own device key.
    this_device: bool,
    /// Whether `manifest.json.sig` (or an MP4's seal) checked out.
    signature_ok: bool,
    /// Files listed in the manifest, and how many hashed as listed.
    files_listed: usize,
    files_matched: usize,
    camera: Option<String>,
    from: Option<String>,
    to: Option<String>,
    export_id: Option<String>,
    /// The recording clock's offset from NTP when the package was made, µs.
    clock_offset_us: Option<i64>,
    clock_synchronized: Option<bool>,
    checks: Vec<CheckBody>,
    /// The checks that failed, by name (empty when `ok`).
    failed: Vec<String>,
}

fn too_large() -> ApiError {
    ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the package is over the {} MiB verification limit",
            MAX_VERIFY_BYTES >> 20
        ),
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Writes `body` to a new temporary file in `dir`, refusing more than `cap`
/// bytes (413). The file is deleted when the returned handle drops.
pub(crate) async fn receive_capped(
    body: Body,
    cap: u64,
    dir: &Path,
) -> Result<(tempfile::NamedTempFile, u64), ApiError> {
    std::fs::create_dir_all(dir).map_err(|e| internal(format!("{}: {e}", dir.display())))?;
    remove_leftovers(dir);
    let mut file = tempfile::Builder::new()
        .prefix("verify-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| {
            internal(format!(
                "cannot make a temporary file in {}: {e}",
                dir.display()
            ))
        })?;
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("the upload broke off after {received} bytes: {e}"),
            )
        })?;
        received += chunk.len() as u64;
        if received > cap {
            return Err(too_large());
        }
        // Small blocking writes: chunks are at most a few hundred KiB.
        file.write_all(&chunk)
            .map_err(|e| internal(format!("cannot store the upload: {e}")))?;
    }
    file.flush()
        .map_err(|e| internal(format!("cannot store the upload: {e}")))?;
    Ok((file, received))
}

/// Uploads a crash left behind (a live one is never a day old).
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let day = std::time::Duration::from_secs(86_400);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let ours = name
            .to_str()
            .is_some_and(|n| n.starts_with("verify-") && n.ends_with(".part"));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if ours && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn body_from(report: &VerifyReport, bytes: u64, own_fingerprint: &str) -> VerifyBody {
    let manifest = report.manifest.as_ref();
    let listed: Vec<&str> = manifest
        .map(|m| m.files.iter().map(|f| f.name.as_str()).collect())
        .unwrap_or_default();
    let files_matched = report
        .checks
        .iter()
        .filter(|c| c.passed && listed.contains(&c.subject.as_str()))
        .count();
    let signature_ok = report
        .checks
        .iter()
        .any(|c| c.passed && c.subject == "manifest.json.sig");
    VerifyBody {
        ok: report.passed(),
        bytes,
        this_device: report.device_fingerprint.as_deref() == Some(own_fingerprint),
        signed_by: report.device_fingerprint.clone(),
        signature_ok,
        files_listed: listed.len(),
        files_matched,
        camera: manifest.map(|m| m.camera.name.clone()),
        from: manifest.map(|m| m.footage.from.clone()),
        to: manifest.map(|m| m.footage.to.clone()),
        export_id: manifest.map(|m| m.export_id.clone()),
        clock_offset_us: manifest.map(|m| m.clock.report.kernel.offset_us),
        clock_synchronized: manifest.map(|m| m.clock.report.kernel.synchronized),
        checks: report
            .checks
            .iter()
            .map(|c| CheckBody {
                subject: c.subject.clone(),
                passed: c.passed,
                detail: c.detail.clone(),
            })
            .collect(),
        failed: report
            .failures()
            .map(|c| format!("{}: {}", c.subject, c.detail))
            .collect(),
    }
}

/// `POST /api/evidence/verify` with the package as the body
/// (`Content-Type: application/x-tar`, or `application/octet-stream`).
pub async fn verify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<VerifyBody>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_VERIFY_BYTES) {
        return Err(too_large());
    }
    let (file, bytes) = receive_capped(body, MAX_VERIFY_BYTES, &state.data_dir.join("tmp")).await?;
    if bytes == 0 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "the body is empty: send the evidence package (.tar) or sealed MP4 to verify".into(),
        ));
    }
    let own = state.evidence.device.fingerprint().to_string();
    let report = tokio::task::spawn_blocking(move || {
        let report = verify_path(file.path(), None);
        drop(file);
        report
    })
    .await
    .map_err(internal)?
    .map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("cannot read the package: {e}"),
        )
    })?;
    Ok(Json(body_from(&report, bytes, &own)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn uploads_past_the_cap_are_refused_and_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
            vec![Ok(vec![1u8; 600].into()), Ok(vec![2u8; 600].into())];
        let body = Body::from_stream(futures::stream::iter(chunks));
        match receive_capped(body, 1000, dir.path()).await {
            Err(ApiError(status, message)) => {
                assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
                assert!(message.contains("MiB verification limit"), "{message}");
            }
            Ok(_) => panic!("1200 bytes passed a 1000-byte cap"),
        }
        let left = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(left, 0, "the partial upload must be deleted");

        let body = Body::from(vec![7u8; 1000]);
        let (file, bytes) = receive_capped(body, 1000, dir.path())
            .await
            .ok()
            .expect("exactly the cap is fine");
        assert_eq!(bytes, 1000);
        assert_eq!(std::fs::read(file.path()).expect("read"), vec![7u8; 1000]);
    }
}
