//! The daemon as a TLS client of the registry: TLS 1.3, the registry's
//! server certificate must chain to the pinned registry CA and name the
//! URL's host, and the box presents its device certificate, so the registry
//! knows which box is talking before reading a byte. One HTTP/1.1 exchange
//! per connection (`Connection: close`), bounded in time and size.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::signed::SignedMessage;
use crate::evidence::DeviceKey;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest answer read from the registry.
const MAX_RESPONSE: usize = 64 * 1024;

/// Why a call to the registry did not get an answer. `Unreachable` and
/// `Unavailable` are worth retrying; `Refused` is not (the registry read
/// the message and said no).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot set up TLS for the registry: {0}")]
    Setup(String),
    #[error("registry unreachable: {0}")]
    Unreachable(String),
    #[error("registry unavailable (HTTP {status}): {message}")]
    Unavailable { status: u16, message: String },
    #[error("registry refused the message (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the registry's answer is not usable: {0}")]
    BadAnswer(String),
}

impl RegistryError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RegistryError::Unreachable(_) | RegistryError::Unavailable { .. }
        )
    }
}

/// A client for one registry URL.
#[derive(Clone)]
pub struct RegistryClient {
    base: url::Url,
    tls: Arc<rustls::ClientConfig>,
}

impl RegistryClient {
    /// Pins the CA(s) in `registry_ca` and uses the device certificate as
    /// the client certificate.
    pub fn new(
        base: &url::Url,
        registry_ca: &Path,
        device: &DeviceKey,
    ) -> Result<RegistryClient, RegistryError> {
        let setup = |e: String| RegistryError::Setup(e);
        let pem = std::fs::read(registry_ca)
            .map_err(|e| setup(format!("registry CA {}: {e}", registry_ca.display())))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| {
                setup(format!(
                    "registry CA {}: not PEM certificates: {e}",
                    registry_ca.display()
                ))
            })?;
            roots
                .add(cert)
                .map_err(|e| setup(format!("registry CA {}: {e}", registry_ca.display())))?;
        }
        if roots.is_empty() {
            return Err(setup(format!(
                "registry CA {} holds no certificate",
                registry_ca.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_slice(device.private_key_pem().as_bytes())
            .map_err(|e| setup(format!("device key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from(device.certificate_der().to_vec())],
                key,
            )
            .map_err(|e| setup(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(RegistryClient {
            base: base.clone(),
            tls: Arc::new(config),
        })
    }

    /// Sends `message` as JSON with `method` to `path` (below the base
    /// URL); returns the answer's JSON for a 2xx.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        message: &SignedMessage,
    ) -> Result<serde_json::Value, RegistryError> {
        let body = serde_json::to_vec(message).map_err(|e| RegistryError::Setup(e.to_string()))?;
        let (status, answer) =
            tokio::time::timeout(EXCHANGE_TIMEOUT, self.exchange(method, path, &body))
                .await
                .map_err(|_| {
                    RegistryError::Unreachable(format!(
                        "no answer within {} s",
                        EXCHANGE_TIMEOUT.as_secs()
                    ))
                })??;
        let json: Option<serde_json::Value> = serde_json::from_slice(&answer).ok();
        let message = || {
            json.as_ref()
                .and_then(|j| j["error"]["message"].as_str().or(j["error"].as_str()))
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&answer).chars().take(200).collect())
        };
        match status {
            200..=299 => {
                json.ok_or_else(|| RegistryError::BadAnswer("the body is not JSON".into()))
            }
            429 | 500..=599 => Err(RegistryError::Unavailable {
                status,
                message: message(),
            }),
            _ => Err(RegistryError::Refused {
                status,
                message: message(),
            }),
        }
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), RegistryError> {
        let unreachable = |e: String| RegistryError::Unreachable(e);
        let host = self
            .base
            .host_str()
            .ok_or_else(|| RegistryError::Setup("the registry URL has no host".into()))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = self.base.port_or_known_default().unwrap_or(443);
        let server_name = ServerName::try_from(host.clone())
            .map_err(|e| RegistryError::Setup(format!("`{host}` is not a server name: {e}")))?;
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| unreachable(format!("connecting to {host}:{port} timed out")))?
        .map_err(|e| unreachable(format!("{host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let mut tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| unreachable(format!("TLS with {host}:{port}: {e}")))?;
        let full_path = format!(
            "{}/{}",
            self.base.path().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let head = format!(
            "{method} {full_path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nAccept: application/json\r\n\
             User-Agent: porchlight/{}\r\nContent-Length: {}\r\n\r\n",
            self.base.host_str().unwrap_or_default(),
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        tls.write_all(head.as_bytes())
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tls.write_all(body)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tls.flush().await.map_err(|e| unreachable(e.to_string()))?;
        let mut raw = Vec::new();
        let mut limited = (&mut tls).take(MAX_RESPONSE as u64 + 1);
        // A peer that closes without close_notify still gave us its answer.
        if let Err(e) = limited.read_to_end(&mut raw).await {
            if raw.is_empty() {
                return Err(unreachable(e.to_string()));
            }
        }
        if raw.len() > MAX_RESPONSE {
            return Err(RegistryError::BadAnswer(format!(
                "the answer is over {} KiB",
                MAX_RESPONSE / 1024
            )));
        }
        parse_response(&raw)
    }
}

/// Status and body of an HTTP/1.1 response read to the end (the body
/// bounded by `Content-Length` when given; chunked is not spoken here).
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), RegistryError> {
    let bad = |m: &str| RegistryError::BadAnswer(m.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no complete HTTP head"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("the HTTP head is not text"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| {
            l.strip_prefix("HTTP/1.1 ")
                .or_else(|| l.strip_prefix("HTTP/1.0 "))
        })
        .and_then(|l| l.get(..3))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("not an HTTP/1.1 status line"))?;
    let mut body = raw[split + 4..].to_vec();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("transfer-encoding") {
                return Err(bad("chunked answers are not supported"));
            }
            if name.trim().eq_ignore_ascii_case("content-length") {
                let length: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("bad Content-Length"))?;
                if body.len() < length {
                    return Err(bad("the answer was cut short"));
                }
                body.truncate(length);
            }
        }
    }
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_read_by_their_length() {
        let (status, body) =
            parse_response(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}extra")
                .expect("ok");
        assert_eq!((status, body.as_slice()), (201, b"{}".as_slice()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
        assert!(parse_response(b"garbage").is_err());
    }
}
