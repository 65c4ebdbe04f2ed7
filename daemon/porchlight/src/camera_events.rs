//! Motion and tamper from cameras that have an ONVIF address in the config:
//! one PullPoint follower per camera, turned into events on the daemon's
//! bus (Home Assistant's motion sensor follows them). Never on the recording
//! path: a camera whose events fail still records.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::config::CameraConfig;
use crate::events::{DaemonEvent, EventBus};
use crate::onvif::events::follow;
use crate::onvif::OnvifClient;

const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Starts following every camera with an `onvif` address.
/// Also records each camera's clock skew (for evidence manifests) in `skews`.
pub fn spawn(
    cameras: &[CameraConfig],
    bus: EventBus,
    skews: crate::evidence::CameraClockSkews,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    cameras
        .iter()
        .filter(|c| c.enabled)
        .filter_map(|camera| {
            let address = camera.onvif.as_ref()?.to_string();
            let name = camera.name.clone();
            let credentials = camera.username.clone().map(|user| {
                let password = camera
                    .password
                    .as_ref()
                    .map(|p| p.expose().to_string())
                    .unwrap_or_default();
                (user, password)
            });
            Some(tokio::spawn(follow_camera(
                name,
                address,
                credentials,
                (bus.clone(), skews.clone()),
                shutdown.clone(),
            )))
        })
        .collect()
}

async fn follow_camera(
    camera: String,
    address: String,
    credentials: Option<(String, String)>,
    (bus, skews): (EventBus, crate::evidence::CameraClockSkews),
    mut shutdown: watch::Receiver<bool>,
) {
    let mut delay = FIRST_RETRY;
    loop {
        let creds = credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let client = tokio::select! {
            client = OnvifClient::connect(&address, creds) => client,
            _ = shutdown.changed() => return,
        };
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(%camera, error = %e, "ONVIF events: cannot reach the camera; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
                delay = (delay * 2).min(MAX_RETRY);
                continue;
            }
        };
        let skew_ms = client.clock_offset().whole_milliseconds() as i64;
        skews
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(camera.clone(), skew_ms);
        tracing::info!(%camera, skew_ms, "ONVIF events: following motion and tamper");
        let (tx, mut rx) = mpsc::channel::<crate::onvif::events::CameraEvent>(64);
        let forward = {
            let (camera, bus) = (camera.clone(), bus.clone());
            tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    bus.publish(DaemonEvent::CameraEvent {
                        camera: camera.clone(),
                        kind: event.kind.as_str().to_string(),
                        active: event.active,
                    });
                }
            })
        };
        // `follow` re-subscribes on its own and returns only at shutdown.
        follow(client, tx, shutdown.clone()).await;
        let _ = forward.await;
        return;
    }
}
