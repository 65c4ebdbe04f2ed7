//! WS-Discovery for ONVIF cameras (SOAP 1.2 over UDP, WS-Discovery 2005/04
//! as the ONVIF Core spec requires).
//!
//! Two ways in:
//!
//! - [`probe`]: multicast a Probe for `dn:NetworkVideoTransmitter` and
//!   `tds:Device` to 239.255.255.250:3702 from each chosen interface, collect
//!   the ProbeMatches whose `RelatesTo` is our `MessageID` for a bounded time,
//!   deduplicated by endpoint reference.
//! - [`listen`]: a long-running task joined to the multicast group on the
//!   chosen interfaces that turns Hello and Bye announcements (and, if asked,
//!   periodic probes) into [`DiscoveryEvent`]s. A Hello that does not carry
//!   XAddrs or does not say NetworkVideoTransmitter is followed by a unicast
//!   Probe to the announcing host; only a matching answer is reported.
//!
//! Nothing here speaks SOAP over HTTP: a device is listed even if its XAddrs
//! turn out not to answer. That is the ONVIF client's job.

mod message;
mod net;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::units::HumanDuration;

pub use message::{
    build_probe, new_message_id, parse, parse_scopes, percent_decode, type_local_name, Body,
    EndpointDescription, Message, OnvifScopes, ParseError, MAX_DATAGRAM, MAX_DEPTH, MAX_ELEMENTS,
    MAX_LIST_ITEMS, MAX_MATCHES, MAX_TEXT,
};
pub use net::{list_interfaces, resolve_interfaces, Interface};

/// The WS-Discovery multicast group.
pub const MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
/// The WS-Discovery port.
pub const PORT: u16 = 3702;
/// How long [`probe`] collects answers unless told otherwise.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Types sent in our Probe (prefixes declared on the envelope).
pub const DEFAULT_TYPES: [&str; 2] = ["dn:NetworkVideoTransmitter", "tds:Device"];

/// Errors from [`probe`] and [`listen`]. Bad datagrams are never errors:
/// they are logged and dropped.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("no usable IPv4 interface for ONVIF discovery (give `interfaces` explicitly)")]
    NoInterfaces,
    #[error("unknown interface {0:?} (neither an IPv4 address nor an interface name with one)")]
    UnknownInterface(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl DiscoveryError {
    fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// A camera that answered a Probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredDevice {
    /// Endpoint reference address, usually `urn:uuid:...`. Empty if the
    /// camera left it out (then deduplication falls back to the first XAddr).
    pub endpoint: String,
    /// QNames as the camera sent them (`dn:NetworkVideoTransmitter`, ...).
    pub types: Vec<String>,
    /// Raw scope URIs.
    pub scopes: Vec<String>,
    /// From `onvif://www.onvif.org/name/...`, percent-decoded.
    pub name: Option<String>,
    /// From `onvif://www.onvif.org/hardware/...`, percent-decoded.
    pub hardware: Option<String>,
    /// From `onvif://www.onvif.org/location/...`, percent-decoded.
    pub location: Option<String>,
    /// Device service URLs (not checked here).
    pub xaddrs: Vec<String>,
    pub metadata_version: u32,
    /// Where the answer came from.
    pub from: SocketAddr,
}

impl DiscoveredDevice {
    /// Builds a device from a parsed description.
    pub fn from_description(d: EndpointDescription, from: SocketAddr) -> Self {
        let scopes = parse_scopes(&d.scopes);
        Self {
            endpoint: d.endpoint,
            types: d.types,
            scopes: d.scopes,
            name: scopes.name,
            hardware: scopes.hardware,
            location: scopes.location,
            xaddrs: d.xaddrs,
            metadata_version: d.metadata_version,
            from,
        }
    }

    /// The deduplication key: the endpoint reference, else the first XAddr,
    /// else the sender.
    pub fn key(&self) -> String {
        if !self.endpoint.is_empty() {
            self.endpoint.clone()
        } else if let Some(x) = self.xaddrs.first() {
            x.clone()
        } else {
            self.from.to_string()
        }
    }

    /// True if one of the Types has the local name NetworkVideoTransmitter.
    pub fn is_video_transmitter(&self) -> bool {
        self.types
            .iter()
            .any(|t| type_local_name(t) == "NetworkVideoTransmitter")
    }
}

/// What the listener reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// A camera announced itself (Hello), answered a follow-up Probe, or
    /// turned up (new or changed) in a periodic probe.
    Discovered {
        endpoint: String,
        xaddrs: Vec<String>,
        scopes: Vec<String>,
        types: Vec<String>,
        metadata_version: u32,
        from: SocketAddr,
    },
    /// An endpoint said Bye. Not filtered: the receiver matches endpoints it
    /// knows.
    Gone { endpoint: String },
}

impl DiscoveryEvent {
    fn discovered(d: &DiscoveredDevice) -> Self {
        Self::Discovered {
            endpoint: d.endpoint.clone(),
            xaddrs: d.xaddrs.clone(),
            scopes: d.scopes.clone(),
            types: d.types.clone(),
            metadata_version: d.metadata_version,
            from: d.from,
        }
    }
}

/// `[discovery]` in the config file (validated by the config module).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// IPv4 addresses or interface names; empty: every non-loopback IPv4
    /// interface that is up and multicast-capable.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// How often the listener re-probes (Hello/Bye are heard in between).
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// How long one probe collects answers.
    #[serde(default = "default_probe_timeout")]
    pub probe_timeout: HumanDuration,
}

fn default_true() -> bool {
    true
}
fn default_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_probe_timeout() -> HumanDuration {
    HumanDuration(DEFAULT_PROBE_TIMEOUT)
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interfaces: Vec::new(),
            interval: default_interval(),
            probe_timeout: default_probe_timeout(),
        }
    }
}

impl DiscoveryConfig {
    pub fn probe_options(&self) -> ProbeOptions {
        ProbeOptions {
            interfaces: self.interfaces.clone(),
            timeout: self.probe_timeout.0,
            ..ProbeOptions::default()
        }
    }

    pub fn listen_options(&self) -> ListenOptions {
        ListenOptions {
            probe: self.probe_options(),
            probe_interval: Some(self.interval.0),
            ..ListenOptions::default()
        }
    }
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// IPv4 addresses or interface names to send from; empty: every
    /// non-loopback IPv4 interface that is up and multicast-capable.
    pub interfaces: Vec<String>,
    /// How long to collect answers.
    pub timeout: Duration,
    /// Where Probes go: 239.255.255.250:3702 except in tests.
    pub target: SocketAddrV4,
    /// QNames to probe for (prefixes `dn:` and `tds:` are declared).
    pub types: Vec<String>,
    /// Multicast TTL (1: this link only).
    pub ttl: u32,
    /// Send the Probe this many extra times, 50-250 ms apart (SOAP-over-UDP
    /// MULTICAST_UDP_REPEAT); answers to any copy count.
    pub repeat: u32,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            timeout: DEFAULT_PROBE_TIMEOUT,
            target: SocketAddrV4::new(MULTICAST_GROUP, PORT),
            types: DEFAULT_TYPES.iter().map(|s| s.to_string()).collect(),
            ttl: 1,
            repeat: 1,
        }
    }
}

/// How to listen.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Interfaces (joined on), port and group (`probe.target`) and the
    /// follow-up/periodic probe settings.
    pub probe: ProbeOptions,
    /// Re-probe this often (first probe at start); `None`: only Hello/Bye.
    pub probe_interval: Option<Duration>,
    /// How long a follow-up unicast Probe after a Hello waits.
    pub resolve_timeout: Duration,
    /// Event channel capacity.
    pub channel_capacity: usize,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            probe: ProbeOptions::default(),
            probe_interval: None,
            resolve_timeout: DEFAULT_PROBE_TIMEOUT,
            channel_capacity: 256,
        }
    }
}

/// Most follow-up Probes in flight at once (a LAN of chatty WSD printers
/// must not make us flood it).
const MAX_FOLLOW_UPS: usize = 16;

/// True if `relates_to` answers `message_id`. Some cameras echo the UUID
/// without the `urn:` prefix; the UUID itself must match.
fn relates(relates_to: &str, message_id: &str) -> bool {
    let strip = |s: &str| {
        let s = s.trim();
        let s = s.strip_prefix("urn:").unwrap_or(s);
        s.to_ascii_lowercase()
    };
    strip(relates_to) == strip(message_id)
}

/// Multicasts a Probe from each chosen interface and collects the answers
/// for `options.timeout`. Devices are deduplicated by endpoint reference
/// (the highest MetadataVersion wins; XAddrs are merged).
pub async fn probe(options: &ProbeOptions) -> Result<Vec<DiscoveredDevice>, DiscoveryError> {
    let interfaces = resolve_interfaces(&options.interfaces)?;
    let mut sockets = Vec::new();
    for iface in &interfaces {
        match net::probe_socket(*iface, options.ttl) {
            Ok(s) => sockets.push(s),
            Err(e) => {
                tracing::warn!(interface = %iface, error = %e, "ONVIF discovery: cannot open a socket")
            }
        }
    }
    if sockets.is_empty() {
        return Err(DiscoveryError::NoInterfaces);
    }
    let message_id = new_message_id();
    let probe = build_probe(&message_id, &options.types);
    let deadline = Instant::now() + options.timeout;
    let target = SocketAddr::V4(options.target);

    let sockets: Vec<Arc<UdpSocket>> = sockets.into_iter().map(Arc::new).collect();
    let mut sent_any = false;
    for s in &sockets {
        match s.send_to(probe.as_bytes(), target).await {
            Ok(_) => sent_any = true,
            Err(e) => {
                tracing::warn!(from = ?s.local_addr().ok(), error = %e, "ONVIF discovery: Probe not sent")
            }
        }
    }
    if !sent_any {
        return Err(DiscoveryError::io(
            format!("sending a Probe to {target}"),
            std::io::Error::other("no interface could send"),
        ));
    }
    // Repeats go out in the background while we collect.
    let repeats = {
        let sockets = sockets.clone();
        let probe = probe.clone();
        let repeat = options.repeat;
        tokio::spawn(async move {
            for _ in 0..repeat {
                let delay = rand::random_range(50..=250);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                for s in &sockets {
                    let _ = s.send_to(probe.as_bytes(), target).await;
                }
            }
        })
    };

    let collectors = sockets
        .iter()
        .map(|s| collect_matches(s, &message_id, deadline, None));
    let answers = futures::future::join_all(collectors).await;
    repeats.abort();
    Ok(dedup(answers.into_iter().flatten()))
}

/// Sends one unicast Probe to `to` and waits up to `timeout` for a match
/// whose endpoint is `endpoint` (any, if empty). Used after a Hello without
/// XAddrs; public for the "add camera by address" path.
pub async fn probe_unicast(
    to: SocketAddr,
    endpoint: &str,
    options: &ProbeOptions,
    timeout: Duration,
) -> Result<Option<DiscoveredDevice>, DiscoveryError> {
    let bind: SocketAddr = (Ipv4Addr::UNSPECIFIED, 0).into();
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|e| DiscoveryError::io("binding a UDP socket", e))?;
    let message_id = new_message_id();
    let probe = build_probe(&message_id, &options.types);
    socket
        .send_to(probe.as_bytes(), to)
        .await
        .map_err(|e| DiscoveryError::io(format!("sending a Probe to {to}"), e))?;
    let deadline = Instant::now() + timeout;
    let want = (!endpoint.is_empty()).then_some(endpoint);
    let found = collect_matches(&socket, &message_id, deadline, want).await;
    Ok(found.into_iter().next())
}

/// Receives until `deadline` (or, with `want`, until that endpoint answers).
async fn collect_matches(
    socket: &UdpSocket,
    message_id: &str,
    deadline: Instant,
    want: Option<&str>,
) -> Vec<DiscoveredDevice> {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut found = Vec::new();
    loop {
        let (n, from) = match tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(got)) => got,
            Ok(Err(e)) => {
                // ICMP errors from earlier sends surface here on Linux; keep going.
                tracing::debug!(error = %e, "ONVIF discovery: receive error");
                continue;
            }
        };
        if n > MAX_DATAGRAM {
            tracing::debug!(%from, "ONVIF discovery: oversized datagram dropped");
            continue;
        }
        let message = match parse(&buf[..n]) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(%from, error = %e, "ONVIF discovery: datagram ignored");
                continue;
            }
        };
        let Body::ProbeMatches(matches) = message.body else {
            continue;
        };
        match message.relates_to.as_deref() {
            Some(r) if relates(r, message_id) => {}
            other => {
                tracing::debug!(%from, relates_to = ?other, "ONVIF discovery: ProbeMatch for someone else's Probe");
                continue;
            }
        }
        for m in matches {
            let device = DiscoveredDevice::from_description(m, from);
            match want {
                Some(w) if device.endpoint != w => continue,
                Some(_) => return vec![device],
                None => found.push(device),
            }
        }
    }
    found
}

fn dedup(devices: impl IntoIterator<Item = DiscoveredDevice>) -> Vec<DiscoveredDevice> {
    let mut out: Vec<DiscoveredDevice> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for d in devices {
        match index.get(&d.key()) {
            None => {
                index.insert(d.key(), out.len());
                out.push(d);
            }
            Some(&i) => {
                let kept = &mut out[i];
                if d.metadata_version > kept.metadata_version {
                    let mut xaddrs = d.xaddrs.clone();
                    for x in &kept.xaddrs {
                        if !xaddrs.contains(x) {
                            xaddrs.push(x.clone());
                        }
                    }
                    *kept = DiscoveredDevice { xaddrs, ..d };
                } else {
                    for x in d.xaddrs {
                        if !kept.xaddrs.contains(&x) {
                            kept.xaddrs.push(x);
                        }
                    }
                }
            }
        }
    }
    out
}

/// Starts the listener: joins the group on the chosen interfaces (port and
/// group from `options.probe.target`) and reports Hello/Bye (and periodic
/// probe results) until the receiver is dropped.
///
/// Socket setup happens inside the task; a failure ends the task with the
/// error (and closes the channel).
pub fn listen(
    options: ListenOptions,
) -> (
    JoinHandle<Result<(), DiscoveryError>>,
    mpsc::Receiver<DiscoveryEvent>,
) {
    let (tx, rx) = mpsc::channel(options.channel_capacity.max(1));
    let handle = tokio::spawn(run_listener(options, tx));
    (handle, rx)
}

/// What the listener has reported, to report only news.
#[derive(Default)]
struct Known {
    devices: HashMap<String, (u32, Vec<String>)>,
    following_up: HashSet<String>,
}

impl Known {
    /// Records `d`; true if it is new or changed.
    fn update(&mut self, d: &DiscoveredDevice) -> bool {
        let value = (d.metadata_version, d.xaddrs.clone());
        self.devices.insert(d.key(), value.clone()) != Some(value)
    }
}

async fn run_listener(
    options: ListenOptions,
    tx: mpsc::Sender<DiscoveryEvent>,
) -> Result<(), DiscoveryError> {
    let interfaces = resolve_interfaces(&options.probe.interfaces)?;
    let group = *options.probe.target.ip();
    let port = options.probe.target.port();
    let socket = net::listen_socket(group, port, &interfaces)
        .map_err(|e| DiscoveryError::io(format!("joining {group}:{port}"), e))?;
    tracing::info!(%group, port, interfaces = ?interfaces, "ONVIF discovery: listening for Hello/Bye");

    let known = Arc::new(tokio::sync::Mutex::new(Known::default()));
    let follow_ups = Arc::new(Semaphore::new(MAX_FOLLOW_UPS));
    let mut ticker = options.probe_interval.map(|every| {
        let mut t = tokio::time::interval(every.max(Duration::from_secs(1)));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let tick = async {
            match ticker.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tx.closed() => return Ok(()),
            _ = tick => {
                let tx = tx.clone();
                let known = known.clone();
                let probe_options = options.probe.clone();
                tokio::spawn(async move {
                    match probe(&probe_options).await {
                        Ok(devices) => {
                            for d in devices {
                                if known.lock().await.update(&d) {
                                    let _ = tx.send(DiscoveryEvent::discovered(&d)).await;
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "ONVIF discovery: periodic probe failed"),
                    }
                });
            }
            received = socket.recv_from(&mut buf) => {
                let (n, from) = match received {
                    Ok(got) => got,
                    Err(e) => {
                        tracing::debug!(error = %e, "ONVIF discovery: receive error");
                        continue;
                    }
                };
                if n > MAX_DATAGRAM {
                    continue;
                }
                let message = match parse(&buf[..n]) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::debug!(%from, error = %e, "ONVIF discovery: datagram ignored");
                        continue;
                    }
                };
                match message.body {
                    Body::Hello(hello) => {
                        let device = DiscoveredDevice::from_description(hello, from);
                        if device.is_video_transmitter() && !device.xaddrs.is_empty() {
                            if known.lock().await.update(&device) {
                                let _ = tx.send(DiscoveryEvent::discovered(&device)).await;
                            }
                            continue;
                        }
                        // Not enough to go on: ask the host directly.
                        let key = device.key();
                        if !known.lock().await.following_up.insert(key.clone()) {
                            continue;
                        }
                        let Ok(permit) = follow_ups.clone().try_acquire_owned() else {
                            known.lock().await.following_up.remove(&key);
                            tracing::debug!(%from, "ONVIF discovery: too many follow-up Probes; Hello dropped");
                            continue;
                        };
                        let to = SocketAddr::new(from.ip(), port);
                        let tx = tx.clone();
                        let known = known.clone();
                        let probe_options = options.probe.clone();
                        let timeout = options.resolve_timeout;
                        tokio::spawn(async move {
                            let _permit = permit;
                            let answer = probe_unicast(to, &device.endpoint, &probe_options, timeout).await;
                            let mut k = known.lock().await;
                            k.following_up.remove(&key);
                            match answer {
                                Ok(Some(found)) => {
                                    if k.update(&found) {
                                        drop(k);
                                        let _ = tx.send(DiscoveryEvent::discovered(&found)).await;
                                    }
                                }
                                Ok(None) => tracing::debug!(%to, endpoint = %device.endpoint, "ONVIF discovery: no answer to the follow-up Probe"),
                                Err(e) => tracing::debug!(%to, error = %e, "ONVIF discovery: follow-up Probe failed"),
                            }
                        });
                    }
                    Body::Bye { endpoint } => {
                        if endpoint.is_empty() {
                            continue;
                        }
                        known.lock().await.devices.remove(&endpoint);
                        let _ = tx.send(DiscoveryEvent::Gone { endpoint }).await;
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(endpoint: &str, version: u32, xaddrs: &[&str]) -> DiscoveredDevice {
        DiscoveredDevice {
            endpoint: endpoint.into(),
            types: vec![],
            scopes: vec![],
            name: None,
            hardware: None,
            location: None,
            xaddrs: xaddrs.iter().map(|s| s.to_string()).collect(),
            metadata_version: version,
            from: "127.0.0.1:3702".parse().unwrap(),
        }
    }

    #[test]
    fn dedup_keeps_newest_and_merges_xaddrs() {
        let out = dedup([
            dev("urn:uuid:a", 1, &["http://a/1"]),
            dev("urn:uuid:b", 1, &["http://b"]),
            dev("urn:uuid:a", 2, &["http://a/2"]),
            dev("urn:uuid:a", 2, &["http://a/1"]),
            dev("", 0, &["http://c"]),
            dev("", 0, &["http://c"]),
        ]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].metadata_version, 2);
        assert_eq!(out[0].xaddrs, ["http://a/2", "http://a/1"]);
    }

    #[test]
    fn relates_to_matching() {
        assert!(relates("urn:uuid:ABC", "urn:uuid:abc"));
        assert!(relates(" uuid:abc ", "urn:uuid:abc"));
        assert!(!relates("urn:uuid:abd", "urn:uuid:abc"));
        assert!(!relates("", "urn:uuid:abc"));
    }

    #[test]
    fn config_defaults() {
        let c: DiscoveryConfig =
            toml::from_str("interfaces = [\"eth0\"]\ninterval = \"1m\"").unwrap();
        assert!(c.enabled);
        assert_eq!(c.interval.0, Duration::from_secs(60));
        assert_eq!(c.probe_options().timeout, DEFAULT_PROBE_TIMEOUT);
        assert_eq!(
            c.listen_options().probe_interval,
            Some(Duration::from_secs(60))
        );
    }
}
