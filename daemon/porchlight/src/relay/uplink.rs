//! The outbound tunnel ("uplink"): the box dials the relay, so it needs no
//! open port, and then serves the very same relay API over that connection.
//!
//! The pattern is ONVIF Uplink's native `h2c-reverse`: the box is the TLS
//! client (presenting its device certificate), asks to upgrade the
//! connection with an HTTP/1.1 `Upgrade: h2c-reverse` request, and once the
//! relay answers `101` the roles reverse: the relay speaks HTTP/2 as the
//! client and the box answers as the server. The requests are handled by
//! [`super::api::router`], the same router as the listener's, so the policy
//! gate, rate limit, audit and deliveries are the same code.
//!
//! Who is calling comes from the relay's *server* certificate, verified
//! against the pinned agency CA and the dialled host name before a byte of
//! HTTP is sent: nothing the relay sends over the tunnel can choose it.
//!
//! A dropped or silent tunnel (HTTP/2 pings unanswered) is dialled again
//! after an ascending, jittered wait: 1 s doubling up to `uplink_retry_max`,
//! so many boxes never reconnect in step.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;

use super::listener::Caller;
use super::throttle::AuditThrottle;
use super::tls::PinnedCas;
use super::Stop;
use crate::audit::{AuditEvent, AuditLog, Component, EventType, Identity, Outcome};
use crate::config::UplinkTarget;
use crate::health::UplinkHealth;
use crate::policy::AgencyIdentity;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The relay must answer the upgrade request this fast.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest upgrade answer head the box reads.
const MAX_UPGRADE_HEAD: usize = 8 * 1024;
/// HTTP/2 ping after this much silence; the tunnel is closed when the
/// answer takes longer than [`PING_TIMEOUT`]. Together under the 30 s of
/// silence after which ONVIF Uplink says to reconnect.
const PING_INTERVAL: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(15);
/// First wait before dialling again; doubles per failure.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Requests the relay may have in flight at once over one tunnel.
const MAX_STREAMS: u32 = 32;
/// The protocol token of the upgrade (ONVIF Uplink, native h2c-reverse).
const UPGRADE_PROTOCOL: &str = "h2c-reverse";

/// What the uplink task needs.
pub struct UplinkParts {
    pub target: UplinkTarget,
    pub tls: Arc<rustls::ClientConfig>,
    pub pinned: Arc<PinnedCas>,
    pub router: Router,
    pub audit: AuditLog,
    /// Throttles audit entries for refused relay certificates.
    pub refusals: Arc<AuditThrottle>,
    pub health: Arc<crate::health::Health>,
    pub retry_max: Duration,
}

/// Why one attempt did not give a tunnel.
#[derive(Debug, thiserror::Error)]
enum DialError {
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The relay's certificate (or its proof of the key) was refused.
    #[error("the relay's TLS was refused: {0}")]
    RelayRefused(String),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("the relay refused the upgrade: {0}")]
    Upgrade(String),
}

/// An established tunnel, before HTTP/2 starts.
struct Tunnel {
    stream: TlsStream<TcpStream>,
    caller: Caller,
}

/// Keeps a tunnel to the relay up until `stop` leaves [`Stop::Running`]
/// (the daemon stops, or the owner leaves the relay program): then the
/// tunnel closes and is not dialled again.
pub async fn run(parts: UplinkParts, mut stop: watch::Receiver<Stop>) {
    let health = &parts.health.uplink;
    health.configured.store(true, Ordering::Relaxed);
    let mut backoff = Backoff::new(parts.retry_max);
    let mut ever_connected = false;
    tracing::info!(relay = %parts.target.url, "relay uplink: dialling out (no inbound port)");
    loop {
        let attempt = tokio::select! {
            attempt = dial(&parts) => attempt,
            _ = stop.changed() => return stopped(&parts, &stop),
        };
        match attempt {
            Ok(tunnel) => {
                if ever_connected {
                    health.reconnects_total.fetch_add(1, Ordering::Relaxed);
                }
                ever_connected = true;
                if serve(&parts, tunnel, health, &mut stop).await {
                    return stopped(&parts, &stop);
                }
                backoff.reset();
            }
            Err(e) => {
                health.failed_attempts_total.fetch_add(1, Ordering::Relaxed);
                tracing::info!(relay = %parts.target.url, error = %e, "relay uplink: attempt failed");
                if let DialError::RelayRefused(reason) = &e {
                    audit_refused_relay(&parts, reason).await;
                }
            }
        }
        let wait = backoff.next_wait();
        tracing::debug!(
            wait_ms = wait.as_millis() as u64,
            "relay uplink: waiting before the next attempt"
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return stopped(&parts, &stop),
        }
    }
}

fn stopped(parts: &UplinkParts, stop: &watch::Receiver<Stop>) {
    if *stop.borrow() == Stop::Left {
        tracing::info!(relay = %parts.target.url, "relay uplink: off, the owner left the relay program");
    }
}

/// TCP, TLS (relay certificate checked against the pinned CA), the agency
/// it speaks for, then the upgrade to reversed HTTP/2.
async fn dial(parts: &UplinkParts) -> Result<Tunnel, DialError> {
    let target = &parts.target;
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| DialError::Connect("timed out".into()))?
    .map_err(|e| DialError::Connect(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let peer = tcp
        .peer_addr()
        .map_err(|e| DialError::Connect(e.to_string()))?;
    let name = rustls::pki_types::ServerName::try_from(target.host.clone())
        .map_err(|e| DialError::Tls(format!("`{}` is not a TLS server name: {e}", target.host)))?;
    let connector = tokio_rustls::TlsConnector::from(parts.tls.clone());
    let mut stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| DialError::Tls("handshake timed out".into()))?
        .map_err(classify_tls_error)?;
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or_else(|| DialError::RelayRefused("the relay presented no certificate".into()))?;
    let Some(agency) = parts.pinned.agency_of(&certificate) else {
        return Err(DialError::RelayRefused(
            "the relay's certificate names no agency its CA vouches for".into(),
        ));
    };
    let identity = AgencyIdentity {
        name: agency,
        cert_fingerprint: crate::evidence::certificate_fingerprint(&certificate),
    };
    request_upgrade(&mut stream, target).await?;
    Ok(Tunnel {
        stream,
        caller: Caller { identity, peer },
    })
}

/// A rustls refusal of the relay's certificate is the relay's fault (and
/// audited); anything else is the network's.
fn classify_tls_error(e: std::io::Error) -> DialError {
    let refused = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::PeerMisbehaved(_)
            )
        });
    if refused {
        DialError::RelayRefused(e.to_string())
    } else {
        DialError::Tls(e.to_string())
    }
}

/// Sends `GET <path>` with `Upgrade: h2c-reverse` and reads the answer's
/// head one byte at a time, so not a byte of the HTTP/2 that follows it is
/// consumed here.
async fn request_upgrade(
    stream: &mut TlsStream<TcpStream>,
    target: &UplinkTarget,
) -> Result<(), DialError> {
    let host = match target.host.contains(':') {
        true => format!("[{}]:{}", target.host, target.port),
        false => format!("{}:{}", target.host, target.port),
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: {UPGRADE_PROTOCOL}\r\nUser-Agent: porchlight/{}\r\n\r\n",
        target.path,
        env!("CARGO_PKG_VERSION")
    );
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        let mut head = Vec::with_capacity(256);
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= MAX_UPGRADE_HEAD {
                return Ok(Err(format!(
                    "its answer's head is longer than {MAX_UPGRADE_HEAD} bytes"
                )));
            }
            if stream.read(&mut byte).await? == 0 {
                return Ok(Err("it closed the connection without answering".into()));
            }
            head.push(byte[0]);
        }
        Ok::<_, std::io::Error>(Ok(head))
    };
    let head = tokio::time::timeout(UPGRADE_TIMEOUT, exchange)
        .await
        .map_err(|_| DialError::Upgrade("no answer in time".into()))?
        .map_err(|e| DialError::Upgrade(e.to_string()))?
        .map_err(DialError::Upgrade)?;
    check_upgrade_answer(&head).map_err(DialError::Upgrade)
}

/// The answer must be `101` with `Upgrade: h2c-reverse`.
fn check_upgrade_answer(head: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(head).map_err(|_| "its answer is not text".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, status) = (parts.next().unwrap_or_default(), parts.next());
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.1 answer: {status_line:?}"));
    }
    if status != Some("101") {
        return Err(format!("answered {status_line:?} instead of 101"));
    }
    let upgrade = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("upgrade")
            .then(|| value.trim().to_string())
    });
    match upgrade {
        Some(value) if value.eq_ignore_ascii_case(UPGRADE_PROTOCOL) => Ok(()),
        Some(value) => Err(format!("it upgraded to `{value}`, not {UPGRADE_PROTOCOL}")),
        None => Err("its 101 has no Upgrade header".into()),
    }
}

/// Serves the relay API as the HTTP/2 server over the tunnel until it ends.
/// Returns true when it ended because the box is stopping or the owner
/// left the relay program.
async fn serve(
    parts: &UplinkParts,
    tunnel: Tunnel,
    health: &UplinkHealth,
    stop: &mut watch::Receiver<Stop>,
) -> bool {
    let Tunnel { stream, caller } = tunnel;
    let started = Instant::now();
    health.connected.store(true, Ordering::Relaxed);
    health.connections_total.fetch_add(1, Ordering::Relaxed);
    tracing::info!(relay = %parts.target.url, agency = %caller.identity.name, peer = %caller.peer, "relay uplink: connected");
    audit_tunnel(parts, &caller, EventType::UplinkConnected, None, None).await;
    let service = parts.router.clone().layer(axum::Extension(caller.clone()));
    let service = hyper_util::service::TowerToHyperService::new(service);
    let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(PING_INTERVAL))
        .keep_alive_timeout(PING_TIMEOUT)
        .max_concurrent_streams(MAX_STREAMS)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let (reason, stopping) = tokio::select! {
        result = connection.as_mut() => match result {
            Ok(()) => ("the relay closed the tunnel".to_string(), false),
            Err(e) => (format!("the tunnel broke: {e}"), false),
        },
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
            let reason = match *stop.borrow() {
                Stop::Left => "the owner left the relay program",
                _ => "the box is stopping",
            };
            (reason.to_string(), true)
        }
    };
    health.connected.store(false, Ordering::Relaxed);
    tracing::info!(relay = %parts.target.url, %reason, "relay uplink: disconnected");
    audit_tunnel(
        parts,
        &caller,
        EventType::UplinkDisconnected,
        Some(reason),
        Some(started.elapsed()),
    )
    .await;
    stopping
}

async fn audit_tunnel(
    parts: &UplinkParts,
    caller: &Caller,
    kind: EventType,
    reason: Option<String>,
    connected_for: Option<Duration>,
) {
    let mut details = serde_json::json!({
        "relay": parts.target.url.as_str(),
        "peer": caller.peer.to_string(),
    });
    if let Some(reason) = reason {
        details["reason"] = reason.into();
    }
    if let Some(d) = connected_for {
        details["connected_for_s"] = d.as_secs().into();
    }
    let identity = Identity::agency(
        &caller.identity.name,
        None,
        Some(&caller.identity.cert_fingerprint),
    );
    let event = AuditEvent::new(Component::Relay, kind, identity)
        .outcome(Outcome::ok())
        .details(details);
    if let Err(e) = parts.audit.append(event).await {
        tracing::error!(error = %e, "cannot write to the audit log");
    }
}

/// A relay whose certificate the pinned CA did not sign (or that names no
/// agency) got nothing; the owner sees that it tried. Throttled per relay
/// URL like failed inbound handshakes; the rest are counted into summaries.
async fn audit_refused_relay(parts: &UplinkParts, reason: &str) {
    let key = format!("uplink {}", parts.target.url);
    let Some(suppressed) = parts.refusals.admit(&key) else {
        return;
    };
    let mut details = serde_json::json!({ "relay": parts.target.url.as_str() });
    if suppressed > 0 {
        details["earlier_failures_not_logged_individually"] = suppressed.into();
    }
    let event = AuditEvent::new(
        Component::Relay,
        EventType::AuthFailure,
        Identity::anonymous(),
    )
    .outcome(Outcome::refused(format!(
        "uplink: relay certificate refused: {reason}"
    )))
    .details(details);
    if let Err(e) = parts.audit.append(event).await {
        tracing::error!(error = %e, "cannot write to the audit log");
    }
}

/// Ascending waits with jitter: 1 s, 2 s, 4 s, ... up to the maximum, each
/// scaled by a random factor in [0.5, 1] so boxes spread out.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Backoff {
        Backoff {
            next: FIRST_RETRY.min(max),
            max,
        }
    }

    fn reset(&mut self) {
        self.next = FIRST_RETRY.min(self.max);
    }

    fn next_wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_ascend_with_jitter_up_to_the_maximum_and_start_again_after_a_tunnel() {
        let mut backoff = Backoff::new(Duration::from_secs(8));
        let waits: Vec<Duration> = (0..6).map(|_| backoff.next_wait()).collect();
        let bases = [1, 2, 4, 8, 8, 8];
        for (wait, base) in waits.iter().zip(bases) {
            let base = Duration::from_secs(base);
            assert!(*wait >= base / 2 && *wait <= base, "{wait:?} for {base:?}");
        }
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_secs(1));
    }

    #[test]
    fn only_a_101_to_h2c_reverse_opens_the_tunnel() {
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n";
        assert_eq!(check_upgrade_answer(ok), Ok(()));
        let refused = check_upgrade_answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        assert!(refused.unwrap_err().contains("403"));
        let websocket = check_upgrade_answer(b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n\r\n");
        assert!(websocket.unwrap_err().contains("websocket"));
        let bare = check_upgrade_answer(b"HTTP/1.1 101 OK\r\n\r\n");
        assert!(bare.unwrap_err().contains("no Upgrade"));
        assert!(check_upgrade_answer(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(check_upgrade_answer(&[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n']).is_err());
    }
}
