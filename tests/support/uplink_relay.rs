//! A reference relay for the uplink, the far end of the box's outbound
//! tunnel, on a real socket on 127.0.0.1.
//!
//! It is a TLS server (rustls, ring, TLS 1.3) presenting the relay's server
//! certificate and requiring the box's device certificate, pinned byte for
//! byte (the agency learns it at enrolment). It accepts the box's
//! `Upgrade: h2c-reverse` request with `101`, then speaks HTTP/2 as the
//! *client* over the accepted stream (ONVIF Uplink's reversed roles) and
//! sends relay API calls through it. Tests can cut the tunnel, stop and
//! restart the listener on the same port, and read what reached it.
//!
//! Include it with `#[path = "support/uplink_relay.rs"] mod uplink_relay;`
//! next to `mod support;` (it uses `support::relay_client::Response`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::relay_client::Response;

/// How long a call through the tunnel may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One open tunnel: the HTTP/2 client handle and the task driving it.
struct Tunnel {
    sender: SendRequest<Body>,
    driver: JoinHandle<()>,
}

/// What the relay saw, for the tests' assertions.
#[derive(Default)]
struct Seen {
    /// TCP connections accepted.
    accepted: AtomicUsize,
    /// TLS handshakes that completed (the box accepted our certificate and
    /// we accepted its).
    handshakes: AtomicUsize,
    /// Upgrade request heads received, as text.
    upgrades: Mutex<Vec<String>>,
    /// Tunnels opened (101 sent and HTTP/2 started).
    tunnels: AtomicUsize,
}

struct Shared {
    acceptor: tokio_rustls::TlsAcceptor,
    seen: Seen,
    current: tokio::sync::Mutex<Option<Tunnel>>,
}

/// The reference relay. Dropping it stops the listener and every tunnel.
pub struct UplinkRelay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: Option<JoinHandle<()>>,
}

impl UplinkRelay {
    /// Listens on `addr` (127.0.0.1:port) as the relay with `server`
    /// (`(cert_pem, key_pem)`), accepting only a client presenting exactly
    /// `device_cert_pem`.
    pub async fn start(
        addr: SocketAddr,
        server: (&str, &str),
        device_cert_pem: &str,
    ) -> UplinkRelay {
        let provider = Arc::new(ring::default_provider());
        let device = CertificateDer::from_pem_slice(device_cert_pem.as_bytes())
            .expect("device certificate PEM");
        let chain = CertificateDer::pem_slice_iter(server.0.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("relay certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(server.1.as_bytes()).expect("relay key PEM");
        let config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_client_cert_verifier(Arc::new(PinnedDevice { device, provider }))
            .with_single_cert(chain, key)
            .expect("relay TLS config");
        let shared = Arc::new(Shared {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            seen: Seen::default(),
            current: tokio::sync::Mutex::new(None),
        });
        let mut relay = UplinkRelay {
            addr,
            shared,
            listener: None,
        };
        relay.start_listener().await;
        relay
    }

    /// (Re)binds the port and accepts tunnels again.
    pub async fn start_listener(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .unwrap_or_else(|e| panic!("bind the relay on {}: {e}", self.addr));
        let shared = self.shared.clone();
        self.listener = Some(tokio::spawn(accept_loop(listener, shared)));
    }

    /// Stops listening (the port is closed) and cuts the open tunnel: the
    /// relay went away.
    pub async fn stop_listener(&mut self) {
        if let Some(task) = self.listener.take() {
            task.abort();
            let _ = task.await;
        }
        self.drop_tunnel().await;
    }

    /// Cuts the open tunnel (closes the TCP connection), if there is one.
    pub async fn drop_tunnel(&self) {
        if let Some(tunnel) = self.shared.current.lock().await.take() {
            tunnel.driver.abort();
            let _ = tunnel.driver.await;
        }
    }

    /// Waits until a tunnel is open and ready for calls.
    pub async fn wait_for_tunnel(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(tunnel) = self.shared.current.lock().await.as_mut() {
                if !tunnel.driver.is_finished() && tunnel.sender.ready().await.is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no tunnel from the box within {timeout:?} ({} connections, {} handshakes, {} tunnels)",
                self.accepted(),
                self.handshakes(),
                self.tunnels()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// TCP connections the box made to us.
    pub fn accepted(&self) -> usize {
        self.shared.seen.accepted.load(Ordering::Relaxed)
    }

    /// Completed TLS handshakes.
    pub fn handshakes(&self) -> usize {
        self.shared.seen.handshakes.load(Ordering::Relaxed)
    }

    /// Tunnels opened (upgrade accepted, HTTP/2 started).
    pub fn tunnels(&self) -> usize {
        self.shared.seen.tunnels.load(Ordering::Relaxed)
    }

    /// The upgrade request heads the box sent.
    pub fn upgrade_requests(&self) -> Vec<String> {
        self.shared
            .seen
            .upgrades
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One relay API call through the open tunnel.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, String> {
        let mut sender = match self.shared.current.lock().await.as_ref() {
            Some(tunnel) => tunnel.sender.clone(),
            None => return Err("no tunnel is open".into()),
        };
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(format!("https://porchlight.uplink{path}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Body::from(body)).map_err(|e| e.to_string())?;
        let call = async {
            sender.ready().await.map_err(|e| e.to_string())?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = axum::body::to_bytes(Body::new(response.into_body()), usize::MAX)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Response {
                status,
                headers,
                body: body.to_vec(),
            })
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| format!("{method} {path}: no answer within {CALL_TIMEOUT:?}"))?
    }

    pub async fn get(&self, path: &str) -> Result<Response, String> {
        self.request("GET", path, &[], Vec::new()).await
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Response, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        self.request("POST", path, &[("content-type", "application/json")], bytes)
            .await
    }
}

impl Drop for UplinkRelay {
    fn drop(&mut self) {
        if let Some(task) = self.listener.take() {
            task.abort();
        }
        if let Ok(mut current) = self.shared.current.try_lock() {
            if let Some(tunnel) = current.take() {
                tunnel.driver.abort();
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        shared.seen.accepted.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = open_tunnel(tcp, &shared).await {
                eprintln!("uplink relay: no tunnel: {e}");
            }
        });
    }
}

/// TLS, the upgrade request, `101`, then HTTP/2 as the client.
async fn open_tunnel(tcp: tokio::net::TcpStream, shared: &Shared) -> Result<(), String> {
    let mut stream = tokio::time::timeout(Duration::from_secs(10), shared.acceptor.accept(tcp))
        .await
        .map_err(|_| "TLS handshake timed out".to_string())?
        .map_err(|e| format!("TLS handshake: {e}"))?;
    shared.seen.handshakes.fetch_add(1, Ordering::Relaxed);
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err("upgrade head too long".into());
        }
        let n = stream.read(&mut byte).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the upgrade request".into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    shared
        .seen
        .upgrades
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(head.clone());
    let asks_h2c_reverse = head.starts_with("GET ")
        && head.lines().any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.eq_ignore_ascii_case("upgrade") && value.trim() == "h2c-reverse"
            })
        });
    if !asks_h2c_reverse {
        let _ = stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return Err(format!("not an h2c-reverse upgrade: {head:?}"));
    }
    stream
        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake::<_, Body>(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("uplink relay: tunnel ended: {e}");
        }
    });
    shared.seen.tunnels.fetch_add(1, Ordering::Relaxed);
    // A newer tunnel replaces an older one (the box reconnected).
    if let Some(old) = shared
        .current
        .lock()
        .await
        .replace(Tunnel { sender, driver })
    {
        old.driver.abort();
    }
    Ok(())
}

/// Accepts exactly the box's device certificate (self-signed, pinned at
/// enrolment) and checks the handshake signatures with ring.
#[derive(Debug)]
struct PinnedDevice {
    device: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for PinnedDevice {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.device.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
