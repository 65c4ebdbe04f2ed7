//! A reference client for the agency-facing relay API: HTTP/1.1 over mutual
//! TLS on a real socket, the way an agency's software would talk to a box.
//!
//! Blocking std sockets with rustls (ring provider, TLS 1.3 only, as
//! `docs/relay-protocol.md` requires): one connection per call, so each call
//! is a fresh handshake and a test can tell a refused certificate from a
//! refused request.
//!
//! The daemon serves its self-signed device certificate
//! (`<data_dir>/device-cert.pem`), which names no host. So the client does
//! not check names or chains: it pins that exact certificate
//! ([`PinnedServerCert`]) and still checks the handshake signatures, so only
//! the holder of the device key can answer.
//!
//! With TLS 1.3 the server judges the client certificate after the client
//! has already sent its Finished; a refusal arrives as an alert on the first
//! read. [`RelayError::Handshake`] covers both that and a handshake that
//! fails outright, so hostile tests can assert "refused at the TLS layer"
//! without caring which side of the Finished it happened on.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme,
    StreamOwned,
};
use serde_json::{json, Value};

/// How long a call may wait on the socket before giving up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS stream to the relay.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Why a call failed. Tests match on the variant, not on the message.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    /// TLS refused: the handshake failed, or the server answered it with an
    /// alert before sending any HTTP (TLS 1.3 client-certificate refusal).
    #[error("TLS handshake refused: {0}")]
    Handshake(String),
    /// The connection broke after the handshake was accepted.
    #[error("I/O after the handshake: {0}")]
    Io(io::Error),
    /// The server's bytes were not an HTTP/1.1 response.
    #[error("not an HTTP response: {0}")]
    BadResponse(String),
}

impl RelayError {
    /// Whether the TLS layer refused us (no, untrusted, expired or revoked
    /// client certificate; wrong server certificate).
    pub fn is_handshake_failure(&self) -> bool {
        matches!(self, RelayError::Handshake(_))
    }
}

/// An HTTP response, body read in full.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// In arrival order; names as sent (compare case-insensitively with [`Response::header`]).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics naming the body when it is not (tests only).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// `error.code` of a protocol error body, if the body is one.
    pub fn error_code(&self) -> Option<String> {
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        body["error"]["code"].as_str().map(str::to_string)
    }

    /// `error.field` of a protocol error body, if present.
    pub fn error_field(&self) -> Option<String> {
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        body["error"]["field"].as_str().map(str::to_string)
    }

    /// Parses a whole response from raw bytes (as [`RelayClient::send_raw`]
    /// returns them); `None` if they do not start with a complete head.
    pub fn parse(bytes: &[u8]) -> Option<Response> {
        read_response(&mut BufReader::new(bytes)).ok()
    }
}

/// How a raw exchange ended; see [`RelayClient::send_raw`].
#[derive(Debug)]
pub struct RawExchange {
    /// Everything the server sent back, decrypted.
    pub received: Vec<u8>,
    /// Whether the server closed the connection (rather than our timeout ending the wait).
    pub closed_by_server: bool,
}

impl RawExchange {
    /// The reply as an HTTP response, if it is one.
    pub fn response(&self) -> Option<Response> {
        Response::parse(&self.received)
    }
}

/// What happened to a slow sender; see [`RelayClient::send_slowly`].
#[derive(Debug)]
pub struct SlowSend {
    /// How many of the bytes went out before the server answered or closed.
    pub bytes_sent: usize,
    /// From the end of the handshake until the server answered, closed the
    /// connection or we ran out of bytes.
    pub elapsed: Duration,
    /// Whether the server answered or closed before we sent everything.
    pub cut_off: bool,
    /// Whatever the server sent (a 408, perhaps), decrypted.
    pub received: Vec<u8>,
}

/// Verifies the server by pinning one exact certificate (the device's
/// self-signed one), and the handshake signatures with ring's algorithms.
///
/// Why not a CA: the device certificate is self-signed and names no host,
/// so a chain or name check would accept nothing useful; byte equality with
/// the certificate the owner published is the whole trust decision.
#[derive(Debug)]
pub struct PinnedServerCert {
    pinned: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl PinnedServerCert {
    pub fn new(pinned: CertificateDer<'static>, provider: Arc<CryptoProvider>) -> Self {
        PinnedServerCert { pinned, provider }
    }
}

impl ServerCertVerifier for PinnedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(NotPinned)),
            )))
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

/// The error inside a rejected server certificate, so the message says why
/// (rustls shows it with `Debug`, hence the hand-written one).
struct NotPinned;

impl std::fmt::Debug for NotPinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for NotPinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the server certificate is not the pinned device certificate")
    }
}

impl std::error::Error for NotPinned {}

/// A client for one relay address, one server certificate and at most one
/// client certificate. Cheap to clone; each call opens a new connection.
#[derive(Clone)]
pub struct RelayClient {
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    timeout: Duration,
}

impl RelayClient {
    /// `server_cert_pem`: the device certificate to pin (the first
    /// certificate in the PEM text). `client`: `(cert_pem, key_pem)`, the
    /// certificate (chain) and PKCS#8/SEC1 key to present, or `None` to
    /// present none.
    pub fn new(
        addr: SocketAddr,
        server_cert_pem: &str,
        client: Option<(&str, &str)>,
    ) -> Result<RelayClient, rustls::Error> {
        let pinned = CertificateDer::from_pem_slice(server_cert_pem.as_bytes())
            .map_err(|e| rustls::Error::General(format!("server certificate PEM: {e}")))?;
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServerCert::new(pinned, provider)));
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| rustls::Error::General(format!("client certificate PEM: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                    .map_err(|e| rustls::Error::General(format!("client key PEM: {e}")))?;
                builder.with_client_auth_cert(chain, key)?
            }
        };
        Ok(RelayClient {
            addr,
            config: Arc::new(config),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A client of the daemon whose data dir is `data_dir` (its device
    /// certificate pinned), as `identity`: how every test speaks to a relay
    /// listener or tunnel.
    pub fn for_daemon(
        addr: SocketAddr,
        data_dir: &std::path::Path,
        identity: &super::pki::ClientIdentity,
    ) -> RelayClient {
        RelayClient::from_files(
            addr,
            &data_dir.join("device-cert.pem"),
            Some((identity.cert_path.as_path(), identity.key_path.as_path())),
        )
        .expect("relay client for the daemon")
    }

    /// As [`RelayClient::new`], reading the PEM files (the daemon's
    /// `<data_dir>/device-cert.pem`, the PKI's `client.pem`/`client-key.pem`).
    pub fn from_files(
        addr: SocketAddr,
        server_cert: &std::path::Path,
        client: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Result<RelayClient, rustls::Error> {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path)
                .map_err(|e| rustls::Error::General(format!("{}: {e}", path.display())))
        };
        let server = read(server_cert)?;
        let client = match client {
            Some((cert, key)) => Some((read(cert)?, read(key)?)),
            None => None,
        };
        RelayClient::new(
            addr,
            &server,
            client.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
        )
    }

    /// The same client with another socket timeout (reads and writes).
    pub fn with_timeout(mut self, timeout: Duration) -> RelayClient {
        self.timeout = timeout;
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connects and completes the client's side of the handshake. Under TLS
    /// 1.3 a refused client certificate shows only on the first read; the
    /// calls below map that to [`RelayError::Handshake`] too.
    pub fn connect(&self) -> Result<TlsStream, RelayError> {
        let socket = TcpStream::connect_timeout(&self.addr, self.timeout).map_err(|source| {
            RelayError::Connect {
                addr: self.addr,
                source,
            }
        })?;
        socket
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| socket.set_write_timeout(Some(self.timeout)))
            .and_then(|()| socket.set_nodelay(true))
            .map_err(RelayError::Io)?;
        // No DNS name to check: the verifier pins the certificate instead.
        let name = ServerName::IpAddress(self.addr.ip().into());
        let connection = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| RelayError::Handshake(e.to_string()))?;
        let mut stream = StreamOwned::new(connection, socket);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| RelayError::Handshake(e.to_string()))?;
        }
        Ok(stream)
    }

    /// Whether the server accepts our certificate: completes the handshake
    /// and then waits up to `grace` for a refusal alert. `Ok` means none came.
    pub fn probe_handshake(&self, grace: Duration) -> Result<(), RelayError> {
        let mut stream = self.connect()?;
        stream
            .sock
            .set_read_timeout(Some(grace))
            .map_err(RelayError::Io)?;
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Err(e) if is_timeout(&e) => Ok(()),
            Err(e) => Err(classify_first_read(e)),
            Ok(0) => Err(RelayError::Handshake(
                "the server closed the connection right after the handshake".into(),
            )),
            Ok(_) => Ok(()),
        }
    }

    /// Sends one request with `Connection: close` and reads the whole response.
    /// `headers` come after `Host`; add `Content-Type` yourself when needed.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, RelayError> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(body);

        let mut stream = self.connect()?;
        stream.write_all(&message).map_err(classify_first_read)?;
        stream.flush().map_err(classify_first_read)?;
        let mut reader = FirstReadClassifier {
            inner: &mut stream,
            seen_data: false,
        };
        let mut reader = BufReader::new(&mut reader);
        read_response(&mut reader)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Response, RelayError> {
        self.post_json_with(path, body, &[])
    }

    /// `POST path` with a JSON body and extra headers (`Idempotency-Key`, ...).
    pub fn post_json_with(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Result<Response, RelayError> {
        let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.request("POST", path, &all, &bytes)
    }

    /// `GET path` with extra headers (`Range`, `If-Range`, ...).
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Response, RelayError> {
        self.request("GET", path, headers, &[])
    }

    /// Sends `bytes` as they are (no framing added: malformed request lines,
    /// bad lengths, smuggling attempts), then reads whatever comes back until
    /// the server closes or the timeout passes.
    pub fn send_raw(&self, bytes: &[u8]) -> Result<RawExchange, RelayError> {
        let mut stream = self.connect()?;
        stream.write_all(bytes).map_err(classify_first_read)?;
        stream.flush().map_err(classify_first_read)?;
        let mut received = Vec::new();
        let closed_by_server = read_until_close(&mut stream, &mut received)?;
        Ok(RawExchange {
            received,
            closed_by_server,
        })
    }

    /// Sends `bytes` one at a time (one TLS record each) with `pause` between
    /// them, the way a slowloris client holds a connection open, stopping as
    /// soon as the server answers or closes. Then reads the rest of what the
    /// server sends, for at most the client's timeout.
    pub fn send_slowly(&self, bytes: &[u8], pause: Duration) -> Result<SlowSend, RelayError> {
        let mut stream = self.connect()?;
        let started = Instant::now();
        let mut received = Vec::new();
        let mut bytes_sent = 0;
        for byte in bytes {
            if stream
                .write_all(std::slice::from_ref(byte))
                .and_then(|()| stream.flush())
                .is_err()
            {
                break;
            }
            bytes_sent += 1;
            std::thread::sleep(pause);
            // A short poll: has the server answered or hung up meanwhile?
            stream
                .sock
                .set_read_timeout(Some(Duration::from_millis(1)))
                .map_err(RelayError::Io)?;
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    received.extend_from_slice(&chunk[..n]);
                    break;
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) if is_tls_refusal(&e) => return Err(RelayError::Handshake(e.to_string())),
                Err(_) => break,
            }
        }
        let elapsed = started.elapsed();
        stream
            .sock
            .set_read_timeout(Some(self.timeout))
            .map_err(RelayError::Io)?;
        let _ = read_until_close(&mut stream, &mut received);
        Ok(SlowSend {
            bytes_sent,
            elapsed,
            cut_off: bytes_sent < bytes.len(),
            received,
        })
    }
}

/// Wraps the TLS stream so that an error before any byte of HTTP arrived is
/// reported as a TLS refusal, and later ones as I/O errors.
struct FirstReadClassifier<'a> {
    inner: &'a mut TlsStream,
    seen_data: bool,
}

impl Read for FirstReadClassifier<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.seen_data |= n > 0;
                Ok(n)
            }
            // A peer that closes without close_notify after a complete
            // response is common; treat it as the end of the stream.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && self.seen_data => Ok(0),
            Err(e) if !self.seen_data && is_tls_refusal(&e) => {
                Err(io::Error::other(HandshakeRefused(e.to_string())))
            }
            Err(e) => Err(e),
        }
    }
}

/// Marks an I/O error as a TLS refusal on its way through `BufReader`.
#[derive(Debug)]
struct HandshakeRefused(String);

impl std::fmt::Display for HandshakeRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandshakeRefused {}

fn io_to_relay(e: io::Error) -> RelayError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<HandshakeRefused>())
    {
        Some(refused) => RelayError::Handshake(refused.0.clone()),
        None => RelayError::Io(e),
    }
}

/// A rustls error surfaced through `io::Error` (alerts, bad records): the
/// TLS layer, not the network, said no.
fn is_tls_refusal(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// Errors on the first write or read after the handshake: a TLS alert means
/// the server refused our certificate; anything else is plain I/O.
fn classify_first_read(e: io::Error) -> RelayError {
    if is_tls_refusal(&e) {
        RelayError::Handshake(e.to_string())
    } else {
        RelayError::Io(e)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads until the server closes (true) or the read times out (false).
fn read_until_close(stream: &mut TlsStream, into: &mut Vec<u8>) -> Result<bool, RelayError> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => into.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(true),
            Err(e) if into.is_empty() && is_tls_refusal(&e) => {
                return Err(RelayError::Handshake(e.to_string()))
            }
            Err(e) => return Err(RelayError::Io(e)),
        }
    }
}

/// Reads one HTTP/1.1 response: status line, headers, then a body framed
/// by `Content-Length`, chunked encoding, or the end of the connection.
fn read_response(reader: &mut impl BufRead) -> Result<Response, RelayError> {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).map_err(io_to_relay)?;
    if status_line.is_empty() {
        return Err(RelayError::BadResponse(
            "the server closed the connection without answering".into(),
        ));
    }
    let mut parts = status_line.trim_end().splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(RelayError::BadResponse(format!(
            "status line {status_line:?}"
        )));
    };
    let status: u16 = match (version.starts_with("HTTP/1."), code.parse()) {
        (true, Ok(status)) => status,
        _ => {
            return Err(RelayError::BadResponse(format!(
                "status line {status_line:?}"
            )))
        }
    };

    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(io_to_relay)? == 0 {
            return Err(RelayError::BadResponse("the head ends early".into()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(RelayError::BadResponse(format!("header line {line:?}")));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };

    let mut body = Vec::new();
    let no_body = status / 100 == 1 || status == 204 || status == 304;
    if no_body {
    } else if find("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader, &mut body)?;
    } else if let Some(length) = find("Content-Length") {
        let length: usize = length
            .parse()
            .map_err(|_| RelayError::BadResponse(format!("Content-Length {length:?}")))?;
        body.resize(length, 0);
        reader.read_exact(&mut body).map_err(io_to_relay)?;
    } else {
        reader.read_to_end(&mut body).map_err(io_to_relay)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn read_chunked(reader: &mut impl BufRead, body: &mut Vec<u8>) -> Result<(), RelayError> {
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).map_err(io_to_relay)?;
        let size_text = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| RelayError::BadResponse(format!("chunk size {size_line:?}")))?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).map_err(io_to_relay)? == 0 || line.trim().is_empty()
                {
                    return Ok(());
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).map_err(io_to_relay)?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).map_err(io_to_relay)?;
    }
}

/// The legal basis of a footage request, with the warrant's reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Basis {
    Consent,
    Emergency,
    Warrant(String),
}

/// A valid `POST /v1/requests` body per `docs/relay-protocol.md`, with
/// realistic defaults (see [`footage_request`]) and setters for what tests
/// vary. [`FootageRequestBody::to_json`] gives the body; tests that want
/// a broken one edit the JSON afterwards.
#[derive(Clone, Debug)]
pub struct FootageRequestBody {
    pub agency: String,
    pub officer_name: String,
    pub badge: String,
    pub case_id: String,
    pub incident_type: String,
    pub basis: Basis,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    /// RFC 3339 texts, sent as given (so tests can send bad ones).
    pub window_from: String,
    pub window_to: String,
    pub cameras: Option<Vec<String>>,
    pub reason: String,
}

/// A valid request from an officer of the test PKI's agency: a warrant,
/// downtown Dallas, 250 m, the hour that ended five minutes ago, every camera.
pub fn footage_request() -> FootageRequestBody {
    let now_us = now_utc_us();
    let end_us = now_us - 5 * 60 * 1_000_000;
    FootageRequestBody {
        agency: super::pki::AGENCY.to_string(),
        officer_name: "Sgt. A. Rivera".into(),
        badge: "D-4471".into(),
        case_id: "2026-0042117".into(),
        incident_type: "burglary".into(),
        basis: Basis::Warrant("SW-2026-118".into()),
        lat: 32.7767,
        lon: -96.7970,
        radius_m: 250.0,
        window_from: porchlight::time::format_utc_us(end_us - 3600 * 1_000_000),
        window_to: porchlight::time::format_utc_us(end_us),
        cameras: None,
        reason: "Break-in reported at 21:30; looking for a vehicle leaving the street.".into(),
    }
}

impl FootageRequestBody {
    pub fn agency(mut self, agency: &str) -> Self {
        self.agency = agency.into();
        self
    }

    pub fn case_id(mut self, case_id: &str) -> Self {
        self.case_id = case_id.into();
        self
    }

    pub fn basis(mut self, basis: Basis) -> Self {
        self.basis = basis;
        self
    }

    /// The incident's location and the search radius.
    pub fn location(mut self, lat: f64, lon: f64, radius_m: f64) -> Self {
        (self.lat, self.lon, self.radius_m) = (lat, lon, radius_m);
        self
    }

    /// The window as UTC microseconds since the epoch (the store's unit).
    pub fn window_us(mut self, from_us: i64, to_us: i64) -> Self {
        self.window_from = porchlight::time::format_utc_us(from_us);
        self.window_to = porchlight::time::format_utc_us(to_us);
        self
    }

    /// The window as RFC 3339 texts, unchecked.
    pub fn window_text(mut self, from: &str, to: &str) -> Self {
        (self.window_from, self.window_to) = (from.into(), to.into());
        self
    }

    /// The window ending `ago` before now and lasting `length`.
    pub fn window_ending_ago(self, ago: Duration, length: Duration) -> Self {
        let to_us = now_utc_us() - micros(ago);
        self.window_us(to_us - micros(length), to_us)
    }

    pub fn cameras(mut self, cameras: &[&str]) -> Self {
        self.cameras = Some(cameras.iter().map(|c| c.to_string()).collect());
        self
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = reason.into();
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "agency": self.agency,
            "officer": { "name": self.officer_name, "badge": self.badge },
            "case_id": self.case_id,
            "incident_type": self.incident_type,
            "legal_basis": match self.basis {
                Basis::Consent => "consent",
                Basis::Emergency => "emergency",
                Basis::Warrant(_) => "warrant",
            },
            "location": { "lat": self.lat, "lon": self.lon },
            "radius_m": self.radius_m,
            "window": { "from": self.window_from, "to": self.window_to },
            "reason": self.reason,
        });
        if let Basis::Warrant(reference) = &self.basis {
            body["warrant_reference"] = json!(reference);
        }
        if let Some(cameras) = &self.cameras {
            body["cameras"] = json!(cameras);
        }
        body
    }
}

fn now_utc_us() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    micros(since_epoch)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).expect("duration fits")
}

/// The package URL of `camera` in a request's status, once there is one.
pub fn package_url(status: &Value, camera: &str) -> Option<String> {
    status["cameras"]
        .as_array()?
        .iter()
        .find(|c| c["camera"] == camera)?["package"]["url"]
        .as_str()
        .map(str::to_string)
}

/// Polls request `id` until its package for `camera` downloads (at most a
/// minute); returns its URL and the download.
pub fn download_when_ready(client: &RelayClient, id: &str, camera: &str) -> (String, Response) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = client
            .get(&format!("/v1/requests/{id}"), &[])
            .expect("request status");
        assert_eq!(status.status, 200, "{}", status.text());
        if let Some(url) = package_url(&status.json(), camera) {
            let download = client.get(&url, &[]).expect("download");
            if download.status != 503 {
                return (url, download);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no evidence package for {camera} within a minute"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An HTTP response whose chunked body is read as it arrives (a live
/// stream), over its own connection.
pub struct StreamingResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TlsStream>,
    ended: bool,
}

/// One read of a [`StreamingResponse`].
#[derive(Debug)]
pub enum StreamRead {
    Data(Vec<u8>),
    /// The server ended the body (last chunk) or closed the connection.
    End,
}

impl RelayClient {
    /// `GET path` and read the head; the body is read with
    /// [`StreamingResponse::next`]. Error answers are read whole.
    pub fn open_stream(
        &self,
        path: &str,
    ) -> Result<Result<StreamingResponse, Response>, RelayError> {
        let mut stream = self.connect()?;
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream
            .write_all(head.as_bytes())
            .map_err(classify_first_read)?;
        stream.flush().map_err(classify_first_read)?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).map_err(io_to_relay)?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| RelayError::BadResponse(format!("status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(io_to_relay)? == 0 {
                return Err(RelayError::BadResponse("the head ends early".into()));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        if status != 200 {
            let mut body = Vec::new();
            let chunked = headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
            });
            if chunked {
                read_chunked(&mut reader, &mut body)?;
            } else if let Some((_, length)) = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            {
                body.resize(length.parse().unwrap_or(0), 0);
                reader.read_exact(&mut body).map_err(io_to_relay)?;
            }
            return Ok(Err(Response {
                status,
                headers,
                body,
            }));
        }
        Ok(Ok(StreamingResponse {
            status,
            headers,
            reader,
            ended: false,
        }))
    }
}

impl StreamingResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The next chunk of the body, waiting at most the client's timeout.
    pub fn next(&mut self) -> Result<StreamRead, RelayError> {
        if self.ended {
            return Ok(StreamRead::End);
        }
        let mut size_line = String::new();
        match self.reader.read_line(&mut size_line) {
            Ok(0) => {
                self.ended = true;
                return Ok(StreamRead::End);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.ended = true;
                return Ok(StreamRead::End);
            }
            Err(e) => return Err(io_to_relay(e)),
        }
        let size_text = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| RelayError::BadResponse(format!("chunk size {size_line:?}")))?;
        if size == 0 {
            self.ended = true;
            return Ok(StreamRead::End);
        }
        let mut data = vec![0; size];
        self.reader.read_exact(&mut data).map_err(io_to_relay)?;
        let mut crlf = [0u8; 2];
        self.reader.read_exact(&mut crlf).map_err(io_to_relay)?;
        Ok(StreamRead::Data(data))
    }
}
