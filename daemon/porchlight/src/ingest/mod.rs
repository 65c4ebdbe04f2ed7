//! Camera → store: one task per recorded stream, reconnecting forever.

mod backoff;
pub mod fragmenter;
mod session;
pub mod timeline;
pub mod writer;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backoff::{Backoff, AUTH_RETRY};

use rand::Rng;
use retina::client::{Credentials, SessionGroup};
use tokio::sync::watch;

use crate::config::{CameraConfig, StreamKind};
use crate::health::{CameraHealth, StreamState};
use crate::live::LiveFeed;
use crate::store::retention::RetentionHandle;
use crate::store::Store;
use fragmenter::Fragmenter;
use session::{SessionError, SessionParams};

/// Resolves when the owner's recording switch turns off (never, if the
/// switch is gone).
async fn switched_off(recording: &mut watch::Receiver<bool>) {
    loop {
        if recording.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        if !*recording.borrow_and_update() {
            return;
        }
    }
}

/// Starts recording every enabled stream of `camera`. `recording` is the
/// owner's switch: while false, the camera is disconnected and nothing is
/// written (what was in flight is closed cleanly first). `live` is the
/// camera's live feed, fed from the main stream's session.
#[allow(clippy::too_many_arguments)]
pub fn spawn_camera(
    camera: &CameraConfig,
    health: Arc<CameraHealth>,
    store: &Store,
    retention: RetentionHandle,
    segment_duration: Duration,
    recording: watch::Receiver<bool>,
    live: Option<Arc<LiveFeed>>,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    if !camera.enabled {
        return Vec::new();
    }
    let mut tasks = Vec::new();
    for &kind in &camera.streams {
        let (Some(stream_id), Some(stream_health), Some(url)) = (
            store.stream_id(&camera.name, kind),
            health.stream(kind).cloned(),
            camera.stream_url(kind).cloned(),
        ) else {
            continue;
        };
        let (writer, writer_task) = writer::spawn(writer::WriterContext {
            data_dir: store.data_dir.clone(),
            stream_id,
            index: store.index.clone(),
            retention: retention.clone(),
            health: stream_health.clone(),
            index_headroom: store.ballast.size(),
        });
        let credentials = camera.username.as_ref().map(|username| Credentials {
            username: username.clone(),
            password: camera
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
        });
        let camera_health = health.clone();
        let transport = camera.transport;
        let audio = camera.audio && kind == StreamKind::Main;
        let name = camera.name.clone();
        let mut shutdown = shutdown.clone();
        let mut recording = recording.clone();
        // Live view follows the main stream: the connection already open
        // for recording feeds every viewer.
        let live = live.clone().filter(|_| kind == StreamKind::Main);
        tasks.push(tokio::spawn(async move {
            let group = Arc::new(SessionGroup::default().named(format!("{name}/{kind}")));
            let mut fragmenter = Fragmenter::new(segment_duration.as_micros() as i64);
            let mut backoff = Backoff::default();
            loop {
                // The owner switched recording off: wait, disconnected.
                if !*recording.borrow_and_update() {
                    stream_health.set_state(StreamState::Paused, None);
                    tracing::info!(camera = %name, stream = %kind, "recording switched off by the owner");
                    loop {
                        tokio::select! {
                            changed = recording.changed() => {
                                if changed.is_err() || *recording.borrow_and_update() {
                                    break;
                                }
                            }
                            _ = shutdown.changed() => {
                                drop(writer);
                                let _ = writer_task.await;
                                return;
                            }
                        }
                    }
                    tracing::info!(camera = %name, stream = %kind, "recording switched on by the owner");
                    backoff.reset();
                }
                stream_health.set_state(StreamState::Connecting, None);
                let params = SessionParams {
                    url: &url,
                    credentials: credentials.clone(),
                    transport,
                    audio,
                    health: &stream_health,
                    session_group: group.clone(),
                    live: live.as_deref(),
                };
                let outcome = tokio::select! {
                    // `session::run` ends the live session on every exit,
                    // including when this select drops it.
                    outcome = session::run(params, &mut fragmenter, &writer) => outcome,
                    _ = switched_off(&mut recording) => {
                        // Close what we hold as whole fragments, then pause.
                        let mut jobs = Vec::new();
                        fragmenter.finish(&mut jobs);
                        for job in jobs {
                            let _ = writer.send(job).await;
                        }
                        fragmenter = Fragmenter::new(segment_duration.as_micros() as i64);
                        continue;
                    }
                    _ = shutdown.changed() => {
                        // Dropping the session future tears it down; flush what we hold.
                        let mut jobs = Vec::new();
                        fragmenter.finish(&mut jobs);
                        for job in jobs {
                            let _ = writer.send(job).await;
                        }
                        drop(writer);
                        let _ = writer_task.await;
                        return;
                    }
                };
                // The session reached `Streaming` once video arrived.
                let streamed = stream_health.state() == StreamState::Streaming;
                let delay = backoff.after_session(streamed, Instant::now());
                let wait = match outcome {
                    Ok(()) => {
                        tracing::info!(camera = %name, stream = %kind, "camera ended the stream; reconnecting");
                        stream_health.set_state(StreamState::Error, Some("camera ended the stream".into()));
                        delay
                    }
                    Err(SessionError::WriterGone) => return,
                    Err(e @ SessionError::Unauthorized(_)) => {
                        tracing::warn!(camera = %name, stream = %kind, error = %e, "wrong credentials; retrying slowly");
                        stream_health.set_state(StreamState::AuthFailed, Some(e.to_string()));
                        AUTH_RETRY
                    }
                    Err(e) => {
                        tracing::warn!(camera = %name, stream = %kind, error = %e, "camera session failed; reconnecting");
                        stream_health.set_state(StreamState::Error, Some(e.to_string()));
                        delay
                    }
                };
                camera_health.reconnects_total.fetch_add(1, Ordering::Relaxed);
                let jitter = rand::rng().random_range(0.8..1.2);
                tokio::select! {
                    _ = tokio::time::sleep(wait.mul_f64(jitter)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }));
    }
    tasks
}
