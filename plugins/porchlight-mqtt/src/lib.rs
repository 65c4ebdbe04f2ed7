//! Porchlight in Home Assistant, over MQTT.
//!
//! [`spawn`] starts one task that keeps a connection to the broker (with
//! reconnect and backoff), announces the hub and every camera through Home
//! Assistant MQTT discovery, publishes their state (retained) from
//! [`Host::state`] and then on each [`HostEvent`], publishes snapshots, and
//! carries the owner's commands from the command topics to the [`Host`].
//! Topics and entities are listed in `docs/mqtt.md`.
//!
//! The plugin never blocks the daemon: Host calls run in `spawn_blocking`,
//! and a broker that is down only delays what Home Assistant sees.

mod command;
mod discovery;
mod topics;

/// Entry points for the fuzz targets in `fuzz/` (docs/fuzzing.md); not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::command::{
        parse, Command, Incoming, DEFAULT_DENY_REASON, MAX_ID_CHARS, MAX_REASON_CHARS,
    };
    pub use crate::topics::Topics;
}

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use porchlight_plugin_api::{CameraState, Host, HostEvent, HubState, PoliceRequest};
use rumqttc::{
    AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Packet, PublishOptions, QoS,
    TlsConfiguration, Transport,
};
use serde_json::json;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::command::{Command, Incoming};
use crate::topics::Topics;

/// The actor named in the audit log for commands that came over MQTT.
pub const ACTOR: &str = "mqtt";
/// How often everything is published again (catches drift, lost messages).
pub const REPUBLISH_INTERVAL: Duration = Duration::from_secs(60);
/// First wait after a failed connection; it doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Largest message accepted from the broker (commands are small; a larger
/// one closes the connection, which is then made again).
const MAX_INCOMING: usize = 64 * 1024;
/// Largest message sent (snapshots).
const MAX_OUTGOING: usize = 16 * 1024 * 1024;
/// Longest `last_relay_access` state (Home Assistant's limit for a state).
const MAX_STATE_CHARS: usize = 255;

/// TLS to the broker: rustls with the ring provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttTls {
    /// PEM file with the CA certificate(s) the broker's certificate must
    /// chain to (only these are trusted).
    pub ca_file: PathBuf,
    /// Client certificate chain and private key (PEM files), for brokers
    /// that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// How to reach the broker and where to publish.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub tls: Option<MqttTls>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub client_id: String,
    /// Prefix of every Porchlight topic (`porchlight`).
    pub base_topic: String,
    /// Home Assistant's discovery prefix (`homeassistant`).
    pub discovery_prefix: String,
    /// How often each camera's snapshot is published (10 s).
    pub snapshot_interval: Duration,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: "localhost".into(),
            port: 1883,
            tls: None,
            username: None,
            password: None,
            client_id: "porchlight".into(),
            base_topic: "porchlight".into(),
            discovery_prefix: "homeassistant".into(),
            snapshot_interval: Duration::from_secs(10),
        }
    }
}

/// The password is never printed.
impl fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("client_id", &self.client_id)
            .field("base_topic", &self.base_topic)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("snapshot_interval", &self.snapshot_interval)
            .finish()
    }
}

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Pem { path: PathBuf, problem: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Starts the plugin and returns at once. The task runs until `shutdown`
/// turns `true` (or its sender is dropped); it then publishes `offline` and
/// disconnects.
pub fn spawn(
    config: MqttConfig,
    host: Arc<dyn Host>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(run(config, host, shutdown))
}

async fn run(config: MqttConfig, host: Arc<dyn Host>, mut shutdown: watch::Receiver<bool>) {
    let topics = Topics::new(&config.base_topic, &config.discovery_prefix);
    info!(
        broker = %format!("{}:{}", config.host, config.port),
        tls = config.tls.is_some(),
        base_topic = %topics.base,
        "mqtt: starting"
    );
    let mut backoff = MIN_BACKOFF;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let end = match options(&config, &topics) {
            Ok(options) => {
                let mut session = Session::new(&config, &topics, host.clone(), options);
                session.run(&mut shutdown).await
            }
            Err(e) => SessionEnd::Lost {
                reason: format!("cannot set up the connection: {e}"),
                was_connected: false,
            },
        };
        match end {
            SessionEnd::Shutdown => break,
            SessionEnd::Lost {
                reason,
                was_connected,
            } => {
                if was_connected {
                    backoff = MIN_BACKOFF;
                }
                warn!(
                    broker = %format!("{}:{}", config.host, config.port),
                    retry_in_s = backoff.as_secs(),
                    "mqtt: connection lost or refused: {reason}"
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown_signal(&mut shutdown) => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    info!("mqtt: stopped");
}

/// Resolves when shutdown is asked for (or nobody can ask any more).
async fn shutdown_signal(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

fn options(config: &MqttConfig, topics: &Topics) -> Result<MqttOptions, MqttError> {
    let mut options = MqttOptions::new(
        config.client_id.clone(),
        rumqttc::Broker::tcp(config.host.clone(), config.port),
    );
    options.set_keep_alive(30);
    options.set_clean_session(true);
    options.set_max_packet_size(MAX_INCOMING, MAX_OUTGOING);
    options.set_last_will(LastWill::new(
        topics.status(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    match (&config.username, &config.password) {
        (Some(user), Some(password)) => {
            options.set_credentials(user.clone(), password.clone().into_bytes());
        }
        (Some(user), None) => {
            options.set_username(user.clone());
        }
        _ => {}
    }
    if let Some(tls) = &config.tls {
        let client = tls_config(tls)?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(client),
        )));
    }
    Ok(options)
}

/// A rustls client config on the ring provider, trusting only `ca_file`.
fn tls_config(tls: &MqttTls) -> Result<rustls::ClientConfig, MqttError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| MqttError::Read {
            path: path.clone(),
            source,
        })
    };
    let pem_err = |path: &PathBuf, problem: String| MqttError::Pem {
        path: path.clone(),
        problem,
    };
    let certs = |path: &PathBuf| -> Result<Vec<CertificateDer<'static>>, MqttError> {
        let bytes = read(path)?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err(path, e.to_string()))?;
        if certs.is_empty() {
            return Err(pem_err(path, "no certificate in the file".into()));
        }
        Ok(certs)
    };

    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(&tls.ca_file)? {
        roots
            .add(cert)
            .map_err(|e| pem_err(&tls.ca_file, e.to_string()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    Ok(match &tls.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert_file, key_file)) => {
            let chain = certs(cert_file)?;
            let key = PrivateKeyDer::from_pem_slice(&read(key_file)?)
                .map_err(|e| pem_err(key_file, e.to_string()))?;
            builder.with_client_auth_cert(chain, key)?
        }
    })
}

enum SessionEnd {
    Shutdown,
    Lost { reason: String, was_connected: bool },
}

/// What the poller task hands the session.
enum FromBroker {
    Connected,
    Message {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    },
}

/// One connection to the broker, from connect to loss or shutdown.
struct Session<'a> {
    config: &'a MqttConfig,
    topics: &'a Topics,
    host: Arc<dyn Host>,
    client: AsyncClient,
    eventloop: Option<rumqttc::EventLoop>,
    connected: bool,
    /// Cameras as last seen, by name.
    cameras: BTreeMap<String, CameraState>,
    /// Cameras whose discovery is published in this session.
    announced: BTreeSet<String>,
    hub_announced: bool,
    /// Camera names for the snapshot task.
    snapshot_cameras: Arc<Mutex<Vec<String>>>,
}

impl<'a> Session<'a> {
    fn new(
        config: &'a MqttConfig,
        topics: &'a Topics,
        host: Arc<dyn Host>,
        options: MqttOptions,
    ) -> Self {
        let (client, eventloop) = AsyncClient::builder(options).capacity(256).build();
        Session {
            config,
            topics,
            host,
            client,
            eventloop: Some(eventloop),
            connected: false,
            cameras: BTreeMap::new(),
            announced: BTreeSet::new(),
            hub_announced: false,
            snapshot_cameras: Arc::new(Mutex::new(Vec::new())),
        }
    }

    async fn run(&mut self, shutdown: &mut watch::Receiver<bool>) -> SessionEnd {
        let (tx, mut from_broker) = mpsc::channel::<FromBroker>(256);
        let mut eventloop = self.eventloop.take().expect("run once");
        // The event loop is polled on its own so that publishing (which
        // waits for room in the client's queue) never waits on us.
        let mut poller = AbortOnDrop(tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if tx.try_send(FromBroker::Connected).is_err() {
                            return "connection handler gone".to_string();
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let msg = FromBroker::Message {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        };
                        match tx.try_send(msg) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                warn!("mqtt: too many incoming messages; one dropped")
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => {
                                return "connection handler gone".to_string()
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(ConnectionError::RequestsDone) => return "disconnected".to_string(),
                    Err(e) => return describe(&e),
                }
            }
        }));
        // Both tasks end with the session, even if the plugin's own task is
        // aborted (then the connection just drops and the Last Will fires).
        let mut snapshot_task: Option<AbortOnDrop<()>> = None;
        let mut events = self.host.subscribe();
        let mut events_open = true;
        let mut republish = tokio::time::interval(REPUBLISH_INTERVAL);
        republish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        republish.reset();

        let end = loop {
            tokio::select! {
                _ = shutdown_signal(shutdown) => {
                    if self.connected {
                        self.publish(self.topics.status(), "offline", true).await;
                        let _ = self.client.disconnect().await;
                    }
                    break SessionEnd::Shutdown;
                }
                msg = from_broker.recv() => match msg {
                    None => break SessionEnd::Lost {
                        reason: String::new(),
                        was_connected: self.connected,
                    },
                    Some(FromBroker::Connected) => {
                        info!(
                            broker = %format!("{}:{}", self.config.host, self.config.port),
                            "mqtt: connected"
                        );
                        self.connected = true;
                        self.on_connect().await;
                        snapshot_task = Some(AbortOnDrop(self.spawn_snapshots()));
                    }
                    Some(FromBroker::Message { topic, payload, retain }) => {
                        self.on_message(&topic, &payload, retain).await;
                    }
                },
                event = events.recv(), if events_open => match event {
                    Ok(event) => {
                        if self.connected {
                            self.on_event(event).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        debug!(missed = n, "mqtt: missed host events; publishing everything");
                        if self.connected {
                            self.publish_state().await;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        warn!("mqtt: the daemon's event stream closed; state now follows the 60 s republish");
                        events_open = false;
                    }
                },
                _ = republish.tick(), if self.connected => {
                    self.publish_state().await;
                }
            }
        };
        drop(snapshot_task);
        let end = match end {
            SessionEnd::Lost { was_connected, .. } => {
                // The poller ended: its return value says why.
                let reason = match (&mut poller.0).await {
                    Ok(reason) => reason,
                    Err(e) => format!("event loop task failed: {e}"),
                };
                SessionEnd::Lost {
                    reason,
                    was_connected,
                }
            }
            SessionEnd::Shutdown => {
                // Let the disconnect go out, then stop the poller.
                let _ = tokio::time::timeout(Duration::from_secs(3), &mut poller.0).await;
                SessionEnd::Shutdown
            }
        };
        end
    }

    async fn publish(&self, topic: String, payload: impl Into<Vec<u8>>, retain: bool) {
        let options = PublishOptions::new(QoS::AtLeastOnce).retain(retain);
        if let Err(e) = self
            .client
            .publish(topic.clone(), payload.into(), options)
            .await
        {
            debug!(%topic, "mqtt: publish not queued: {e}");
        }
    }

    async fn on_connect(&mut self) {
        for filter in self.topics.subscriptions() {
            if let Err(e) = self
                .client
                .subscribe(filter.clone(), QoS::AtLeastOnce)
                .await
            {
                warn!(%filter, "mqtt: subscribe not queued: {e}");
            }
        }
        self.publish(self.topics.status(), "online", true).await;
        self.announced.clear();
        self.hub_announced = false;
        self.publish_state().await;
    }

    /// Discovery (for anything not yet announced in this session) and every
    /// state topic, from [`Host::state`].
    async fn publish_state(&mut self) {
        let Some((hub, cameras)) = self.blocking(|h| h.state()).await else {
            return;
        };
        let gone: Vec<String> = self
            .announced
            .iter()
            .filter(|name| !cameras.iter().any(|c| &c.name == *name))
            .cloned()
            .collect();
        for name in gone {
            info!(camera = %name, "mqtt: camera gone; removing it from Home Assistant");
            for topic in discovery::camera_config_topics(self.topics, &name) {
                self.publish(topic, Vec::new(), true).await;
            }
            self.announced.remove(&name);
            self.cameras.remove(&name);
        }
        if !self.hub_announced {
            self.publish_hub_discovery(&hub).await;
        }
        self.publish_hub(&hub).await;
        self.cameras = cameras
            .iter()
            .map(|c| (c.name.clone(), c.clone()))
            .collect();
        for camera in &cameras {
            self.publish_camera(camera).await;
        }
        self.publish_pending().await;
        self.set_snapshot_cameras();
    }

    /// Every discovery config again (Home Assistant came online).
    async fn republish_discovery(&mut self) {
        self.announced.clear();
        self.hub_announced = false;
        self.publish_state().await;
    }

    async fn publish_hub_discovery(&mut self, hub: &HubState) {
        for d in discovery::hub(self.topics, hub) {
            self.publish(d.topic, d.payload.to_string(), true).await;
        }
        self.hub_announced = true;
    }

    async fn publish_hub(&mut self, hub: &HubState) {
        let t = self.topics;
        self.publish(t.hub("privacy"), on_off(hub.privacy), true)
            .await;
        self.publish(
            t.hub("pending_requests"),
            hub.pending_requests.to_string(),
            true,
        )
        .await;
        let last = match &hub.last_relay_access {
            Some(s) => s.chars().take(MAX_STATE_CHARS).collect(),
            None => "None".to_string(),
        };
        self.publish(t.hub("last_relay_access"), last, true).await;
        self.publish(t.hub("disk_free"), hub.disk_free_bytes.to_string(), true)
            .await;
    }

    async fn publish_camera(&mut self, camera: &CameraState) {
        let t = self.topics;
        let name = camera.name.as_str();
        if !self.announced.contains(name) {
            for d in discovery::camera(t, name) {
                self.publish(d.topic, d.payload.to_string(), true).await;
            }
            self.announced.insert(name.to_string());
        }
        let motion = camera.motion.map_or("None", on_off);
        let values: [(&str, String); 9] = [
            ("online", on_off(camera.online).into()),
            ("motion", motion.into()),
            ("fps", number(camera.fps, 1)),
            ("bitrate", number(camera.bitrate_bps, 0)),
            ("storage", camera.storage_bytes.to_string()),
            (
                "oldest_footage_age",
                camera
                    .oldest_footage_age_s
                    .map_or("None".to_string(), |s| s.to_string()),
            ),
            ("recording", on_off(camera.recording).into()),
            ("sharing", camera.sharing.clone()),
            ("live_share", on_off(camera.live_share_active).into()),
        ];
        for (leaf, value) in values {
            self.publish(t.camera(name, leaf), value, true).await;
        }
        if let Some(settings) = &camera.sharing_settings {
            // The sharing select's attributes: schedule, off-hours level,
            // clip limit, audio, and whether the schedule is open now.
            self.publish(
                t.camera(name, "sharing/attributes"),
                json!(settings).to_string(),
                true,
            )
            .await;
        }
        self.cameras.insert(name.to_string(), camera.clone());
    }

    /// The pending requests as the pending sensor's attributes.
    async fn publish_pending(&mut self) {
        let Some(pending) = self.blocking(|h| h.pending_requests()).await else {
            return;
        };
        let requests: Vec<_> = pending.iter().map(request_json).collect();
        self.publish(
            self.topics.hub("pending_requests/attributes"),
            json!({ "requests": requests }).to_string(),
            true,
        )
        .await;
    }

    async fn on_event(&mut self, event: HostEvent) {
        match event {
            HostEvent::Camera(camera) => {
                let new = !self.cameras.contains_key(&camera.name);
                self.publish_camera(&camera).await;
                if new {
                    self.set_snapshot_cameras();
                }
            }
            HostEvent::Hub(hub) => self.publish_hub(&hub).await,
            HostEvent::RequestCreated(request) => {
                let mut payload = request_json(&request);
                payload["event_type"] = json!("police_request");
                // Not retained: an event fires when it arrives, never again.
                self.publish(self.topics.request_event(), payload.to_string(), false)
                    .await;
                self.publish_pending().await;
            }
            HostEvent::RequestChanged(_) => self.publish_pending().await,
        }
    }

    async fn on_message(&mut self, topic: &str, payload: &[u8], retain: bool) {
        let cameras = &self.cameras;
        let parsed = command::parse(self.topics, topic, payload, |c| cameras.contains_key(c));
        let command = match parsed {
            Ok(Incoming::Ignore) => return,
            Ok(Incoming::HaOnline) => {
                info!("mqtt: Home Assistant came online; sending discovery again");
                self.republish_discovery().await;
                return;
            }
            Ok(Incoming::Command(_)) if retain => {
                warn!(
                    %topic,
                    "mqtt: command rejected: it is a retained message (it would be carried out \
                     again on every reconnect); clear it with an empty retained message"
                );
                self.publish_state().await;
                return;
            }
            Ok(Incoming::Command(command)) => command,
            Err(problem) => {
                warn!(%topic, "mqtt: command rejected: {problem}");
                self.publish_state().await;
                return;
            }
        };
        // Answers go only to requests that are waiting: anything else is a
        // stale or mistyped id, and never reaches the daemon.
        if let Command::Approve { id } | Command::Deny { id, .. } = &command {
            let id = id.clone();
            let pending = self
                .blocking(move |h| h.pending_requests().iter().any(|r| r.id == id))
                .await;
            if pending != Some(true) {
                warn!(%topic, "mqtt: command rejected: no pending request `{}`", command_id(&command));
                self.publish_state().await;
                return;
            }
        }
        let what = format!("{command:?}");
        let result = self
            .blocking(move |h| match command {
                Command::Sharing { camera, level } => h.set_sharing(ACTOR, &camera, &level),
                Command::Recording { camera, on } => h.set_recording(ACTOR, &camera, on),
                Command::Privacy(on) => h.set_privacy(ACTOR, on),
                Command::Approve { id } => h.approve_request(ACTOR, &id),
                Command::Deny { id, reason } => h.deny_request(ACTOR, &id, &reason),
                Command::EndLiveShares { camera } => h
                    .end_live_shares(ACTOR, camera.as_deref())
                    .map(|ended| info!(ended, "mqtt: live shares ended")),
            })
            .await;
        match result {
            Some(Ok(())) => info!(%topic, command = %what, "mqtt: command carried out"),
            Some(Err(e)) => {
                warn!(%topic, command = %what, "mqtt: command refused by the daemon: {e}")
            }
            None => {}
        }
        // The true state, whatever happened (Home Assistant may have shown
        // the new value optimistically).
        self.publish_state().await;
    }

    /// Runs a Host call on the blocking pool; `None` if it panicked.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Host) -> T + Send + 'static,
    ) -> Option<T> {
        let host = self.host.clone();
        match tokio::task::spawn_blocking(move || f(host.as_ref())).await {
            Ok(v) => Some(v),
            Err(e) => {
                error!("mqtt: a call into the daemon failed: {e}");
                None
            }
        }
    }

    fn set_snapshot_cameras(&self) {
        let names: Vec<String> = self.cameras.keys().cloned().collect();
        if let Ok(mut list) = self.snapshot_cameras.lock() {
            *list = names;
        }
    }

    /// Publishes every camera's snapshot now and then every interval.
    fn spawn_snapshots(&self) -> JoinHandle<()> {
        let client = self.client.clone();
        let host = self.host.clone();
        let cameras = self.snapshot_cameras.clone();
        let topics = self.topics.clone();
        let interval = self.config.snapshot_interval.max(Duration::from_secs(1));
        tokio::spawn(async move {
            // Cameras whose last snapshot failed (log once, not every round).
            let mut failing: HashMap<String, String> = HashMap::new();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let names = cameras.lock().map(|l| l.clone()).unwrap_or_default();
                for name in names {
                    let h = host.clone();
                    let camera = name.clone();
                    let result =
                        tokio::task::spawn_blocking(move || h.snapshot_jpeg(&camera)).await;
                    let problem = match result {
                        Ok(Ok(jpeg)) if !jpeg.is_empty() => {
                            failing.remove(&name);
                            let options = PublishOptions::new(QoS::AtMostOnce).retain(true);
                            if let Err(e) = client
                                .publish(topics.camera(&name, "snapshot"), jpeg, options)
                                .await
                            {
                                debug!(camera = %name, "mqtt: snapshot not queued: {e}");
                            }
                            continue;
                        }
                        Ok(Ok(_)) => "the daemon returned an empty snapshot".to_string(),
                        Ok(Err(e)) => e.to_string(),
                        Err(e) => format!("snapshot call failed: {e}"),
                    };
                    if failing.get(&name) != Some(&problem) {
                        warn!(camera = %name, "mqtt: no snapshot: {problem}");
                    } else {
                        debug!(camera = %name, "mqtt: no snapshot: {problem}");
                    }
                    failing.insert(name, problem);
                }
            }
        })
    }
}

/// A task that is aborted when this is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn command_id(command: &Command) -> &str {
    match command {
        Command::Approve { id } | Command::Deny { id, .. } => id,
        _ => "",
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "ON"
    } else {
        "OFF"
    }
}

/// A number for a sensor; `None` (unknown to Home Assistant) if not finite.
fn number(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "None".to_string()
    }
}

fn request_json(r: &PoliceRequest) -> serde_json::Value {
    json!({
        "id": r.id,
        "agency": r.agency,
        "case_id": r.case_id,
        "incident_type": r.incident_type,
        "state": r.state,
        "window_from": r.window_from,
        "window_to": r.window_to,
        "cameras": r.cameras,
        "expires": r.expires,
    })
}

/// A connection error in words (refusals named plainly).
fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker refused the connection ({code:?}); check username and password")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_debug() {
        assert_eq!(number(14.96, 1), "15.0");
        assert_eq!(number(f64::NAN, 1), "None");
        assert_eq!(number(2_000_000.4, 0), "2000000");
        let config = MqttConfig {
            password: Some("hunter2".into()),
            ..MqttConfig::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
