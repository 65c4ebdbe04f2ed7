//! The reference relay's registry: a real HTTPS server on 127.0.0.1
//! (rustls, TLS 1.3, mutual TLS), speaking docs/registry.md the way a
//! relay would, so the daemon's registration, updates and leave run over
//! real sockets.
//!
//! Trust: the server certificate is signed by the registry CA the box
//! pins ([`RegistryPki`]). Boxes have self-signed device certificates, so
//! the TLS layer asks for one and checks the handshake signature (proof of
//! the device key) but not a chain; the registry learns the certificate
//! with the first, signed registration (its PEM is in the payload and must
//! be the certificate of the TLS session) and from then on holds every
//! message of that registration to it: same TLS certificate, signature
//! verifying with it, increasing sequence numbers. The verification here
//! is its own (p256 and x509-cert directly), not the daemon's code.
//!
//! Kept apart from any uplink server: this is only the registry. Another
//! role can be mounted on the same server through [`ReferenceRelay::records`]
//! and the path prefix.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, ServerConnection, SignatureScheme, StreamOwned,
};
use serde_json::{json, Value};
use x509_cert::der::{Decode, DecodePem, Encode};

/// The registry's path below the server root.
pub const PREFIX: &str = "/registry";

/// The registry CA (what the box pins) and the server certificate.
pub struct RegistryPki {
    pub ca_path: PathBuf,
    server_cert_pem: String,
    server_key_pem: String,
}

impl RegistryPki {
    /// A fresh CA and a server certificate for 127.0.0.1, written into `dir`.
    pub fn generate(dir: &Path) -> RegistryPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "Reference Relay Registry CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut server = CertificateParams::default();
        server
            .distinguished_name
            .push(DnType::CommonName, "registry.relay.test");
        server.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().expect("ip"))];
        let cert = server.signed_by(&key, &issuer).expect("server cert");
        std::fs::create_dir_all(dir).expect("dir");
        let ca_path = dir.join("registry-ca.pem");
        std::fs::write(&ca_path, ca_pem).expect("write CA");
        RegistryPki {
            ca_path,
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
        }
    }
}

/// One message the registry received, and what it made of it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// `registration`, `update`, `deletion` (the payload's `type`).
    pub kind: String,
    /// The verified payload (`Value::Null` if it did not verify).
    pub payload: Value,
    /// Whether the signature verified with the box's enrolled certificate
    /// and the TLS certificate was that certificate.
    pub verified: bool,
    pub status: u16,
    /// The signed body as received.
    pub body: Value,
}

/// A registration as the registry keeps it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    pub device_cert_der: Vec<u8>,
    pub sequence: u64,
    pub listing: Value,
}

#[derive(Default)]
pub struct Records {
    pub received: Vec<Received>,
    pub entries: Vec<Entry>,
    /// Registration ids whose entry and footage were deleted.
    pub deleted: Vec<String>,
}

/// The running server; stops on drop.
pub struct ReferenceRelay {
    pub addr: SocketAddr,
    pub records: Arc<Mutex<Records>>,
    stop: Arc<AtomicBool>,
}

impl ReferenceRelay {
    /// Serves on `port` of 127.0.0.1 (a port the test reserved, so the box
    /// can be configured before the registry is up).
    pub fn start(pki: &RegistryPki, port: u16) -> ReferenceRelay {
        let provider = Arc::new(ring::default_provider());
        let certs =
            vec![CertificateDer::from_pem_slice(pki.server_cert_pem.as_bytes()).expect("cert")];
        let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).expect("key");
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_client_cert_verifier(Arc::new(AnyDeviceCert(provider)))
            .with_single_cert(certs, key)
            .expect("server config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the registry");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let records = Arc::new(Mutex::new(Records::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (records.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let (config, records) = (config.clone(), r.clone());
                        std::thread::spawn(move || serve(tcp, config, &records));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        ReferenceRelay {
            addr,
            records,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}{PREFIX}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.records.lock().expect("records").received.clone()
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.records.lock().expect("records").entries.clone()
    }

    pub fn deleted(&self) -> Vec<String> {
        self.records.lock().expect("records").deleted.clone()
    }
}

impl Drop for ReferenceRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Asks every client for a certificate and checks it holds the key
/// (handshake signature); which certificate is acceptable is the
/// registry's decision per registration, made after the handshake.
#[derive(Debug)]
struct AnyDeviceCert(Arc<CryptoProvider>);

impl ClientCertVerifier for AnyDeviceCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn serve(tcp: TcpStream, config: Arc<rustls::ServerConfig>, records: &Mutex<Records>) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(connection) = ServerConnection::new(config) else {
        return;
    };
    let mut tls = StreamOwned::new(connection, tcp);
    let mut reader = BufReader::new(&mut tls);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return; // handshake refused or nothing sent
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0).min(1 << 20);
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    drop(reader);
    let peer = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    let (status, answer) = handle(records, &method, &path, &body, &peer);
    let text = answer.to_string();
    let _ = write!(
        tls,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn error(status: u16, message: &str) -> (u16, Value) {
    (
        status,
        json!({ "error": { "code": "refused", "message": message } }),
    )
}

/// Verifies a signed message against `cert_der`; the payload if it does.
pub fn verify_signed(body: &Value, cert_der: &[u8]) -> Result<Value, String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    if body["alg"] != "ES256" {
        return Err("alg is not ES256".into());
    }
    let payload = b64
        .decode(body["payload"].as_str().ok_or("no payload")?)
        .map_err(|e| e.to_string())?;
    let signature = b64
        .decode(body["signature"].as_str().ok_or("no signature")?)
        .map_err(|e| e.to_string())?;
    let cert = x509_cert::Certificate::from_der(cert_der).map_err(|e| e.to_string())?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).map_err(|e| e.to_string())?;
    let signature = p256::ecdsa::Signature::from_der(&signature).map_err(|e| e.to_string())?;
    key.verify(&payload, &signature)
        .map_err(|_| "signature does not verify".to_string())?;
    serde_json::from_slice(&payload).map_err(|e| e.to_string())
}

fn handle(
    records: &Mutex<Records>,
    method: &str,
    path: &str,
    body: &[u8],
    peer: &[u8],
) -> (u16, Value) {
    let mut records = records.lock().expect("records");
    let signed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let route = path.strip_prefix(PREFIX).unwrap_or("");
    let segments: Vec<&str> = route.trim_matches('/').split('/').collect();
    let mut received = Received {
        method: method.to_string(),
        path: path.to_string(),
        kind: String::new(),
        payload: Value::Null,
        verified: false,
        status: 0,
        body: signed.clone(),
    };
    let answer = (|| {
        match (method, segments.as_slice()) {
            ("POST", ["v1", "registrations"]) => {
                // The first contact: the certificate in the payload must be
                // the one of the TLS session, and sign the message.
                let cert_der = peer.to_vec();
                let payload = verify_signed(&signed, &cert_der).map_err(|e| error(401, &e))?;
                let pem = payload["device_cert_pem"].as_str().unwrap_or_default();
                let named = x509_cert::Certificate::from_pem(pem.as_bytes())
                    .ok()
                    .and_then(|c| c.to_der().ok());
                if named.as_deref() != Some(peer) {
                    return Err(error(
                        401,
                        "device_cert_pem is not the TLS client certificate",
                    ));
                }
                received.kind = payload["type"].as_str().unwrap_or_default().into();
                received.payload = payload.clone();
                received.verified = true;
                if payload["type"] != "registration" {
                    return Err(error(400, "expected a registration"));
                }
                let id = format!(
                    "reg_{:04}",
                    records.entries.len() + records.deleted.len() + 1
                );
                records.entries.push(Entry {
                    id: id.clone(),
                    device_cert_der: cert_der,
                    sequence: payload["sequence"].as_u64().unwrap_or(0),
                    listing: payload["listing"].clone(),
                });
                Ok((201, json!({ "registration_id": id })))
            }
            (m, ["v1", "registrations", id, rest @ ..]) => {
                let Some(index) = records.entries.iter().position(|e| e.id == *id) else {
                    return Err(error(404, "no such registration"));
                };
                let entry = records.entries[index].clone();
                if entry.device_cert_der != peer {
                    return Err(error(403, "not the certificate this box enrolled with"));
                }
                let payload =
                    verify_signed(&signed, &entry.device_cert_der).map_err(|e| error(401, &e))?;
                received.kind = payload["type"].as_str().unwrap_or_default().into();
                received.payload = payload.clone();
                received.verified = true;
                let sequence = payload["sequence"].as_u64().unwrap_or(0);
                if sequence <= entry.sequence {
                    return Err(error(409, "replayed or stale message (sequence)"));
                }
                if payload["registration_id"] != json!(id) {
                    return Err(error(400, "the payload names another registration"));
                }
                match (m, rest, payload["type"].as_str()) {
                    ("PUT", [], Some("update")) => {
                        let entry = &mut records.entries[index];
                        entry.sequence = sequence;
                        entry.listing = payload["listing"].clone();
                        Ok((200, json!({ "registration_id": id })))
                    }
                    ("POST", ["deletion"], Some("deletion")) => {
                        records.entries.remove(index);
                        records.deleted.push(id.to_string());
                        Ok((
                            200,
                            json!({ "confirmation": {
                                "registration_id": id,
                                "nonce": payload["nonce"],
                                "deleted": ["registry_entry", "footage"],
                                "footage_items_deleted": 0,
                            }}),
                        ))
                    }
                    _ => Err(error(400, "unexpected message for this path")),
                }
            }
            _ => Err(error(404, "no such endpoint")),
        }
    })();
    let (status, value) = answer.unwrap_or_else(|e| e);
    received.status = status;
    records.received.push(received);
    (status, value)
}
