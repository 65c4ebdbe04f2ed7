//! A home joins the relay's registry and leaves it again. The owner enrols:
//! the shared camera is registered with a coarse location, the owner's
//! direction text, its level and the owner's contact alias, even though
//! the registry was down at first (the daemon kept recording and retried).
//! The owner raises the camera's level: the registry is updated. An
//! investigator gets footage. Then the owner leaves: every grant, token and
//! pending request is revoked, the relay is refused at once, the relay
//! receives a deletion request that verifies with the device certificate
//! it enrolled, confirms it, and the box wipes its relay credentials. Even
//! after joining again, the old links stay dead. All of it is in the
//! owner's audit log.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use support::pki::TestPki;
use support::reference_relay::{verify_signed, ReferenceRelay, RegistryPki};
use support::relay_client::{footage_request, Basis, RelayClient};
use support::{free_port, http_get, http_send, porchlight, wait_until};

fn audit(http: std::net::SocketAddr) -> Vec<Value> {
    support::audit_entries(http)
}

fn entries_of<'a>(entries: &'a [Value], event: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["event"] == event).collect()
}

fn text_of(entry: &Value) -> String {
    entry.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_registers_updates_and_leaves_the_relay() {
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let registry_pki = RegistryPki::generate(&pki_dir.path().join("registry"));
    let relay_port = free_port();
    let registry_port = free_port();
    // The box keeps its own copies of both CAs (wiped when it leaves).
    let pinned_dir = pki_dir.path().join("pinned");
    std::fs::create_dir_all(&pinned_dir).expect("dir");
    let agency_ca = pinned_dir.join("agency-ca.pem");
    let registry_ca = pinned_dir.join("registry-ca.pem");
    std::fs::copy(&pki.agency_ca_path, &agency_ca).expect("copy");
    let extra = format!(
        "[relay]\nlisten = \"127.0.0.1:{relay_port}\"\nagency_ca = \"{}\"\n\
         registry_url = \"https://127.0.0.1:{registry_port}/registry\"\nregistry_ca = \"{}\"\n\
         location_decimals = 2\ncontact_alias = \"porch-owner-17\"\n",
        agency_ca.display(),
        registry_ca.display()
    );
    let camera = "sharing = \"on_request\"\nlocation = { lat = 32.77668, lon = -96.79704 }\n\
                  direction = \"north-east, towards Elm Street\"\nfield_of_view = \"driveway and sidewalk\"\n";
    let rec = support::record_camera(3.0, &extra, "1GB", camera).await;
    let data_dir: PathBuf = rec.dir.path().join("data");
    let config = rec.daemon.config_path.display().to_string();

    tokio::task::block_in_place(|| {
        // Enrol while the registry is down: the registration waits.
        let (code, out, err) = porchlight(&[
            "relay",
            "enroll",
            "--config",
            &config,
            "--registry-ca",
            registry_pki.ca_path.to_str().expect("utf-8"),
        ]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("not registered yet"), "{out}");
        assert!(registry_ca.is_file());
    });
    let daemon = tokio::task::block_in_place(|| rec.daemon.restart_with(|_| {}));
    let http = daemon.http;
    tokio::task::block_in_place(|| {
        wait_until(
            Duration::from_secs(20),
            "the unreachable registry in the audit log",
            || {
                audit(http).iter().any(|e| {
                    e["event"] == "enrolment" && text_of(e).contains("registry unreachable")
                })
            },
        );
        // The daemon is unaffected: healthy and recording.
        let before = daemon.metric(
            "porchlight_frames_total",
            &[("camera", "porch"), ("stream", "main")],
        );
        wait_until(Duration::from_secs(20), "recording to go on", || {
            daemon.metric(
                "porchlight_frames_total",
                &[("camera", "porch"), ("stream", "main")],
            ) > before + 30.0
        });
        let (status, body) = http_get(http, "/api/relay").expect("status");
        assert_eq!(status, 200, "{body}");
        let status: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(status["registration"]["state"], "pending", "{status}");
    });

    // The registry comes up: the daemon's retry registers the camera.
    let registry = ReferenceRelay::start(&registry_pki, registry_port);
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(60), "the registration", || {
            !registry.entries().is_empty()
        });
    });
    let device_cert = std::fs::read_to_string(data_dir.join("device-cert.pem")).expect("cert");
    let device_der = porchlight::evidence::DeviceKey::load_or_create(&data_dir, "x")
        .expect("device key")
        .certificate_der()
        .to_vec();
    let entry = registry.entries()[0].clone();
    assert_eq!(
        entry.device_cert_der, device_der,
        "enrolled with the device certificate"
    );
    let registration = registry
        .received()
        .into_iter()
        .find(|r| r.kind == "registration")
        .expect("registration");
    assert!(
        registration.verified && registration.status == 201,
        "{registration:?}"
    );
    assert_eq!(
        registration.payload["device_cert_pem"],
        device_cert.as_str()
    );
    let listing = &entry.listing;
    assert_eq!(listing["contact_alias"], "porch-owner-17");
    let cam = &listing["cameras"][0];
    assert_eq!(cam["camera"], "porch");
    assert_eq!(cam["level"], "on_request");
    // 32.77668, -96.79704 at two decimals: only about a kilometre is told.
    assert_eq!(cam["location"], json!({ "lat": 32.78, "lon": -96.8 }));
    assert_eq!(cam["direction"], "north-east, towards Elm Street");
    assert_eq!(cam["field_of_view"], "driveway and sidewalk");

    // The owner raises the level: the registry follows.
    tokio::task::block_in_place(|| {
        let (status, body) = http_send(
            http,
            "PUT",
            "/api/cameras/porch/sharing",
            Some(r#"{"level":"emergency_auto"}"#),
        )
        .expect("PUT sharing");
        assert_eq!(status, 200, "{body}");
        wait_until(Duration::from_secs(30), "the registry update", || {
            registry
                .entries()
                .first()
                .is_some_and(|e| e.listing["cameras"][0]["level"] == "emergency_auto")
        });
    });
    let update = registry
        .received()
        .into_iter()
        .find(|r| r.kind == "update")
        .expect("update");
    assert!(update.verified && update.status == 200, "{update:?}");
    assert!(update.payload["sequence"].as_u64() > registration.payload["sequence"].as_u64());

    // An investigator gets footage (an emergency, served at once) and asks
    // for more (consent, waiting for the owner).
    let officer = RelayClient::for_daemon(
        format!("127.0.0.1:{relay_port}").parse().expect("addr"),
        &data_dir,
        &pki.client,
    );
    let window =
        || footage_request().window_ending_ago(Duration::ZERO, Duration::from_secs(15 * 60));
    let (id, url) = tokio::task::block_in_place(|| {
        let created = officer
            .post_json("/v1/requests", &window().basis(Basis::Emergency).to_json())
            .expect("POST");
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json()["id"].as_str().expect("id").to_string();
        let mut url = String::new();
        wait_until(Duration::from_secs(60), "the evidence package", || {
            let status = officer
                .get(&format!("/v1/requests/{id}"), &[])
                .expect("status")
                .json();
            let Some(u) = status["cameras"][0]["package"]["url"].as_str() else {
                return false;
            };
            url = u.to_string();
            officer.get(&url, &[]).expect("download").status == 200
        });
        let pending = officer
            .post_json(
                "/v1/requests",
                &window()
                    .case_id("2026-DPD-0999")
                    .basis(Basis::Consent)
                    .to_json(),
            )
            .expect("POST");
        assert_eq!(pending.status, 201, "{}", pending.text());
        (id, url)
    });

    // The owner leaves.
    let (status, body) = tokio::task::block_in_place(|| {
        http_send(http, "POST", "/api/relay/leave", Some("{}")).expect("leave")
    });
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(report["deletion"], "confirmed", "{report}");
    assert_eq!(report["grants_revoked"], 1, "{report}");
    assert!(report["tokens_revoked"].as_u64() >= Some(1), "{report}");
    assert!(report["pending_denied"].as_u64() >= Some(1), "{report}");

    // The relay got a deletion request that verifies with the certificate
    // it enrolled, for the registry entry and the footage it holds.
    let deletion = registry
        .received()
        .into_iter()
        .find(|r| r.kind == "deletion")
        .expect("a deletion request");
    assert!(deletion.verified && deletion.status == 200, "{deletion:?}");
    let payload = verify_signed(&deletion.body, &entry.device_cert_der).expect("verifies");
    assert_eq!(payload["registration_id"], entry.id.as_str());
    assert_eq!(payload["delete"], json!(["registry_entry", "footage"]));
    assert!(registry.entries().is_empty());
    assert_eq!(registry.deleted(), vec![entry.id.clone()]);

    // Everything the relay had is refused: the link, the request, any call.
    tokio::task::block_in_place(|| {
        assert!(
            officer.get(&url, &[]).is_err(),
            "the download link is refused"
        );
        assert!(officer.get(&format!("/v1/requests/{id}"), &[]).is_err());
        assert!(officer.get("/v1/device", &[]).is_err());
    });

    // Credentials are wiped on disk; the confirmation is kept.
    assert!(!agency_ca.exists(), "pinned agency CA wiped");
    assert!(!registry_ca.exists(), "pinned registry CA wiped");
    assert!(!data_dir.join("relay/registration.json").exists());
    assert!(!data_dir.join("relay/enrolment.json").exists());
    let left: Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir.join("relay/left.json")).expect("left.json"),
    )
    .expect("json");
    assert_eq!(left["confirmation"]["registration_id"], entry.id.as_str());

    // The audit log tells the whole story.
    let entries = tokio::task::block_in_place(|| audit(http));
    let enrolments = entries_of(&entries, "enrolment");
    assert!(enrolments
        .iter()
        .any(|e| text_of(e).contains("registered with the relay's registry")));
    assert!(enrolments.iter().any(|e| text_of(e).contains("updated")));
    let leaves: Vec<String> = entries_of(&entries, "leave")
        .iter()
        .map(|e| text_of(e))
        .collect();
    assert!(
        leaves.iter().any(|t| t.contains("relay access stopped")),
        "{leaves:?}"
    );
    assert!(
        leaves.iter().any(|t| t.contains("credentials wiped")),
        "{leaves:?}"
    );
    assert!(
        leaves.iter().any(|t| t.contains("signed deletion request")),
        "{leaves:?}"
    );
    assert!(
        leaves.iter().any(|t| t.contains("confirmed the deletion")),
        "{leaves:?}"
    );
    let revocations = entries_of(&entries, "revocation");
    assert!(revocations
        .iter()
        .any(|e| e["object"]["request_id"] == id.as_str()));
    assert!(entries
        .iter()
        .any(|e| e["event"] == "auth_failure" && text_of(e).contains("left the relay")));

    // Joining again later does not bring the old links back.
    std::fs::copy(&pki.agency_ca_path, &agency_ca).expect("copy");
    let daemon = tokio::task::block_in_place(|| {
        let (code, out, err) = porchlight(&[
            "relay",
            "enroll",
            "--config",
            &config,
            "--registry-ca",
            registry_pki.ca_path.to_str().expect("utf-8"),
        ]);
        assert_eq!(code, 0, "{out}{err}");
        daemon.restart_with(|_| {})
    });
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(30), "the new registration", || {
            registry.entries().len() == 1
        });
        let old = officer.get(&url, &[]).expect("download");
        assert_eq!(old.status, 403, "{}", old.text());
        assert_eq!(old.error_code().as_deref(), Some("invalid_token"));
        let status = officer
            .get(&format!("/v1/requests/{id}"), &[])
            .expect("status")
            .json();
        assert_eq!(status["status"], "denied", "{status}");
        assert_eq!(status["cameras"][0]["reason"], "revoked", "{status}");
        assert!(status["cameras"][0]["package"].is_null(), "{status}");
    });
    drop(daemon);
}
