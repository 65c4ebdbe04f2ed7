//! The relay listener's connection handling: TLS handshake (bounded in
//! time), the agency identity taken from the verified client certificate,
//! then HTTP/1.1 with header and idle timeouts, so slow or silent clients
//! cannot hold connections open.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::throttle::AuditThrottle;
use super::tls::PinnedCas;
use super::Stop;
use crate::audit::{AuditEvent, AuditLog, Component, EventType, Identity, Outcome};
use crate::policy::AgencyIdentity;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// More simultaneous connections than any relay needs; beyond it, new ones
/// are closed at once so a flood cannot exhaust the box.
const MAX_CONNECTIONS: usize = 256;

/// What every connection of the listener shares.
pub struct ListenerParts {
    pub tls: Arc<rustls::ServerConfig>,
    pub router: Router,
    pub audit: AuditLog,
    /// Throttles audit entries for failed handshakes, per network.
    pub failures: Arc<AuditThrottle>,
    /// The pinned agency CAs (which agency a certificate may speak for).
    pub pinned: Arc<PinnedCas>,
}

struct Shared {
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    audit: AuditLog,
    failures: Arc<AuditThrottle>,
    pinned: Arc<PinnedCas>,
}

/// Accepts connections until `stop` leaves [`Stop::Running`]. Then open
/// connections close; once the owner left, the port stays taken until the
/// daemon stops, and every agency that calls is refused before TLS (and
/// audited, throttled per network) instead of finding the port free.
pub async fn serve(listener: TcpListener, parts: ListenerParts, mut stop: watch::Receiver<Stop>) {
    let shared = Arc::new(Shared {
        acceptor: tokio_rustls::TlsAcceptor::from(parts.tls),
        router: parts.router,
        audit: parts.audit,
        failures: parts.failures,
        pinned: parts.pinned,
    });
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "relay listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow_and_update() != Stop::Left {
                    return;
                }
                tracing::info!("relay listener: the owner left the relay program; refusing every connection");
                continue;
            }
        };
        if *stop.borrow() == Stop::Left {
            // No handshake, nothing to talk about.
            let (audit, failures) = (&shared.audit, &shared.failures);
            log_failed_handshake(
                audit,
                failures,
                peer,
                "this box left the relay program".into(),
            )
            .await;
            drop(tcp);
            continue;
        }
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        open.fetch_add(1, Ordering::Relaxed);
        let guard = ConnectionCount(open.clone());
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            let _guard = guard;
            serve_connection(tcp, peer, &shared, stop).await;
        });
    }
}

/// Decrements the open-connection count when a connection ends.
struct ConnectionCount(Arc<AtomicUsize>);

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    mut stop: watch::Receiver<Stop>,
) {
    let (audit, failures) = (&shared.audit, &shared.failures);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, shared.acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return log_failed_handshake(audit, failures, peer, e.to_string()).await,
        Err(_) => {
            return log_failed_handshake(audit, failures, peer, "handshake timed out".into()).await
        }
    };
    let Some(certificate) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|c| c.as_ref().to_vec())
    else {
        // The verifier demands a certificate; this is only belt and braces.
        return log_failed_handshake(audit, failures, peer, "no client certificate".into()).await;
    };
    let identity = AgencyIdentity {
        name: shared.pinned.agency_of(&certificate).unwrap_or_default(),
        cert_fingerprint: crate::evidence::certificate_fingerprint(&certificate),
    };
    let service = shared
        .router
        .clone()
        .layer(axum::Extension(Caller { identity, peer }));
    let service = hyper_util::service::TowerToHyperService::new(service);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "relay connection ended with an error");
            }
        }
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
        }
    }
}

/// Who is calling: the verified agency and the peer address.
#[derive(Clone, Debug)]
pub struct Caller {
    pub identity: AgencyIdentity,
    pub peer: SocketAddr,
}

async fn log_failed_handshake(
    audit: &AuditLog,
    failures: &AuditThrottle,
    peer: SocketAddr,
    error: String,
) {
    tracing::info!(%peer, %error, "relay: TLS handshake refused");
    let key = network_of(peer.ip());
    let Some(suppressed) = failures.admit(&key) else {
        return;
    };
    let mut details = serde_json::json!({ "peer": peer.to_string() });
    if suppressed > 0 {
        details["earlier_failures_not_logged_individually"] = suppressed.into();
    }
    let event = AuditEvent::new(
        Component::Relay,
        EventType::AuthFailure,
        Identity::anonymous(),
    )
    .outcome(Outcome::refused(format!("TLS handshake: {error}")))
    .details(details);
    if let Err(e) = audit.append(event).await {
        tracing::error!(error = %e, "cannot write to the audit log");
    }
}

/// The network an address belongs to (IPv4 /24, IPv6 /64): a flood from
/// many addresses of one network is throttled as one caller.
fn network_of(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}
