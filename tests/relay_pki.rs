//! The test side of the relay's mutual TLS, checked before the daemon's
//! listener exists: the test PKI, the reference relay client and the
//! footage-request builder, against a small rustls server here that does
//! what `docs/relay-protocol.md` asks of the listener (TLS 1.3, client
//! certificates required and chained to the agency CA, the device's own
//! self-signed certificate as the server's, the agency named by the
//! certificate's Organization, else its Common Name).
//!
//! When the listener lands, the same client and PKI drive the daemon; these
//! tests then guard the helpers themselves.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use porchlight::evidence::DeviceKey;
use porchlight::policy::{parse_request, validate, AgencyIdentity, RequestLimits};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use serde_json::{json, Value};
use support::pki::{self, TestPki, Validity};
use support::relay_client::{footage_request, Basis, RelayClient, RelayError, Response};
use x509_cert::der::{Decode, Encode};

/// How long the mock waits for a request head; the slow-sender test runs into it.
const MOCK_HEAD_TIMEOUT: Duration = Duration::from_millis(600);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A stand-in for the relay listener on 127.0.0.1. It answers every
/// request with 200 and a JSON echo of who the TLS layer says is asking:
/// `{"agency", "fingerprint", "method", "path", "body"}`; an unparsable
/// request line gets 400.
struct MockRelay {
    addr: SocketAddr,
    /// The device certificate it serves (what clients pin).
    device_cert_pem: String,
}

impl MockRelay {
    /// Serves the device certificate made in `data_dir` the daemon's way,
    /// requiring client certificates that chain to the PKI's agency CA.
    fn start(pki: &TestPki, data_dir: &Path) -> MockRelay {
        let device = DeviceKey::load_or_create(data_dir, "mock-box").expect("device key");
        let key_pem = std::fs::read(data_dir.join("device-key.pem")).expect("device key file");
        let chain = vec![CertificateDer::from(device.certificate_der().to_vec())];
        let key = PrivateKeyDer::from_pem_slice(&key_pem).expect("device key PEM");
        let certified =
            CertifiedKey::from_der(chain, key, &provider()).expect("device key matches its cert");
        MockRelay::start_with_key(pki, certified, device.certificate_pem().to_string())
    }

    /// Serves whatever `certified` holds, even a certificate with someone
    /// else's key (rustls's own config builder would refuse that pairing).
    fn start_with_key(pki: &TestPki, certified: CertifiedKey, pem: String) -> MockRelay {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(pki.agency_ca_pem.as_bytes()) {
            roots.add(ca.expect("agency CA PEM")).expect("agency CA");
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .expect("client verifier");
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(FixedCert(Arc::new(certified))));
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for socket in listener.incoming().flatten() {
                let config = config.clone();
                std::thread::spawn(move || serve_one(config, socket));
            }
        });
        MockRelay {
            addr,
            device_cert_pem: pem,
        }
    }

    fn client(&self, identity: Option<&pki::ClientIdentity>) -> RelayClient {
        RelayClient::new(
            self.addr,
            &self.device_cert_pem,
            identity.map(|id| id.pem_pair()),
        )
        .expect("client config")
        .with_timeout(Duration::from_secs(5))
    }
}

/// Always the same certificate, without rustls's key-matches-certificate check.
#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn serve_one(config: Arc<ServerConfig>, socket: TcpStream) {
    // A deadline for the whole head, not per read: a slow sender that trickles
    // one byte at a time must not keep the connection forever.
    let head_done = Arc::new(AtomicBool::new(false));
    if let Ok(watched) = socket.try_clone() {
        let head_done = head_done.clone();
        std::thread::spawn(move || {
            std::thread::sleep(MOCK_HEAD_TIMEOUT);
            if !head_done.load(Ordering::SeqCst) {
                let _ = watched.shutdown(Shutdown::Both);
            }
        });
    }
    let connection = ServerConnection::new(config).expect("server connection");
    let mut stream = StreamOwned::new(connection, socket);
    // The first read drives the handshake; a refused certificate ends here,
    // and rustls sends the client its alert on the way out.
    let mut reader = BufReader::new(&mut stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    head_done.store(true, Ordering::SeqCst);
    let mut body = vec![0; content_length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    drop(reader);

    let mut parts = request_line.split_whitespace();
    let (status, answer) = match (parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(path), Some("HTTP/1.1")) => {
            let peer = stream
                .conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .expect("a verified client certificate");
            let answer = json!({
                "agency": agency_of(peer),
                "fingerprint": pki::fingerprint(peer),
                "method": method,
                "path": path,
                "body": serde_json::from_slice::<Value>(&body).ok(),
            });
            (200, answer)
        }
        _ => (
            400,
            json!({ "error": { "code": "malformed_body", "message": "bad request line" } }),
        ),
    };
    let body = answer.to_string();
    let reason = if status == 200 { "OK" } else { "Bad Request" };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
    stream.conn.send_close_notify();
    let _ = stream.conn.complete_io(&mut stream.sock);
}

/// The agency a client certificate names: subject Organization, else Common Name.
fn agency_of(cert_der: &[u8]) -> String {
    let cert = x509_cert::Certificate::from_der(cert_der).expect("client certificate parses");
    let attribute = |oid: &str| {
        cert.tbs_certificate.subject.0.iter().find_map(|rdn| {
            rdn.0
                .iter()
                .find(|atv| atv.oid.to_string() == oid)
                .and_then(|atv| std::str::from_utf8(atv.value.value()).ok())
                .map(str::to_string)
        })
    };
    attribute("2.5.4.10") // O
        .or_else(|| attribute("2.5.4.3")) // CN
        .expect("a subject with O or CN")
}

fn setup() -> (tempfile::TempDir, TestPki, MockRelay) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(&dir.path().join("pki"));
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let relay = MockRelay::start(&pki, &data_dir);
    (dir, pki, relay)
}

fn expect_handshake_refused<T: std::fmt::Debug>(what: &str, result: Result<T, RelayError>) {
    match result {
        Err(e) if e.is_handshake_failure() => {}
        other => panic!("{what}: expected a refused TLS handshake, got {other:?}"),
    }
}

#[test]
fn pki_writes_every_file_with_its_subject_validity_and_fingerprint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(dir.path());
    for name in [
        "agency-ca.pem",
        "client.pem",
        "client-key.pem",
        "foreign-ca.pem",
        "foreign-client.pem",
        "foreign-client-key.pem",
        "expired-client.pem",
        "expired-client-key.pem",
        "other-agency-client.pem",
        "other-agency-client-key.pem",
    ] {
        assert!(dir.path().join(name).is_file(), "{name} missing");
    }
    assert_eq!(
        std::fs::read_to_string(&pki.agency_ca_path).unwrap(),
        pki.agency_ca_pem
    );

    let now = std::time::SystemTime::now();
    let mut fingerprints = Vec::new();
    for (label, client) in pki.all_clients() {
        let der = CertificateDer::from_pem_slice(client.cert_pem.as_bytes()).expect(label);
        assert_eq!(der.as_ref(), client.cert_der.as_slice(), "{label}");
        assert_eq!(client.fingerprint, pki::fingerprint(&client.cert_der));
        assert_eq!(client.fingerprint.len(), 64, "{label}");
        assert!(
            client
                .fingerprint
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{label}: lowercase hex"
        );
        assert_eq!(agency_of(&client.cert_der), client.agency(), "{label}");
        let cert = x509_cert::Certificate::from_der(&client.cert_der).expect(label);
        let validity = &cert.tbs_certificate.validity;
        let expired = validity.not_after.to_system_time() < now;
        assert_eq!(expired, label == "expired client", "{label}");
        assert!(validity.not_before.to_system_time() < now, "{label}");
        fingerprints.push(client.fingerprint.clone());
    }
    fingerprints.sort();
    fingerprints.dedup();
    assert_eq!(fingerprints.len(), 4, "every certificate is distinct");
    assert_eq!(pki.client.agency(), pki::AGENCY);
    assert_eq!(
        pki.foreign_client.agency(),
        pki::AGENCY,
        "same name, wrong CA"
    );
    assert_eq!(pki.other_agency_client.agency(), pki::OTHER_AGENCY);

    // The agency CA signed the clients; the foreign one did not.
    let issuer = |der: &[u8]| {
        x509_cert::Certificate::from_der(der)
            .unwrap()
            .tbs_certificate
            .issuer
            .to_der()
            .unwrap()
    };
    let ca_der = CertificateDer::from_pem_slice(pki.agency_ca_pem.as_bytes()).unwrap();
    let ca_subject = x509_cert::Certificate::from_der(&ca_der)
        .unwrap()
        .tbs_certificate
        .subject
        .to_der()
        .unwrap();
    assert_eq!(issuer(&pki.client.cert_der), ca_subject);
    assert_eq!(issuer(&pki.other_agency_client.cert_der), ca_subject);
    assert_ne!(issuer(&pki.foreign_client.cert_der), ca_subject);
}

#[test]
fn agency_client_is_accepted_and_named_by_its_organization() {
    let (_dir, pki, relay) = setup();
    let client = relay.client(Some(&pki.client));
    client
        .probe_handshake(Duration::from_millis(200))
        .expect("handshake accepted");

    let body = footage_request().to_json();
    let response = client.post_json("/v1/requests", &body).expect("POST");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    let echo = response.json();
    assert_eq!(echo["agency"], pki::AGENCY);
    assert_eq!(echo["fingerprint"], pki.client.fingerprint);
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/v1/requests");
    assert_eq!(echo["body"], body, "the body arrives intact");

    let response = client
        .get("/v1/requests/r_1", &[("Range", "bytes=0-9")])
        .expect("GET");
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["method"], "GET");
}

#[test]
fn other_agency_and_common_name_only_certificates_are_named_as_issued() {
    let (_dir, pki, relay) = setup();
    let echo = relay
        .client(Some(&pki.other_agency_client))
        .get("/v1/device", &[])
        .expect("other agency")
        .json();
    assert_eq!(echo["agency"], pki::OTHER_AGENCY);
    assert_eq!(echo["fingerprint"], pki.other_agency_client.fingerprint);

    let cn_only = pki.issue_agency_client(
        "cn-only-client",
        None,
        "Garland Police Department",
        Validity::Current,
    );
    assert!(pki.dir.join("cn-only-client.pem").is_file());
    let echo = relay
        .client(Some(&cn_only))
        .get("/v1/device", &[])
        .expect("CN-only certificate")
        .json();
    assert_eq!(echo["agency"], "Garland Police Department");
}

#[test]
fn missing_foreign_expired_and_future_client_certificates_fail_the_handshake() {
    let (_dir, pki, relay) = setup();
    let not_yet_valid = pki.issue_agency_client(
        "future-client",
        Some(pki::AGENCY),
        "Sgt. X",
        Validity::NotYetValid,
    );
    let hostile = [
        ("no certificate", relay.client(None)),
        ("foreign CA", relay.client(Some(&pki.foreign_client))),
        ("expired", relay.client(Some(&pki.expired_client))),
        ("not yet valid", relay.client(Some(&not_yet_valid))),
    ];
    for (what, client) in hostile {
        expect_handshake_refused(what, client.probe_handshake(Duration::from_secs(3)));
        expect_handshake_refused(
            what,
            client.post_json("/v1/requests", &footage_request().to_json()),
        );
        expect_handshake_refused(what, client.get("/v1/device", &[]));
        expect_handshake_refused(what, client.send_raw(b"GET / HTTP/1.1\r\n\r\n"));
    }
}

#[test]
fn pinned_verifier_refuses_any_other_server_certificate() {
    let (dir, pki, relay) = setup();
    // Another box's device certificate, same shape, same subject.
    let elsewhere = dir.path().join("other-box");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let other = DeviceKey::load_or_create(&elsewhere, "mock-box").expect("other device");
    let client = RelayClient::new(
        relay.addr,
        other.certificate_pem(),
        Some(pki.client.pem_pair()),
    )
    .expect("client");
    let error = client
        .connect()
        .expect_err("a different device certificate");
    assert!(error.is_handshake_failure(), "{error:?}");
    assert!(error.to_string().contains("pinned"), "{error}");

    // Nor does a CA certificate stand in for the pinned one.
    let client =
        RelayClient::new(relay.addr, &pki.agency_ca_pem, Some(pki.client.pem_pair())).unwrap();
    expect_handshake_refused("agency CA pinned", client.connect());
}

#[test]
fn pinned_verifier_still_checks_the_handshake_signature() {
    // An impostor presents the real device certificate (it is public) but
    // signs with its own key: byte equality alone must not be enough.
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&dir.path().join("pki"));
    let real_dir = dir.path().join("real");
    std::fs::create_dir_all(&real_dir).unwrap();
    let real = DeviceKey::load_or_create(&real_dir, "box").expect("device key");
    let impostor_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let impostor_der = PrivateKeyDer::from_pem_slice(impostor_key.serialize_pem().as_bytes())
        .expect("impostor key");
    let signing_key = provider()
        .key_provider
        .load_private_key(impostor_der)
        .expect("load impostor key");
    let certified = CertifiedKey::new(
        vec![CertificateDer::from(real.certificate_der().to_vec())],
        signing_key,
    );
    let impostor = MockRelay::start_with_key(&pki, certified, real.certificate_pem().to_string());
    let error = impostor
        .client(Some(&pki.client))
        .connect()
        .expect_err("signature by the wrong key");
    assert!(error.is_handshake_failure(), "{error:?}");
}

#[test]
fn raw_bytes_and_slow_senders_reach_the_server_as_sent() {
    let (_dir, pki, relay) = setup();
    let client = relay.client(Some(&pki.client));

    let exchange = client.send_raw(b"NONSENSE\r\n\r\n").expect("raw exchange");
    assert!(exchange.closed_by_server);
    let response = exchange.response().expect("an HTTP answer");
    assert_eq!(response.status, 400);
    assert_eq!(response.error_code().as_deref(), Some("malformed_body"));

    let exchange = client
        .send_raw(b"GET /v1/device HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("raw GET");
    assert_eq!(
        exchange.response().expect("answer").json()["path"],
        "/v1/device"
    );

    // The mock drops a connection whose head takes longer than
    // MOCK_HEAD_TIMEOUT; 40 bytes at 50 ms each would take 2 s.
    let head = b"GET /v1/device HTTP/1.1\r\nHost: relay\r\n\r\n";
    let slow = client
        .send_slowly(head, Duration::from_millis(50))
        .expect("slow send");
    assert!(slow.cut_off, "{slow:?}");
    assert!(slow.bytes_sent < head.len(), "{slow:?}");
    assert!(
        slow.elapsed >= MOCK_HEAD_TIMEOUT && slow.elapsed < Duration::from_secs(2),
        "{slow:?}"
    );

    // Sent fast enough, the same bytes get an answer.
    let quick = client
        .send_slowly(head, Duration::from_millis(1))
        .expect("quick send");
    assert!(!quick.cut_off, "{quick:?}");
    let response = Response::parse(&quick.received).expect("answer");
    assert_eq!(response.status, 200);
}

#[test]
fn footage_request_bodies_pass_the_daemons_own_validation() {
    let agency = AgencyIdentity {
        name: pki::AGENCY.into(),
        cert_fingerprint: "00".repeat(32),
    };
    let now_us = porchlight::time::now_utc_us();
    let hour = Duration::from_secs(3600);
    let bodies = [
        footage_request(),
        footage_request().basis(Basis::Consent),
        footage_request()
            .basis(Basis::Emergency)
            .cameras(&["porch", "driveway"]),
        footage_request()
            .location(32.78, -96.8, 400.0)
            .window_ending_ago(Duration::from_secs(86_400), 12 * hour),
        footage_request()
            .case_id("2026-0000001")
            .window_ending_ago(Duration::ZERO, Duration::from_secs(15 * 60)),
    ];
    for body in bodies {
        let json = body.to_json();
        let bytes = serde_json::to_vec(&json).unwrap();
        let parsed = parse_request(&bytes).unwrap_or_else(|e| panic!("{e}: {json}"));
        let valid = validate(parsed, &agency, &RequestLimits::default(), now_us)
            .unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(valid.case_id(), body.case_id);
        assert_eq!(
            valid.legal_basis().is_emergency(),
            body.basis == Basis::Emergency
        );
        assert_eq!(
            json.get("warrant_reference").is_some(),
            matches!(body.basis, Basis::Warrant(_))
        );
    }

    // Text windows go out exactly as given, so tests can send bad ones.
    let bad = footage_request()
        .window_text("2026-11-23T22:00:00Z", "2026-11-23T21:00:00Z")
        .to_json();
    assert_eq!(bad["window"]["from"], "2026-11-23T22:00:00Z");
    let error = validate(
        parse_request(bad.to_string().as_bytes()).unwrap(),
        &agency,
        &RequestLimits::default(),
        now_us,
    )
    .expect_err("inverted window");
    assert_eq!(error.field(), Some("window.to"));
}

#[test]
fn responses_parse_with_length_chunked_and_close_framing() {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n4\r\nporc\r\n5;ext=1\r\nhligh\r\n1\r\nt\r\n0\r\n\r\n";
    let response = Response::parse(chunked).expect("chunked");
    assert_eq!(response.text(), "porchlight");
    assert_eq!(response.header("x-a"), Some("1"));

    let error = r#"{"error":{"code":"body_too_large","message":"big"}}"#;
    let sized = format!(
        "HTTP/1.1 413 Payload Too Large\r\ncontent-length: {}\r\n\r\n{error}",
        error.len()
    );
    let response = Response::parse(sized.as_bytes()).expect("sized");
    assert_eq!(response.status, 413);
    assert_eq!(response.error_code().as_deref(), Some("body_too_large"));
    assert_eq!(response.error_field(), None);

    let until_close = b"HTTP/1.1 200 OK\r\n\r\nall of it";
    assert_eq!(Response::parse(until_close).unwrap().text(), "all of it");
    assert!(Response::parse(b"SSH-2.0-OpenSSH\r\n").is_none());
}
