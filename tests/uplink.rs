//! A box behind a home router with no open port: it dials the agency's
//! relay itself (TLS with its device certificate, then ONVIF Uplink's
//! `h2c-reverse`: HTTP/2 with the roles reversed) and serves the relay API
//! over that tunnel. An officer's request reaches the owner, the owner
//! approves, and the evidence comes back through the tunnel and verifies.
//! The tunnel is cut and the relay goes away and comes back; the box dials
//! again. A relay whose certificate the pinned agency CA did not sign gets
//! nothing. The owner's audit log reads the same as for the listener.

mod support;
#[path = "support/uplink_relay.rs"]
mod uplink_relay;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::pki::{ClientIdentity, TestPki, AGENCY};
use support::relay_client::{
    footage_request, package_url, Basis, FootageRequestBody, RelayClient, Response,
};
use support::{free_port, porchlight, Recorded};
use uplink_relay::UplinkRelay;

/// A box whose relay config is `relay_table` (plus the pinned agency CA),
/// with one `on_request` camera that has a few seconds of footage.
async fn home(pki: &TestPki, relay_table: &str) -> Recorded {
    let extra = format!(
        "[relay]\nagency_ca = \"{}\"\n{relay_table}\n",
        pki.agency_ca_path.display()
    );
    let camera = "sharing = \"on_request\"\nlocation = { lat = 32.7767, lon = -96.7970 }\n";
    support::record_camera(4.0, &extra, "1GB", camera).await
}

/// The uplink keys for a relay at `relay`, retrying at most every 3 s.
fn uplink_to(relay: SocketAddr) -> String {
    format!("uplink = \"https://{relay}/uplink/v1?box=porch\"\nuplink_retry_max = \"3s\"\n")
}

fn relay_addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().expect("addr")
}

fn device_cert(rec: &Recorded) -> String {
    std::fs::read_to_string(rec.dir.path().join("data/device-cert.pem")).expect("device cert")
}

fn metric(rec: &Recorded, name: &str) -> f64 {
    tokio::task::block_in_place(|| rec.daemon.metric(name, &[]))
}

fn audit(rec: &Recorded) -> Vec<Value> {
    tokio::task::block_in_place(|| support::audit_entries(rec.daemon.http))
}

/// Polls `condition` until it holds or `timeout` passes (without blocking
/// the runtime the reference relay runs on).
async fn eventually(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request for the last 15 minutes (the footage is the last few seconds).
fn recent() -> FootageRequestBody {
    footage_request().window_ending_ago(Duration::ZERO, Duration::from_secs(15 * 60))
}

/// TCP ports the process listens on (from its own socket descriptors), so a
/// test can say "no inbound port but the owner API's".
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the daemon's descriptors")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_string)
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A = LISTEN), inode.
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            if *state == "0A" && inodes.iter().any(|i| i == inode) {
                let port = local.rsplit(':').next().unwrap_or_default();
                ports.push(u16::from_str_radix(port, 16).expect("hex port"));
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Polls the request through the tunnel until its package for `porch` downloads.
async fn download_when_ready(relay: &UplinkRelay, id: &str) -> (String, Response) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = relay
            .get(&format!("/v1/requests/{id}"))
            .await
            .expect("status through the tunnel");
        assert_eq!(status.status, 200, "{}", status.text());
        if let Some(url) = package_url(&status.json(), "porch") {
            let download = relay.get(&url).await.expect("download through the tunnel");
            if download.status != 503 {
                return (url, download);
            }
        }
        assert!(Instant::now() < deadline, "no evidence package in time");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn verify(path: &Path, fingerprint: &str) -> (i32, String) {
    let (code, out, err) = porchlight(&[
        "verify",
        path.to_str().expect("utf-8"),
        "--expect-fingerprint",
        fingerprint,
    ]);
    (code, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_behind_no_open_port_serves_a_request_through_its_uplink_and_dials_again_after_drops()
{
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let addr = relay_addr();
    let relay_cert = pki.issue_relay_server("relay", "127.0.0.1", false);
    let rec = home(&pki, &uplink_to(addr)).await;

    // Behind no open port: the only socket it listens on is the owner API's.
    assert_eq!(
        listening_ports(rec.daemon.child.id()),
        vec![rec.daemon.http.port()],
        "the box opens no relay port"
    );
    // No relay yet: the box keeps dialling and says so in its metrics.
    eventually(Duration::from_secs(20), "failed uplink attempts", || {
        metric(&rec, "porchlight_uplink_failed_attempts_total") >= 1.0
    })
    .await;
    assert_eq!(metric(&rec, "porchlight_uplink_connected"), 0.0);

    // The relay comes up; the box's next attempt opens the tunnel.
    let mut relay = UplinkRelay::start(addr, relay_cert.pem_pair(), &device_cert(&rec)).await;
    relay.wait_for_tunnel(Duration::from_secs(30)).await;
    let upgrade = relay.upgrade_requests().pop().expect("an upgrade request");
    assert!(
        upgrade.starts_with("GET /uplink/v1?box=porch HTTP/1.1\r\n"),
        "{upgrade}"
    );
    assert!(upgrade.contains("Upgrade: h2c-reverse\r\n"), "{upgrade}");
    eventually(Duration::from_secs(10), "the tunnel in the metrics", || {
        metric(&rec, "porchlight_uplink_connected") == 1.0
    })
    .await;

    // Who is this box? Its fingerprint is what signs the evidence.
    let device = relay.get("/v1/device").await.expect("device");
    assert_eq!(device.status, 200, "{}", device.text());
    let fingerprint = device.json()["device"]["cert_fingerprint"]
        .as_str()
        .and_then(|f| f.strip_prefix("sha256:"))
        .expect("fingerprint")
        .to_string();

    // An officer asks; the request waits for the owner.
    let created = relay
        .post_json("/v1/requests", &recent().basis(Basis::Consent).to_json())
        .await
        .expect("POST through the tunnel");
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    assert_eq!(body["status"], "pending", "{body}");
    assert!(package_url(&body, "porch").is_none(), "nothing before yes");
    let id = body["id"].as_str().expect("id").to_string();

    // The owner approves with the CLI.
    let config = rec.daemon.config_path.display().to_string();
    let (code, out, err) =
        tokio::task::block_in_place(|| porchlight(&["requests", "approve", "-c", &config, &id]));
    assert_eq!(code, 0, "{out}{err}");

    // The relay downloads the package through the tunnel; it verifies offline.
    let (url, package) = download_when_ready(&relay, &id).await;
    assert_eq!(package.status, 200, "{}", package.text());
    assert_eq!(package.header("content-type"), Some("application/x-tar"));
    let path = rec.dir.path().join("delivered.tar");
    std::fs::write(&path, &package.body).expect("write");
    let (code, out) = tokio::task::block_in_place(|| verify(&path, &fingerprint));
    assert_eq!(code, 0, "the package verifies offline: {out}");
    let part = relay
        .request("GET", &url, &[("range", "bytes=1000-1999")], Vec::new())
        .await
        .expect("range");
    assert_eq!(part.status, 206, "{}", part.text());
    assert_eq!(part.body, package.body[1000..2000]);

    // The relay cuts the tunnel: the box dials again and the next call works.
    relay.drop_tunnel().await;
    relay.wait_for_tunnel(Duration::from_secs(30)).await;
    let status = relay
        .get(&format!("/v1/requests/{id}"))
        .await
        .expect("status after reconnecting");
    assert_eq!(status.status, 200, "{}", status.text());
    assert_eq!(status.json()["status"], "approved");

    // The relay goes away altogether, then comes back on the same port.
    relay.stop_listener().await;
    eventually(Duration::from_secs(30), "the box to notice", || {
        metric(&rec, "porchlight_uplink_connected") == 0.0
    })
    .await;
    let failed_before = metric(&rec, "porchlight_uplink_failed_attempts_total");
    eventually(Duration::from_secs(30), "attempts while it is gone", || {
        metric(&rec, "porchlight_uplink_failed_attempts_total") > failed_before
    })
    .await;
    relay.start_listener().await;
    relay.wait_for_tunnel(Duration::from_secs(30)).await;
    let again = relay
        .post_json(
            "/v1/requests",
            &recent()
                .basis(Basis::Consent)
                .case_id("2026-0042999")
                .to_json(),
        )
        .await
        .expect("POST after the relay came back");
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(relay.tunnels(), 3, "one tunnel per connection");
    assert!(metric(&rec, "porchlight_uplink_reconnects_total") >= 2.0);
    assert!(metric(&rec, "porchlight_uplink_connections_total") >= 3.0);

    // The owner's audit log: the calls under the relay's certificate, the
    // agency it names, and the tunnel coming and going.
    let entries = audit(&rec);
    let of =
        |event: &str| -> Vec<&Value> { entries.iter().filter(|e| e["event"] == event).collect() };
    let received = of("request_received");
    assert_eq!(received.len(), 2, "{received:?}");
    for entry in received.iter().chain(of("download").iter()) {
        assert_eq!(entry["identity"]["agency"], AGENCY, "{entry}");
        assert_eq!(
            entry["identity"]["cert_fingerprint"]
                .as_str()
                .map(|f| f.trim_start_matches("sha256:")),
            Some(relay_cert.fingerprint.as_str()),
            "{entry}"
        );
    }
    let downloads = of("download");
    assert_eq!(downloads.len(), 2, "whole and ranged: {downloads:?}");
    assert_eq!(downloads[0]["bytes_served"], package.body.len() as u64);
    assert_eq!(of("uplink_connected").len(), 3, "{entries:?}");
    assert!(of("uplink_disconnected").len() >= 2, "{entries:?}");
    assert!(!of("approval").is_empty(), "the owner's approval is logged");
    assert!(
        !of("policy_change").is_empty(),
        "the sharing policy in force is on record with only an uplink"
    );
    tokio::task::block_in_place(|| {
        let (code, out, err) = porchlight(&["audit", "verify", "--config", &config]);
        assert_eq!(code, 0, "the log's chain holds: {out}{err}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_certificate_the_pinned_ca_did_not_sign_gets_nothing() {
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let addr = relay_addr();
    let impostor = pki.issue_relay_server("impostor", "127.0.0.1", true);
    let rec = home(&pki, &uplink_to(addr)).await;
    let relay = UplinkRelay::start(addr, impostor.pem_pair(), &device_cert(&rec)).await;

    eventually(Duration::from_secs(30), "two attempts", || {
        relay.accepted() >= 2
    })
    .await;
    assert_eq!(relay.handshakes(), 0, "the box aborts the handshake");
    assert!(relay.upgrade_requests().is_empty(), "no HTTP is sent");
    assert_eq!(relay.tunnels(), 0);
    assert_eq!(metric(&rec, "porchlight_uplink_connected"), 0.0);
    assert!(metric(&rec, "porchlight_uplink_failed_attempts_total") >= 2.0);
    assert_eq!(metric(&rec, "porchlight_uplink_connections_total"), 0.0);

    let entries = audit(&rec);
    let refused: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == "auth_failure")
        .collect();
    assert!(
        !refused.is_empty(),
        "the owner sees the attempt: {entries:?}"
    );
    let reason = refused[0]["outcome"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("uplink"), "{reason}");
    assert!(
        entries
            .iter()
            .all(|e| e["event"] != "uplink_connected" && e["event"] != "request_received"),
        "{entries:?}"
    );
}

/// Leaves replaced by their JSON type: what "the same shape" compares.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect::<serde_json::Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
    }
}

/// The audit entries written for one certificate's calls, by event.
fn entries_of<'a>(entries: &'a [Value], who: &ClientIdentity) -> BTreeMap<String, Vec<&'a Value>> {
    let mut by_event: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for entry in entries {
        let fingerprint = entry["identity"]["cert_fingerprint"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("sha256:");
        if fingerprint == who.fingerprint && entry["event"] != "uplink_connected" {
            by_event
                .entry(entry["event"].as_str().unwrap_or_default().to_string())
                .or_default()
                .push(entry);
        }
    }
    by_event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tunnel_passes_the_same_gate_and_audit_as_the_listener_and_the_body_cannot_choose_the_agency(
) {
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let addr = relay_addr();
    let listen = relay_addr();
    let relay_cert = pki.issue_relay_server("relay", "127.0.0.1", false);
    let rec = home(&pki, &format!("listen = \"{listen}\"\n{}", uplink_to(addr))).await;
    let relay = UplinkRelay::start(addr, relay_cert.pem_pair(), &device_cert(&rec)).await;
    relay.wait_for_tunnel(Duration::from_secs(30)).await;
    let officer = RelayClient::for_daemon(listen, &rec.dir.path().join("data"), &pki.client);

    // The same three calls each way: who are you, a request naming another
    // agency in its body, a good request (each way its own case).
    let lying = recent()
        .basis(Basis::Consent)
        .agency("Other PD")
        .case_id("2026-1");
    let inbound = tokio::task::block_in_place(|| {
        (
            officer.get("/v1/device", &[]).expect("device"),
            officer
                .post_json("/v1/requests", &lying.to_json())
                .expect("lying"),
            officer
                .post_json(
                    "/v1/requests",
                    &recent().basis(Basis::Consent).case_id("2026-2").to_json(),
                )
                .expect("good"),
        )
    });
    let tunnelled = (
        relay.get("/v1/device").await.expect("device"),
        relay
            .post_json("/v1/requests", &lying.to_json())
            .await
            .expect("lying"),
        relay
            .post_json(
                "/v1/requests",
                &recent().basis(Basis::Consent).case_id("2026-3").to_json(),
            )
            .await
            .expect("good"),
    );
    for (a, b) in [
        (&inbound.0, &tunnelled.0),
        (&inbound.1, &tunnelled.1),
        (&inbound.2, &tunnelled.2),
    ] {
        assert_eq!(a.status, b.status, "{} / {}", a.text(), b.text());
        assert_eq!(a.error_code(), b.error_code());
    }
    assert_eq!(tunnelled.1.status, 403, "{}", tunnelled.1.text());
    assert_eq!(tunnelled.1.error_code().as_deref(), Some("agency_mismatch"));
    assert_eq!(tunnelled.2.status, 201, "{}", tunnelled.2.text());

    let entries = audit(&rec);
    let (by_listener, by_tunnel) = (
        entries_of(&entries, &pki.client),
        entries_of(&entries, &relay_cert),
    );
    assert_eq!(
        by_listener.keys().collect::<Vec<_>>(),
        by_tunnel.keys().collect::<Vec<_>>(),
        "the same kinds of entries"
    );
    assert!(by_tunnel.contains_key("request_received"), "{by_tunnel:?}");
    assert!(by_tunnel.contains_key("auth_failure"), "{by_tunnel:?}");
    for (event, listener_entries) in &by_listener {
        let tunnel_entries = &by_tunnel[event];
        assert_eq!(listener_entries.len(), tunnel_entries.len(), "{event}");
        for (a, b) in listener_entries.iter().zip(tunnel_entries) {
            assert_eq!(shape(a), shape(b), "{event}: {a} / {b}");
            for key in ["component", "event"] {
                assert_eq!(a[key], b[key]);
            }
            assert_eq!(a["identity"]["kind"], b["identity"]["kind"]);
            assert_eq!(a["identity"]["agency"], AGENCY);
            assert_eq!(b["identity"]["agency"], AGENCY);
            assert_eq!(a["outcome"]["result"], b["outcome"]["result"]);
        }
    }
}
