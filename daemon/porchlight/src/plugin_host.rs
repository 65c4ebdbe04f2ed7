//! The daemon as plugins see it ([`porchlight_plugin_api::Host`]): state
//! read from health, the owner's switches and the request store; events
//! translated from the daemon's bus; commands sent through the same
//! `Controls` and `RequestService` as the owner API, so they are checked and
//! audited the same way.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use porchlight_plugin_api::{
    CameraState, CommandError, Host, HostEvent, HubState, PoliceRequest, SharingAttributes,
};
use tokio::sync::{broadcast, watch};

use crate::audit::Component;
use crate::config::StreamKind;
use crate::controls::{Channel, ControlError, Controls};
use crate::events::DaemonEvent;
use crate::export::snapshot::SnapshotCache;
use crate::health::Health;
use crate::policy::SharingLevel;
use crate::requests::{RequestService, RequestState, StoredRequest};
use crate::time::{format_utc_us, now_utc_us};

/// How often camera states are checked for changes (online, fps ...).
const CAMERA_POLL: Duration = Duration::from_secs(5);

pub struct DaemonHost {
    health: Arc<Health>,
    controls: Arc<Controls>,
    requests: RequestService,
    live_shares: crate::live::LiveShares,
    data_dir: PathBuf,
    snapshots: SnapshotCache,
    events: broadcast::Sender<HostEvent>,
    last_relay_access: Mutex<Option<String>>,
    /// Last motion state each camera reported over ONVIF events.
    motion: Mutex<HashMap<String, bool>>,
}

impl DaemonHost {
    /// Makes the host and starts translating the daemon's events.
    pub fn start(
        health: Arc<Health>,
        controls: Arc<Controls>,
        requests: RequestService,
        live_shares: crate::live::LiveShares,
        data_dir: PathBuf,
        snapshots: SnapshotCache,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<DaemonHost> {
        let host = Arc::new(DaemonHost {
            health,
            controls,
            requests,
            live_shares,
            data_dir,
            snapshots,
            events: broadcast::channel(256).0,
            last_relay_access: Mutex::new(None),
            motion: Mutex::new(HashMap::new()),
        });
        tokio::spawn(translate(host.clone(), shutdown));
        host
    }

    fn hub(&self) -> HubState {
        let pending = self.pending_requests().len() as u32;
        HubState {
            privacy: self.controls.switches().privacy,
            pending_requests: pending,
            last_relay_access: self
                .last_relay_access
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            disk_free_bytes: self.health.disk_free_bytes.load(Ordering::Relaxed),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn cameras(&self) -> Vec<CameraState> {
        let switches = self.controls.switches();
        let sharing = self.controls.sharing();
        let now_us = now_utc_us();
        self.health
            .cameras
            .values()
            .map(|camera| {
                let main = camera.stream(StreamKind::Main).map(|s| s.snapshot());
                let camera_switches = switches.cameras.iter().find(|c| c.camera == camera.name);
                let oldest = camera.oldest_recording_utc_us.load(Ordering::Relaxed);
                CameraState {
                    name: camera.name.clone(),
                    online: camera.is_up(),
                    recording: camera_switches.is_some_and(|c| c.recording),
                    fps: main.as_ref().map_or(0.0, |m| m.fps),
                    bitrate_bps: main.as_ref().map_or(0.0, |m| m.bitrate_bps as f64),
                    storage_bytes: camera.storage_bytes.load(Ordering::Relaxed),
                    oldest_footage_age_s: (oldest > 0)
                        .then(|| ((now_us - oldest).max(0) / 1_000_000) as u64),
                    sharing: camera_switches
                        .map_or(SharingLevel::Off, |c| c.sharing)
                        .as_str()
                        .to_string(),
                    motion: self
                        .motion
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&camera.name)
                        .copied(),
                    live_share_active: self.live_shares.active_on(&camera.name),
                    sharing_settings: sharing
                        .cameras
                        .iter()
                        .find(|c| c.camera == camera.name)
                        .map(|c| SharingAttributes {
                            schedule: c.schedule_text.clone(),
                            schedule_open: c.schedule_open,
                            outside_schedule: c.outside_schedule.as_str().to_string(),
                            effective_level: c.effective_level.as_str().to_string(),
                            max_clip_s: c.effective_max_clip_s,
                            audio_to_police: c.audio_to_police,
                            audio_available: c.audio_available,
                        }),
                }
            })
            .collect()
    }

    fn request(&self, id: &str) -> Option<PoliceRequest> {
        self.requests
            .store
            .get(id)
            .ok()
            .flatten()
            .map(|r| police_request(&r))
    }
}

fn police_request(r: &StoredRequest) -> PoliceRequest {
    PoliceRequest {
        id: r.id.clone(),
        agency: r.agency.clone(),
        case_id: r.case_id.clone(),
        incident_type: r.incident_type.clone(),
        state: r.state.as_str().to_string(),
        window_from: format_utc_us(r.window.from_us),
        window_to: format_utc_us(r.window.to_us),
        cameras: r
            .cameras
            .iter()
            .filter(|c| c.outcome != crate::requests::outcome::REFUSE)
            .map(|c| c.camera.clone())
            .collect(),
        expires: format_utc_us(r.expires_us),
    }
}

/// Daemon bus → plugin events; also announces camera changes found by polling.
async fn translate(host: Arc<DaemonHost>, mut shutdown: watch::Receiver<bool>) {
    let mut bus = host.requests.bus.subscribe();
    let mut poll = tokio::time::interval(CAMERA_POLL);
    // A schedule opening or closing changes the camera's effective level.
    let mut last: HashMap<String, (bool, bool, String, Option<bool>)> = HashMap::new();
    loop {
        let event = tokio::select! {
            event = bus.recv() => event,
            _ = poll.tick() => {
                let h = host.clone();
                let cameras = tokio::task::spawn_blocking(move || h.cameras()).await.unwrap_or_default();
                for camera in cameras {
                    let key = (
                        camera.online,
                        camera.recording,
                        camera.sharing.clone(),
                        camera.sharing_settings.as_ref().map(|s| s.schedule_open),
                    );
                    if last.get(&camera.name) != Some(&key) {
                        last.insert(camera.name.clone(), key);
                        let _ = host.events.send(HostEvent::Camera(camera));
                    }
                }
                continue;
            }
            _ = shutdown.changed() => return,
        };
        let h = host.clone();
        let translated = tokio::task::spawn_blocking(move || -> Vec<HostEvent> {
            match event {
                Ok(DaemonEvent::RequestCreated { id }) => h
                    .request(&id)
                    .map(HostEvent::RequestCreated)
                    .into_iter()
                    .chain([HostEvent::Hub(h.hub())])
                    .collect(),
                Ok(DaemonEvent::RequestChanged { id, .. }) => h
                    .request(&id)
                    .map(HostEvent::RequestChanged)
                    .into_iter()
                    .chain([HostEvent::Hub(h.hub())])
                    .collect(),
                Ok(DaemonEvent::RelayAccess {
                    time,
                    agency,
                    summary,
                }) => {
                    *h.last_relay_access
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) =
                        Some(format!("{time} {agency}: {summary}"));
                    vec![HostEvent::Hub(h.hub())]
                }
                Ok(DaemonEvent::LiveShareChanged { camera, .. }) => h
                    .cameras()
                    .into_iter()
                    .filter(|c| c.name == camera)
                    .map(HostEvent::Camera)
                    .collect(),
                Ok(DaemonEvent::SettingsChanged)
                | Ok(DaemonEvent::RelayLeft)
                | Err(broadcast::error::RecvError::Lagged(_)) => {
                    let mut events = vec![HostEvent::Hub(h.hub())];
                    events.extend(h.cameras().into_iter().map(HostEvent::Camera));
                    events
                }
                // Not yet kept anywhere plugins can read (CameraState.motion);
                // wired when camera events are fed into the daemon.
                Ok(DaemonEvent::CameraEvent {
                    camera,
                    kind,
                    active,
                }) => {
                    if kind != "motion" {
                        return Vec::new();
                    }
                    h.motion
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(camera.clone(), active);
                    h.cameras()
                        .into_iter()
                        .filter(|c| c.name == camera)
                        .map(HostEvent::Camera)
                        .collect()
                }
                Err(broadcast::error::RecvError::Closed) => Vec::new(),
            }
        })
        .await
        .unwrap_or_default();
        for event in translated {
            let _ = host.events.send(event);
        }
    }
}

fn control(e: ControlError) -> CommandError {
    match e {
        ControlError::UnknownCamera(c) => CommandError::UnknownCamera(c),
        ControlError::Invalid { .. } => CommandError::Invalid(e.to_string()),
        other => CommandError::Failed(other.to_string()),
    }
}

fn channel(actor: &str) -> Channel {
    match actor {
        "mqtt" => Channel::Mqtt,
        "cli" => Channel::Cli,
        _ => Channel::OwnerApi,
    }
}

fn component(actor: &str) -> Component {
    match actor {
        "mqtt" => Component::Mqtt,
        "cli" => Component::Cli,
        _ => Component::OwnerApi,
    }
}

impl Host for DaemonHost {
    fn state(&self) -> (HubState, Vec<CameraState>) {
        (self.hub(), self.cameras())
    }

    /// Requests with any camera still waiting for the owner (pending, or
    /// partly answered), after expiring the overdue ones.
    fn pending_requests(&self) -> Vec<PoliceRequest> {
        let _ = self.requests.expire_due_blocking();
        [RequestState::Pending, RequestState::PartiallyApproved]
            .into_iter()
            .filter_map(|state| self.requests.store.list(Some(state)).ok())
            .flatten()
            .filter(|r| r.awaiting_cameras().next().is_some())
            .map(|r| police_request(&r))
            .collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }

    fn snapshot_jpeg(&self, camera: &str) -> Result<Vec<u8>, CommandError> {
        crate::export::snapshot::cached_jpeg(&self.snapshots, &self.data_dir, camera, None)
            .map(|(jpeg, _)| jpeg.as_ref().clone())
            .map_err(|e| CommandError::Failed(e.to_string()))
    }

    fn set_sharing(&self, actor: &str, camera: &str, level: &str) -> Result<(), CommandError> {
        let level: SharingLevel =
            level
                .parse()
                .map_err(|e: crate::policy::UnknownSharingLevel| {
                    CommandError::Invalid(e.to_string())
                })?;
        self.controls
            .set_sharing(channel(actor), camera, level)
            .map_err(control)
    }

    fn set_privacy(&self, actor: &str, on: bool) -> Result<(), CommandError> {
        self.controls
            .set_privacy(channel(actor), on)
            .map_err(control)
    }

    fn set_recording(&self, actor: &str, camera: &str, on: bool) -> Result<(), CommandError> {
        self.controls
            .set_recording(channel(actor), camera, on)
            .map_err(control)
    }

    fn approve_request(&self, actor: &str, id: &str) -> Result<(), CommandError> {
        if !crate::requests::is_request_id(id) {
            return Err(CommandError::Invalid(format!("`{id}` is not a request id")));
        }
        self.requests
            .clone()
            .with_component(component(actor))
            .approve_blocking(id, None, None)
            .map(|_| ())
            .map_err(|e| CommandError::Refused(e.to_string()))
    }

    /// The same path as `DELETE /api/live-shares`: streams stop at once.
    fn end_live_shares(&self, actor: &str, camera: Option<&str>) -> Result<usize, CommandError> {
        if let Some(camera) = camera {
            if !self.health.cameras.contains_key(camera) {
                return Err(CommandError::UnknownCamera(camera.to_string()));
            }
        }
        let ended = self.live_shares.end_where(
            |s| camera.is_none_or(|c| c == s.camera),
            crate::live::EndReason::Owner,
            component(actor),
        );
        Ok(ended.len())
    }

    fn deny_request(&self, actor: &str, id: &str, reason: &str) -> Result<(), CommandError> {
        if !crate::requests::is_request_id(id) {
            return Err(CommandError::Invalid(format!("`{id}` is not a request id")));
        }
        self.requests
            .clone()
            .with_component(component(actor))
            .deny_blocking(id, reason)
            .map(|_| ())
            .map_err(|e| CommandError::Refused(e.to_string()))
    }
}
