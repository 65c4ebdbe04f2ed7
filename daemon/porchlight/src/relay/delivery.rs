//! Evidence for the relay: each servable camera of a request gets one
//! package, made once (so every download is byte-identical and its hash
//! stays valid) in `<data_dir>/deliveries/<request>/<camera>.tar`, then
//! served with Range from there. Each package made and each download is
//! also kept in `requests.db` for the owner's history (docs/requests.md).

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::api::RelayError;
use super::RelayState;
use crate::export::{ClipFile, ClipRequest};
use crate::requests::{RequestStore, StoredRequest, TokenGrant};

pub fn package_path(state: &RelayState, request_id: &str, camera: &str) -> PathBuf {
    state
        .data_dir
        .join("deliveries")
        .join(request_id)
        .join(format!("{camera}.tar"))
}

pub fn is_ready(state: &RelayState, request_id: &str, camera: &str) -> bool {
    package_path(state, request_id, camera).is_file()
}

/// Starts making the package of every servable camera that has none yet
/// (at most one maker per package).
pub fn prepare_servable(state: &RelayState, stored: &StoredRequest) {
    for camera in stored.cameras.iter().filter(|c| c.is_servable()) {
        let Some(window) = camera.window else {
            continue;
        };
        if is_ready(state, &stored.id, &camera.camera) {
            continue;
        }
        let key = (stored.id.clone(), camera.camera.clone());
        {
            let mut preparing = state.preparing.lock().unwrap_or_else(|e| e.into_inner());
            if !preparing.insert(key.clone()) {
                continue;
            }
        }
        let path = package_path(state, &stored.id, &camera.camera);
        let clip = ClipRequest {
            camera: camera.camera.clone(),
            stream: crate::config::StreamKind::Main,
            from_us: window.from_us,
            to_us: window.to_us,
            audio: camera.audio,
            max_duration_us: state.max_clip_us,
        };
        let evidence = state.evidence.clone();
        let request = evidence.request(
            &clip,
            Some(format!(
                "{} ({}) for {}",
                stored.officer.name, stored.officer.badge, stored.agency
            )),
            Some(stored.case_id.clone()),
            Some(stored.id.clone()),
        );
        let data_dir = state.data_dir.clone();
        let preparing = state.preparing_handle();
        let store = state.requests.store.clone();
        tokio::task::spawn_blocking(move || {
            let result = (|| -> anyhow::Result<()> {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let conn = crate::store::open_reader(&data_dir)?;
                crate::evidence::export_to_file(
                    &evidence, &conn, &data_dir, &clip, &request, &path,
                )?;
                let (bytes, sha256) = file_sha256(&path)?;
                store.record_delivery(&key.0, &key.1, bytes, &sha256, crate::time::now_utc_us())?;
                Ok(())
            })();
            if let Err(e) = result {
                tracing::warn!(request = ?key.0, camera = %key.1, error = %format!("{e:#}"), "cannot make the evidence package");
            }
            preparing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        });
    }
}

/// Length and SHA-256 (lowercase hex) of a file, read in one pass.
fn file_sha256(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let bytes = std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok((bytes, crate::evidence::hex(&hasher.finalize())))
}

/// Wraps a download's body so the bytes handed to the connection are
/// written to download row `download` when the body ends, whether whole or
/// cut short by the agency hanging up.
pub fn count_sent(response: Response, store: RequestStore, download: i64) -> Response {
    use futures::StreamExt as _;
    let (parts, body) = response.into_parts();
    let mut meter = SentMeter {
        store,
        download,
        sent: 0,
    };
    let stream = body.into_data_stream().map(move |chunk| {
        if let Ok(data) = &chunk {
            meter.add(data.len());
        }
        chunk
    });
    Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

struct SentMeter {
    store: RequestStore,
    download: i64,
    sent: u64,
}

impl SentMeter {
    /// A method, so the closure owns the whole meter (and its `Drop`), not
    /// just the counter.
    fn add(&mut self, bytes: usize) {
        self.sent += bytes as u64;
    }
}

impl Drop for SentMeter {
    fn drop(&mut self) {
        let (store, download, sent) = (self.store.clone(), self.download, self.sent);
        let finish = move || {
            if let Err(e) = store.finish_download(download, sent, crate::time::now_utc_us()) {
                tracing::warn!(error = %e, "cannot record how a download ended");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(finish)),
            Err(_) => finish(),
        }
    }
}

/// The package a valid token grants, or 503 while it is still being made.
pub async fn open_package(
    state: &RelayState,
    grant: &TokenGrant,
) -> Result<Arc<ClipFile>, RelayError> {
    let path = package_path(state, &grant.request_id, &grant.camera);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(_) => {
            return Err(RelayError::preparing());
        }
    };
    // Size and modification time: a package made again gets a new tag, so
    // If-Range never splices two different packages.
    let stamp = file
        .metadata()
        .ok()
        .and_then(|m| {
            Some((
                m.len(),
                m.modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_nanos(),
            ))
        })
        .unwrap_or_default();
    let etag = format!(
        "\"{}-{}-{:x}-{:x}\"",
        grant.request_id, grant.camera, stamp.0, stamp.1
    );
    ClipFile::from_file(file, etag)
        .map(Arc::new)
        .map_err(|_| RelayError::preparing())
}

/// Serves the package (whole or a byte range); returns the response and how
/// many body bytes it carries, for the audit log.
pub fn serve(package: Arc<ClipFile>, headers: &HeaderMap) -> (Response, u64) {
    let response = crate::http::recordings::serve_file(
        package,
        headers,
        "evidence.tar",
        "application/x-tar",
        "attachment",
    );
    let bytes = if matches!(
        response.status(),
        StatusCode::OK | StatusCode::PARTIAL_CONTENT
    ) {
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    } else {
        0
    };
    (response, bytes)
}

/// Deletes packages whose download links have expired (or whose request is
/// gone): footage handed to the relay does not linger on the box.
pub fn remove_expired(state: &RelayState, now_us: i64) -> usize {
    let root = state.data_dir.join("deliveries");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return 0;
    };
    let expiry_us = state.policy.current().download_expiry.as_micros() as i64;
    let mut removed = 0;
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        let keep = match state.requests.store.get(&id) {
            Ok(Some(stored)) => stored.servable_since_us() + expiry_us > now_us,
            Ok(None) => false,
            // Unsure: keep it and try again later.
            Err(_) => true,
        };
        if !keep && std::fs::remove_dir_all(entry.path()).is_ok() {
            tracing::info!(request = %id, "removed expired evidence packages");
            removed += 1;
            // The owner's history shows them gone (best effort).
            if let Err(e) = state
                .requests
                .store
                .mark_deliveries_removed(&id, crate::time::now_utc_us())
            {
                tracing::warn!(request = %id, error = %e, "cannot record removed packages in the request history");
            }
        }
    }
    removed
}
