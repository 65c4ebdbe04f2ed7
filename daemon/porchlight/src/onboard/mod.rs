//! Onboarding: cameras found by background ONVIF discovery, the owner adding
//! one, and following a known camera to a new address (DHCP). See
//! `docs/onvif-onboarding.md`.
//!
//! [`seen`] remembers what discovery heard, [`saved`] keeps the cameras the
//! owner added (in the data dir), [`ask`] asks a device for its streams;
//! this file ties them to the discovery listener and the owner API.
//!
//! A new or moved camera is applied by a clean restart of the daemon process
//! in place (see [`Onboarding::restart_requested`]): the camera set is fixed
//! for the life of the recording machinery.

pub mod ask;
pub mod cli;
pub mod saved;
pub mod seen;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::audit::{AuditEvent, AuditLog, Component, EventType, Identity, Outcome};
use crate::config::{is_valid_camera_name, Config};
use crate::evidence::CameraClockSkews;
use crate::onvif::discovery::{DiscoveryConfig, DiscoveryEvent};
use crate::time::{format_utc_us, now_utc_us};
use ask::AskError;
use saved::{SavedCamera, SavedError};
use seen::{Change, Seen, SeenDevice};

/// Waits between attempts to follow a moved camera (a camera announcing
/// itself right after boot may not answer SOAP yet).
const RELOCATE_RETRIES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(20),
];

/// A camera from the config file (never rewritten; matched by address).
#[derive(Clone, Debug)]
struct ConfiguredCamera {
    name: String,
    onvif: Option<url::Url>,
}

/// Shared by the discovery follower and the owner API.
pub struct Onboarding {
    data_dir: PathBuf,
    discovery: Option<DiscoveryConfig>,
    configured: Vec<ConfiguredCamera>,
    /// The saved cameras; the async lock serializes adds and moves.
    saved: tokio::sync::Mutex<Vec<SavedCamera>>,
    seen: Mutex<Seen>,
    skews: CameraClockSkews,
    /// Adds and moves change what is recorded (and so what may be shared).
    audit: AuditLog,
    restart: watch::Sender<bool>,
}

/// The owner's choice when adding a camera.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    pub name: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Profile token for the main (recorded, exported) stream; default: the
    /// camera's first profile.
    #[serde(default)]
    pub main_profile: Option<String>,
    /// Profile token for the sub stream; default: none.
    #[serde(default)]
    pub sub_profile: Option<String>,
}

/// Why an add failed; [`AddError::status`] is its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("no discovered ONVIF device has the endpoint reference `{0}` (GET /api/discovery lists them)")]
    UnknownEndpoint(String),
    #[error("camera name `{0}` must be 1-64 characters of a-z, 0-9, `_` or `-` (it is used in URLs and metrics)")]
    BadName(String),
    #[error("there is already a camera named `{0}`")]
    NameTaken(String),
    #[error("this device is already the camera `{0}`")]
    AlreadyAdded(String),
    #[error("{0}")]
    Camera(#[from] AskError),
    #[error("{0}")]
    Save(#[from] SavedError),
}

impl AddError {
    pub fn status(&self) -> u16 {
        match self {
            AddError::UnknownEndpoint(_) => 404,
            AddError::BadName(_) => 400,
            AddError::NameTaken(_) | AddError::AlreadyAdded(_) => 409,
            AddError::Camera(AskError::WrongCredentials(_)) => 422,
            AddError::Camera(AskError::UnknownProfile { .. } | AskError::SameProfile(_)) => 400,
            AddError::Camera(_) => 502,
            AddError::Save(_) => 500,
        }
    }
}

/// One device as `GET /api/discovery` shows it.
#[derive(Serialize)]
pub struct DeviceView {
    /// `pending` (not a camera yet) or `camera`.
    pub state: &'static str,
    /// The camera it is, when it is one.
    pub camera: Option<String>,
    #[serde(flatten)]
    pub device: SeenDevice,
    pub first_seen: String,
    pub last_seen: String,
}

/// `GET /api/discovery`.
#[derive(Serialize)]
pub struct DiscoveryView {
    pub enabled: bool,
    pub interfaces: Vec<String>,
    pub devices: Vec<DeviceView>,
}

/// What an add answers.
#[derive(Serialize)]
pub struct AddedView {
    pub name: String,
    pub endpoint: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub onvif: String,
    pub main_profile: String,
    pub sub_profile: Option<String>,
    pub url: String,
    pub sub_url: Option<String>,
    pub clock_skew_ms: i64,
    /// Always true: recording starts after the daemon's in-place restart.
    pub restarting: bool,
}

impl From<&SavedCamera> for AddedView {
    fn from(s: &SavedCamera) -> Self {
        AddedView {
            name: s.name.clone(),
            endpoint: s.endpoint.clone(),
            manufacturer: s.manufacturer.clone(),
            model: s.model.clone(),
            serial: s.serial.clone(),
            onvif: s.onvif.clone(),
            main_profile: s.main_profile.clone(),
            sub_profile: s.sub_profile.clone(),
            url: s.url.clone(),
            sub_url: s.sub_url.clone(),
            clock_skew_ms: s.clock_skew_ms,
            restarting: true,
        }
    }
}

/// The config with the owner-added cameras in it (what the daemon records).
pub fn with_saved_cameras(config: Config) -> Result<Config, SavedError> {
    saved::merge_into(config)
}

impl Onboarding {
    /// Sets up onboarding for `config` (already holding the saved cameras),
    /// and starts following discovery when `[discovery]` is on.
    pub fn start(
        config: &Config,
        skews: CameraClockSkews,
        audit: AuditLog,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Arc<Onboarding>, Vec<tokio::task::JoinHandle<()>>), SavedError> {
        let saved = saved::load(&config.data_dir)?;
        let configured = config
            .cameras
            .iter()
            .filter(|c| {
                !saved
                    .iter()
                    .any(|s| s.name == c.name && s.url == c.url.as_str())
            })
            .map(|c| ConfiguredCamera {
                name: c.name.clone(),
                onvif: c.onvif.clone(),
            })
            .collect();
        {
            let mut skews = skews.lock().unwrap_or_else(|e| e.into_inner());
            for s in &saved {
                skews.entry(s.name.clone()).or_insert(s.clock_skew_ms);
            }
        }
        let onboarding = Arc::new(Onboarding {
            data_dir: config.data_dir.clone(),
            discovery: config.discovery.clone(),
            configured,
            saved: tokio::sync::Mutex::new(saved),
            seen: Mutex::new(Seen::default()),
            skews,
            audit,
            restart: watch::channel(false).0,
        });
        let mut tasks = Vec::new();
        if let Some(discovery) = &config.discovery {
            let (listener, events) = crate::onvif::discovery::listen(discovery.listen_options());
            tasks.push(tokio::spawn(onboarding.clone().follow(events, shutdown)));
            tasks.push(tokio::spawn(async move {
                match listener.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "ONVIF discovery stopped"),
                    Err(e) => tracing::error!(error = %e, "ONVIF discovery failed"),
                }
            }));
        }
        Ok((onboarding, tasks))
    }

    /// Resolves when the camera set changed (a camera was added or moved)
    /// and the daemon should restart in place to record it.
    pub async fn restart_requested(&self) {
        let mut rx = self.restart.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    fn lock_seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns discovery events into the registry, and moves of known
    /// cameras into address updates.
    async fn follow(
        self: Arc<Self>,
        mut events: mpsc::Receiver<DiscoveryEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let event = tokio::select! {
                event = events.recv() => match event {
                    Some(event) => event,
                    None => return,
                },
                _ = shutdown.changed() => return,
            };
            match event {
                DiscoveryEvent::Discovered {
                    endpoint,
                    xaddrs,
                    scopes,
                    types,
                    ..
                } => {
                    let change = self.lock_seen().discovered(
                        &endpoint,
                        &xaddrs,
                        &scopes,
                        &types,
                        now_utc_us(),
                    );
                    tracing::info!(%endpoint, ?xaddrs, ?change, "ONVIF discovery: device seen");
                    let known = self.saved_by_endpoint(&endpoint).await;
                    match known {
                        Some(camera) if !xaddrs.is_empty() && !xaddrs.contains(&camera.onvif) => {
                            tokio::spawn(self.clone().relocate(camera.name, endpoint, xaddrs));
                        }
                        Some(_) => {}
                        None if change != Change::Same => {
                            tokio::spawn(self.clone().identify(endpoint, xaddrs));
                        }
                        None => {}
                    }
                }
                DiscoveryEvent::Gone { endpoint } => {
                    tracing::info!(%endpoint, "ONVIF discovery: device said Bye");
                    self.lock_seen().gone(&endpoint);
                }
            }
        }
    }

    async fn saved_by_endpoint(&self, endpoint: &str) -> Option<SavedCamera> {
        self.saved
            .lock()
            .await
            .iter()
            .find(|s| s.endpoint == endpoint)
            .cloned()
    }

    /// Asks a device that is not a camera of ours who it is, without a login
    /// (many cameras answer GetDeviceInformation only with one: then the
    /// list shows scopes only). A serial number of a saved camera under a
    /// new endpoint reference is that camera, moved.
    async fn identify(self: Arc<Self>, endpoint: String, xaddrs: Vec<String>) {
        let client = match ask::connect(&xaddrs, None).await {
            Ok(client) => client,
            Err(e) => {
                tracing::debug!(%endpoint, error = %e, "ONVIF discovery: no anonymous answer");
                return;
            }
        };
        let info = match client.device_information().await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(%endpoint, error = %e, "ONVIF discovery: no anonymous device information");
                return;
            }
        };
        if let Some(device) = self.lock_seen().get_mut(&endpoint) {
            device.set_information(&info);
        }
        let serial = info.serial_number.trim();
        if serial.is_empty() {
            return;
        }
        let same_serial = self
            .saved
            .lock()
            .await
            .iter()
            .find(|s| s.serial == serial && s.endpoint != endpoint)
            .cloned();
        if let Some(camera) = same_serial {
            tracing::info!(camera = %camera.name, %endpoint, "ONVIF discovery: a saved camera's serial under a new endpoint reference");
            self.relocate(camera.name, endpoint, xaddrs).await;
        }
    }

    /// A saved camera answered from new addresses: ask it again for the
    /// stream URIs of its profiles, save them and restart to record there.
    async fn relocate(self: Arc<Self>, name: String, endpoint: String, xaddrs: Vec<String>) {
        for (attempt, wait) in RELOCATE_RETRIES.iter().enumerate() {
            let mut saved = self.saved.lock().await;
            let Some(camera) = saved.iter().find(|s| s.name == name).cloned() else {
                return;
            };
            if camera.endpoint == endpoint && xaddrs.contains(&camera.onvif) {
                return; // Another sighting already did it.
            }
            let credentials = camera
                .username
                .as_deref()
                .map(|u| (u, camera.password.as_deref().unwrap_or_default()));
            if attempt == 0 && still_answers(&camera, credentials).await {
                drop(saved);
                tracing::warn!(camera = %name, %endpoint, ?xaddrs, "ONVIF discovery: a device claims to be this camera, which still answers at its saved address; not following it");
                self.record_camera_change(
                    &name,
                    Identity::system(),
                    Outcome::refused("another device claimed to be this camera, which still answers at its saved address"),
                    serde_json::json!({"action": "move", "endpoint": endpoint, "claimed_addresses": xaddrs, "saved_address": camera.onvif}),
                )
                .await;
                return;
            }
            let answer = ask::ask(
                &xaddrs,
                credentials,
                Some(&camera.main_profile),
                camera.sub_profile.as_deref(),
            )
            .await;
            match answer {
                Ok(answer) => {
                    let serial = answer
                        .info
                        .as_ref()
                        .map(|i| i.serial_number.trim().to_string())
                        .unwrap_or_default();
                    if !camera.serial.is_empty() && serial != camera.serial {
                        tracing::warn!(camera = %name, %endpoint, expected = %camera.serial, found = %serial, "ONVIF discovery: the device at the new address has another serial number; not following it");
                        drop(saved);
                        self.record_camera_change(
                            &name,
                            Identity::system(),
                            Outcome::refused("the device at the new address has another serial number"),
                            serde_json::json!({"action": "move", "endpoint": endpoint, "claimed_addresses": xaddrs, "expected_serial": camera.serial, "found_serial": serial}),
                        )
                        .await;
                        return;
                    }
                    let Some(entry) = saved.iter_mut().find(|s| s.name == name) else {
                        return;
                    };
                    entry.endpoint = endpoint.clone();
                    entry.onvif = answer.onvif.clone();
                    entry.url = answer.url.clone();
                    entry.sub_url = answer.sub_url.clone();
                    entry.clock_skew_ms = answer.clock_skew_ms;
                    entry.moved_at = Some(now_utc_us());
                    if let Err(e) = saved::save(&self.data_dir, &saved) {
                        tracing::error!(camera = %name, error = %e, "cannot save the camera's new address");
                        return;
                    }
                    drop(saved);
                    if let Some(device) = self.lock_seen().get_mut(&endpoint) {
                        if let Some(info) = &answer.info {
                            device.set_information(info);
                        }
                    }
                    tracing::info!(camera = %name, from = %camera.onvif, to = %answer.onvif, url = %answer.url, "camera moved: following it to its new address");
                    self.record_camera_change(
                        &name,
                        Identity::system(),
                        Outcome::ok(),
                        serde_json::json!({"action": "move", "endpoint": endpoint, "from": camera.onvif, "to": answer.onvif, "serial": serial}),
                    )
                    .await;
                    self.request_restart(Duration::ZERO);
                    return;
                }
                Err(e) => {
                    drop(saved);
                    tracing::warn!(camera = %name, attempt = attempt + 1, error = %e, "camera moved but does not answer at its new address yet");
                    tokio::time::sleep(*wait).await;
                }
            }
        }
    }

    /// Audits a camera change: `identity` is the owner who added it, or
    /// the system for moves (the daemon's own doing).
    async fn record_camera_change(
        &self,
        camera: &str,
        identity: Identity,
        outcome: Outcome,
        details: serde_json::Value,
    ) {
        let event = AuditEvent::new(Component::Daemon, EventType::CameraChange, identity)
            .camera(camera)
            .outcome(outcome)
            .details(details);
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(%camera, error = %e, "cannot write the camera change to the audit log");
        }
    }

    /// Restarts the daemon in place after `after` (also used when the owner
    /// joins the relay program, so the relay starts).
    pub(crate) fn request_restart(&self, after: Duration) {
        let restart = self.restart.clone();
        tokio::spawn(async move {
            // Lets the owner's answer leave before the HTTP server stops.
            tokio::time::sleep(after).await;
            restart.send_replace(true);
        });
    }

    /// Which camera, if any, a discovered device is.
    fn camera_of(&self, device: &SeenDevice, saved: &[SavedCamera]) -> Option<String> {
        if let Some(s) = saved.iter().find(|s| s.endpoint == device.endpoint) {
            return Some(s.name.clone());
        }
        if let Some(serial) = &device.serial {
            if let Some(s) = saved
                .iter()
                .find(|s| !s.serial.is_empty() && &s.serial == serial)
            {
                return Some(s.name.clone());
            }
        }
        let host_port =
            |u: &url::Url| (u.host_str().map(str::to_string), u.port_or_known_default());
        self.configured.iter().find_map(|c| {
            let onvif = c.onvif.as_ref()?;
            device
                .xaddrs
                .iter()
                .filter_map(|x| url::Url::parse(x).ok())
                .any(|x| host_port(&x) == host_port(onvif))
                .then(|| c.name.clone())
        })
    }

    /// `GET /api/discovery`: pending devices first, then cameras.
    pub async fn view(&self) -> DiscoveryView {
        let saved = self.saved.lock().await.clone();
        let devices: Vec<SeenDevice> = self.lock_seen().all().cloned().collect();
        let mut devices: Vec<DeviceView> = devices
            .into_iter()
            .map(|mut device| {
                let camera = self.camera_of(&device, &saved);
                if let Some(s) = camera
                    .as_ref()
                    .and_then(|name| saved.iter().find(|s| &s.name == name))
                {
                    let some = |t: &str| (!t.is_empty()).then(|| t.to_string());
                    device.manufacturer = device.manufacturer.or_else(|| some(&s.manufacturer));
                    device.model = device.model.or_else(|| some(&s.model));
                    device.serial = device.serial.or_else(|| some(&s.serial));
                }
                DeviceView {
                    state: if camera.is_some() {
                        "camera"
                    } else {
                        "pending"
                    },
                    camera,
                    first_seen: format_utc_us(device.first_seen_us),
                    last_seen: format_utc_us(device.last_seen_us),
                    device,
                }
            })
            .collect();
        devices.sort_by_key(|d| (d.state != "pending", d.device.endpoint.clone()));
        DiscoveryView {
            enabled: self.discovery.is_some(),
            interfaces: self
                .discovery
                .as_ref()
                .map(|d| d.interfaces.clone())
                .unwrap_or_default(),
            devices,
        }
    }

    /// The owner adds a discovered device as camera `request.name`: asks it
    /// for its streams with the given login, saves it, and restarts in
    /// place to record it. `owner` is the logged-in owner user, for the
    /// audit log (`None`: the local CLI token, or open local mode).
    pub async fn add(
        &self,
        endpoint: &str,
        request: AddRequest,
        owner: Option<String>,
    ) -> Result<AddedView, AddError> {
        let device = self
            .lock_seen()
            .get(endpoint)
            .cloned()
            .ok_or_else(|| AddError::UnknownEndpoint(endpoint.to_string()))?;
        if !is_valid_camera_name(&request.name) {
            return Err(AddError::BadName(request.name));
        }
        let mut saved = self.saved.lock().await;
        if saved.iter().any(|s| s.name == request.name)
            || self.configured.iter().any(|c| c.name == request.name)
        {
            return Err(AddError::NameTaken(request.name));
        }
        if let Some(camera) = self.camera_of(&device, &saved) {
            return Err(AddError::AlreadyAdded(camera));
        }
        let username = request.username.filter(|u| !u.is_empty());
        let password = request.password.filter(|_| username.is_some());
        let credentials = username
            .as_deref()
            .map(|u| (u, password.as_deref().unwrap_or_default()));
        let answer = ask::ask(
            &device.xaddrs,
            credentials,
            request.main_profile.as_deref(),
            request.sub_profile.as_deref(),
        )
        .await?;
        let info = answer.info.clone().unwrap_or_default();
        let camera = SavedCamera {
            name: request.name.clone(),
            endpoint: endpoint.to_string(),
            serial: info.serial_number.trim().to_string(),
            manufacturer: info.manufacturer.trim().to_string(),
            model: info.model.trim().to_string(),
            onvif: answer.onvif.clone(),
            main_profile: answer.main_profile.clone(),
            sub_profile: answer.sub_profile.clone(),
            url: answer.url.clone(),
            sub_url: answer.sub_url.clone(),
            username,
            password,
            clock_skew_ms: answer.clock_skew_ms,
            added_at: now_utc_us(),
            moved_at: None,
        };
        let mut next = saved.clone();
        next.push(camera.clone());
        saved::save(&self.data_dir, &next)?;
        *saved = next;
        drop(saved);
        if let Some(info) = &answer.info {
            if let Some(d) = self.lock_seen().get_mut(endpoint) {
                d.set_information(info);
            }
        }
        self.skews
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(camera.name.clone(), camera.clock_skew_ms);
        tracing::info!(camera = %camera.name, %endpoint, url = %camera.url, skew_ms = camera.clock_skew_ms, "camera added from discovery; restarting in place to record it");
        self.record_camera_change(
            &camera.name,
            Identity::owner(owner.as_deref()),
            Outcome::ok(),
            serde_json::json!({"action": "add", "endpoint": endpoint, "address": camera.onvif, "serial": camera.serial, "manufacturer": camera.manufacturer, "model": camera.model}),
        )
        .await;
        self.request_restart(Duration::from_millis(300));
        Ok(AddedView::from(&camera))
    }
}

/// Whether `camera` still answers at its saved address with its own serial
/// number. A device elsewhere announcing the camera's endpoint reference is
/// then an impostor (the reference is public in every ProbeMatch), not a
/// move: following it would record someone else's video as this camera's.
async fn still_answers(camera: &SavedCamera, credentials: Option<(&str, &str)>) -> bool {
    let ask_saved = async {
        let client = ask::connect(std::slice::from_ref(&camera.onvif), credentials).await?;
        client
            .device_information()
            .await
            .map_err(|e| AskError::Unreachable {
                addresses: camera.onvif.clone(),
                error: e.to_string(),
            })
    };
    match tokio::time::timeout(Duration::from_secs(5), ask_saved).await {
        Ok(Ok(info)) => camera.serial.is_empty() || info.serial_number.trim() == camera.serial,
        _ => false,
    }
}
