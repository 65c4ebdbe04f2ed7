//! A real broker (Debian's mosquitto), an observing MQTT client, a fake
//! Host (our own interface) and a log capture, for the plugin's tests.

#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use porchlight_plugin_api::{
    CameraState, CommandError, Host, HostEvent, HubState, PoliceRequest, SHARING_LEVELS,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, PublishOptions, QoS, Transport};
use tokio::sync::broadcast;

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";
pub const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0fake-jpeg\xFF\xD9";

// ---------------------------------------------------------------- broker

pub struct TlsFiles {
    pub ca: PathBuf,
    pub user: String,
    pub password: String,
}

/// One mosquitto on 127.0.0.1, stopped on drop.
pub struct Broker {
    pub port: u16,
    pub dir: tempfile::TempDir,
    conf: PathBuf,
    child: Option<Child>,
    pub tls: Option<TlsFiles>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Broker {
    /// Anonymous, plain TCP.
    pub fn plain() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "user root\npersistence false\nlog_type all\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
            ),
        )
        .unwrap();
        let mut b = Broker {
            port,
            dir,
            conf,
            child: None,
            tls: None,
        };
        b.start();
        b
    }

    /// TLS (a CA and server certificate made with rcgen) with a password file.
    pub fn tls(user: &str, password: &str) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let (ca, cert, key) = make_pki(dir.path());
        let passwd = dir.path().join("passwd");
        let status = Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&passwd)
            .args([user, password])
            .status()
            .unwrap();
        assert!(status.success(), "mosquitto_passwd");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "user root\npersistence false\nlog_type all\nlistener {port} 127.0.0.1\n\
                 cafile {}\ncertfile {}\nkeyfile {}\npassword_file {}\nallow_anonymous false\n",
                ca.display(),
                cert.display(),
                key.display(),
                passwd.display()
            ),
        )
        .unwrap();
        let mut b = Broker {
            port,
            dir,
            conf,
            child: None,
            tls: Some(TlsFiles {
                ca,
                user: user.into(),
                password: password.into(),
            }),
        };
        b.start();
        b
    }

    /// Starts mosquitto (again) on the same port and waits until it listens.
    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("mosquitto.log"))
            .unwrap();
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&self.conf)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills mosquitto (SIGKILL: no goodbye to anyone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// CA + server certificate (localhost, 127.0.0.1) as PEM files.
fn make_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Porchlight test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    (
        write("ca.pem", &ca_pem),
        write("server.pem", &cert.pem()),
        write("server-key.pem", &key.serialize_pem()),
    )
}

// ---------------------------------------------------------------- observer

#[derive(Clone, Debug)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Msg {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", self.topic, self.text()))
    }
}

/// A second MQTT client subscribed to `#`, recording what it receives.
pub struct Observer {
    pub client: AsyncClient,
    pub msgs: Arc<Mutex<Vec<Msg>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    pub async fn connect(broker: &Broker) -> Observer {
        let id = format!("observer{}", rand::random::<u32>());
        let mut options = MqttOptions::new(id, rumqttc::Broker::tcp("127.0.0.1", broker.port));
        options.set_max_packet_size(16 << 20, 16 << 20);
        if let Some(tls) = &broker.tls {
            options.set_credentials(tls.user.clone(), tls.password.clone().into_bytes());
            options.set_transport(Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(Arc::new(client_tls(&tls.ca))),
            ));
        }
        let (client, mut eventloop) = AsyncClient::builder(options).capacity(100).build();
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let record = msgs.clone();
        let sub = client.clone();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        sub.subscribe("#", QoS::AtLeastOnce).await.unwrap();
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        record.lock().unwrap().push(Msg {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("observer subscribed in time")
            .unwrap();
        Observer { client, msgs, task }
    }

    pub fn all(&self) -> Vec<Msg> {
        self.msgs.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.msgs.lock().unwrap().clear();
    }

    /// The newest message on `topic`.
    pub fn last(&self, topic: &str) -> Option<Msg> {
        self.all().into_iter().rev().find(|m| m.topic == topic)
    }

    pub fn count(&self, topic: &str) -> usize {
        self.all().iter().filter(|m| m.topic == topic).count()
    }

    /// Waits until `pred` holds for the messages so far.
    pub async fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&[Msg]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if pred(&self.msgs.lock().unwrap()) {
                return;
            }
            if Instant::now() > deadline {
                let topics: Vec<String> = self
                    .all()
                    .iter()
                    .map(|m| format!("{} = {:.60}", m.topic, m.text()))
                    .collect();
                panic!("timed out waiting for {what}; seen:\n{}", topics.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for `topic` to carry `payload` (newest message).
    pub async fn wait_value(&self, topic: &str, payload: &str, secs: u64) {
        self.wait_for(&format!("{topic} = {payload}"), secs, |msgs| {
            msgs.iter()
                .rev()
                .find(|m| m.topic == topic)
                .is_some_and(|m| m.payload == payload.as_bytes())
        })
        .await;
    }

    pub async fn publish(&self, topic: &str, payload: &[u8], retain: bool) {
        self.client
            .publish(
                topic.to_string(),
                payload.to_vec(),
                PublishOptions::new(QoS::AtLeastOnce).retain(retain),
            )
            .await
            .unwrap();
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn client_tls(ca: &Path) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

// ---------------------------------------------------------------- fake host

/// In-memory state; records every command; emits events like the daemon.
pub struct FakeHost {
    pub state: Mutex<(HubState, Vec<CameraState>)>,
    pub pending: Mutex<Vec<PoliceRequest>>,
    pub commands: Mutex<Vec<String>>,
    pub events: broadcast::Sender<HostEvent>,
}

pub fn camera(name: &str) -> CameraState {
    CameraState {
        name: name.into(),
        online: true,
        recording: true,
        fps: 15.0,
        bitrate_bps: 2_000_000.0,
        storage_bytes: 123_456_789,
        oldest_footage_age_s: Some(86_400),
        sharing: "registered".into(),
        motion: Some(false),
        live_share_active: false,
        sharing_settings: None,
    }
}

pub fn request(id: &str) -> PoliceRequest {
    PoliceRequest {
        id: id.into(),
        agency: "Dallas Police Department".into(),
        case_id: "DPD-2026-0042".into(),
        incident_type: "burglary".into(),
        state: "pending".into(),
        window_from: "2026-11-23T21:00:00Z".into(),
        window_to: "2026-11-23T21:30:00Z".into(),
        cameras: vec!["porch".into()],
        expires: "2026-11-30T21:00:00Z".into(),
    }
}

impl FakeHost {
    /// Cameras `porch` (snapshots work) and `garage` (snapshots fail), one
    /// pending request `req_1`.
    pub fn new() -> Arc<FakeHost> {
        let hub = HubState {
            privacy: false,
            pending_requests: 1,
            last_relay_access: Some("2026-11-23T21:05:00Z Dallas PD viewed porch".into()),
            disk_free_bytes: 500_000_000_000,
            version: "0.1.0".into(),
        };
        Arc::new(FakeHost {
            state: Mutex::new((hub, vec![camera("porch"), camera("garage")])),
            pending: Mutex::new(vec![request("req_1")]),
            commands: Mutex::new(Vec::new()),
            events: broadcast::channel(64).0,
        })
    }

    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }

    pub fn emit(&self, event: HostEvent) {
        let _ = self.events.send(event);
    }

    fn record(&self, s: String) {
        self.commands.lock().unwrap().push(s);
    }

    fn with_camera(
        &self,
        camera: &str,
        f: impl FnOnce(&mut CameraState),
    ) -> Result<(), CommandError> {
        let mut state = self.state.lock().unwrap();
        let cam = state
            .1
            .iter_mut()
            .find(|c| c.name == camera)
            .ok_or_else(|| CommandError::UnknownCamera(camera.into()))?;
        f(cam);
        let event = HostEvent::Camera(cam.clone());
        drop(state);
        self.emit(event);
        Ok(())
    }
}

impl Host for FakeHost {
    fn state(&self) -> (HubState, Vec<CameraState>) {
        self.state.lock().unwrap().clone()
    }
    fn pending_requests(&self) -> Vec<PoliceRequest> {
        self.pending.lock().unwrap().clone()
    }
    fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }
    fn snapshot_jpeg(&self, camera: &str) -> Result<Vec<u8>, CommandError> {
        match camera {
            "porch" => Ok(JPEG.to_vec()),
            other => Err(CommandError::Failed(format!("{other}: no keyframe yet"))),
        }
    }
    fn set_sharing(&self, actor: &str, camera: &str, level: &str) -> Result<(), CommandError> {
        self.record(format!("sharing {camera} {level} by {actor}"));
        if !SHARING_LEVELS.contains(&level) {
            return Err(CommandError::Invalid(level.into()));
        }
        if level == "emergency_live" {
            return Err(CommandError::Refused("live access needs the relay".into()));
        }
        self.with_camera(camera, |c| c.sharing = level.into())
    }
    fn set_privacy(&self, actor: &str, on: bool) -> Result<(), CommandError> {
        self.record(format!("privacy {on} by {actor}"));
        let hub = {
            let mut state = self.state.lock().unwrap();
            state.0.privacy = on;
            state.0.clone()
        };
        self.emit(HostEvent::Hub(hub));
        Ok(())
    }
    fn set_recording(&self, actor: &str, camera: &str, on: bool) -> Result<(), CommandError> {
        self.record(format!("recording {camera} {on} by {actor}"));
        self.with_camera(camera, |c| c.recording = on)
    }
    fn approve_request(&self, actor: &str, id: &str) -> Result<(), CommandError> {
        self.record(format!("approve {id} by {actor}"));
        self.answer(id, "approved")
    }
    fn deny_request(&self, actor: &str, id: &str, reason: &str) -> Result<(), CommandError> {
        self.record(format!("deny {id} ({reason}) by {actor}"));
        self.answer(id, "denied")
    }
    fn end_live_shares(&self, actor: &str, camera: Option<&str>) -> Result<usize, CommandError> {
        self.record(format!("end live shares {camera:?} by {actor}"));
        let mut ended = 0;
        let cameras: Vec<CameraState> = {
            let mut state = self.state.lock().unwrap();
            for c in state.1.iter_mut() {
                if c.live_share_active && camera.is_none_or(|name| name == c.name) {
                    c.live_share_active = false;
                    ended += 1;
                }
            }
            state.1.clone()
        };
        for c in cameras {
            self.emit(HostEvent::Camera(c));
        }
        Ok(ended)
    }
}

impl FakeHost {
    fn answer(&self, id: &str, outcome: &str) -> Result<(), CommandError> {
        let mut pending = self.pending.lock().unwrap();
        let Some(i) = pending.iter().position(|r| r.id == id) else {
            return Err(CommandError::Refused(format!("no pending request {id}")));
        };
        let mut r = pending.remove(i);
        r.state = outcome.into();
        let count = pending.len() as u32;
        drop(pending);
        let hub = {
            let mut state = self.state.lock().unwrap();
            state.0.pending_requests = count;
            state.0.clone()
        };
        self.emit(HostEvent::RequestChanged(r));
        self.emit(HostEvent::Hub(hub));
        Ok(())
    }
}

// ---------------------------------------------------------------- logs

/// Everything the plugin logs, from every test in this binary.
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("porchlight_mqtt=debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buf
    })
    .clone()
}

pub fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        // Also to stderr, for `--nocapture`.
        let _ = std::io::stderr().write_all(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
