//! An owner who left the relay program joins it again from the browser.
//! The box is in the program (enrolled with the CLI, registered with the
//! relay's registry) and an officer's request passes the policy gate. The
//! owner leaves: the officer is refused. Later, on the sharing page, the
//! owner pastes the agency CA the police program published, picks the
//! registry CA file, checks it, sees the same SHA-256 fingerprint the
//! program published (computed here with openssl), ticks "I compared this
//! fingerprint" and joins. Porchlight restarts in place; the registry
//! receives a new registration, the officer's request is served again over
//! mTLS, and the audit log names the owner and the fingerprint. Wrong
//! inputs (garbage, a leaf certificate, a wrong fingerprint, joining twice,
//! no relay configured) are refused with errors naming the problem.
//! Screenshots of the join form (desktop and phone) land in
//! `target/web-ui-screenshots/`.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use support::pki::TestPki;
use support::reference_relay::{ReferenceRelay, RegistryPki};
use support::relay_client::{footage_request, Basis, RelayClient};
use support::{free_port, porchlight, wait_until};

const OWNER: &str = "owner";
const OWNER_PASSWORD: &str = "porch light at night";

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("web-ui-screenshots");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// The owner API with the local CLI token (new at each daemon start).
fn owner_call(
    http: SocketAddr,
    data: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let bearer = support::cli_bearer(data);
    let body = body.map(Value::to_string);
    let (status, _, text) = support::http_request(
        http,
        method,
        path,
        &[("Authorization", &bearer)],
        body.as_deref(),
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// What the program publishes: the CA's SHA-256, as openssl prints it.
fn published_fingerprint(cert: &Path) -> String {
    support::openssl_sha256_fingerprint(cert)
}

fn join_in_chromium(base: &str, out: &Path, agency_ca: &Path, registry_ca: &Path) -> Value {
    support::browser_as_owner(
        "relay_join.mjs",
        OWNER,
        OWNER_PASSWORD,
        &[Path::new(base), out, agency_ca, registry_ca],
    )
}

/// An officer's consent request: through mTLS and the policy gate.
fn officer_asks(officer: &RelayClient, case: &str) -> Result<u16, String> {
    officer
        .post_json(
            "/v1/requests",
            &footage_request()
                .case_id(case)
                .basis(Basis::Consent)
                .window_ending_ago(Duration::ZERO, Duration::from_secs(15 * 60))
                .to_json(),
        )
        .map(|r| {
            if r.status != 201 {
                eprintln!("the relay answered {}: {}", r.status, r.text());
            }
            r.status
        })
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_who_left_joins_the_relay_again_from_the_browser() {
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let registry_pki = RegistryPki::generate(&pki_dir.path().join("registry"));
    let relay_port = free_port();
    let registry_port = free_port();
    let registry = ReferenceRelay::start(&registry_pki, registry_port);
    let pinned = pki_dir.path().join("pinned");
    let extra = format!(
        "[relay]\nlisten = \"127.0.0.1:{relay_port}\"\nagency_ca = \"{}\"\n\
         registry_url = \"https://127.0.0.1:{registry_port}/registry\"\nregistry_ca = \"{}\"\n",
        pinned.join("agency-ca.pem").display(),
        pinned.join("registry-ca.pem").display()
    );
    // The config as the installer left it, with the CA the program sent.
    std::fs::create_dir_all(&pinned).expect("dir");
    std::fs::copy(&pki.agency_ca_path, pinned.join("agency-ca.pem")).expect("copy");
    let camera = "sharing = \"on_request\"\nlocation = { lat = 32.7767, lon = -96.7970 }\n";
    let rec = support::record_camera(2.0, &extra, "1GB", camera).await;
    let data = rec.dir.path().join("data");
    let config = rec.daemon.config_path.display().to_string();
    let out = artifacts();

    // The box is in the program: enrolled with the CLI, registered.
    let daemon = tokio::task::block_in_place(|| {
        let (code, stdout, stderr) = porchlight(&[
            "relay",
            "enroll",
            "--config",
            &config,
            "--agency-ca",
            pki.agency_ca_path.to_str().expect("utf-8"),
            "--registry-ca",
            registry_pki.ca_path.to_str().expect("utf-8"),
        ]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        support::add_owner_account(Path::new(&config), OWNER, OWNER_PASSWORD);
        rec.daemon.restart_with(|_| {})
    });
    let http = daemon.http;
    let officer = RelayClient::for_daemon(
        format!("127.0.0.1:{relay_port}").parse().expect("addr"),
        &data,
        &pki.client,
    );
    let agency_pem = std::fs::read_to_string(&pki.agency_ca_path).expect("agency CA");
    let registry_pem = std::fs::read_to_string(&registry_pki.ca_path).expect("registry CA");
    let published = published_fingerprint(&pki.agency_ca_path);
    let fingerprint = published.replace(':', "").to_lowercase();
    let registrations = || {
        registry
            .received()
            .into_iter()
            .filter(|r| r.kind == "registration" && r.verified)
            .count()
    };
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(60), "the registration", || {
            registry.entries().len() == 1
        });
        assert_eq!(officer_asks(&officer, "join-1"), Ok(201));

        // Joining while in the program with the same CA: nothing to do.
        let (status, body) = owner_call(
            http,
            &data,
            "POST",
            "/api/relay/join",
            Some(&json!({ "agency_ca_pem": agency_pem, "confirm_fingerprint": published })),
        );
        assert_eq!(status, 409, "{body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("already")),
            "{body}"
        );

        // The owner leaves: the officer is refused from now on.
        let (status, body) = owner_call(http, &data, "POST", "/api/relay/leave", Some(&json!({})));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["deletion"], "confirmed", "{body}");
        assert!(
            officer_asks(&officer, "join-2").is_err(),
            "refused after leaving"
        );
        assert!(registry.entries().is_empty());

        // Wrong inputs, named; nothing is written.
        let refused = |path: &str, body: Value, status: u16, names: &str| {
            let (got, answer) = owner_call(http, &data, "POST", path, Some(&body));
            assert_eq!(got, status, "{path} {body}: {answer}");
            let error = answer["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(names),
                "{path}: `{error}` should name `{names}`"
            );
        };
        refused(
            "/api/relay/join/preview",
            json!({ "agency_ca_pem": "hello, I am the police" }),
            400,
            "not a PEM certificate",
        );
        refused(
            "/api/relay/join/preview",
            json!({ "agency_ca_pem": pki.client.cert_pem }),
            400,
            "not a CA certificate",
        );
        refused(
            "/api/relay/join",
            json!({ "agency_ca_pem": agency_pem, "confirm_fingerprint": published }),
            400,
            "`registry_ca_pem` is needed",
        );
        refused(
            "/api/relay/join",
            json!({ "agency_ca_pem": agency_pem, "registry_ca_pem": registry_pem,
                    "confirm_fingerprint": "00".repeat(32) }),
            400,
            "confirm_fingerprint",
        );
        refused(
            "/api/relay/join",
            json!({ "agency_ca_pem": pki.foreign_ca_pem, "registry_ca_pem": registry_pem,
                    "confirm_fingerprint": published }),
            400,
            "compare it again",
        );
        // A second CA slipped in after the one the owner compared is refused.
        refused(
            "/api/relay/join",
            json!({ "agency_ca_pem": format!("{agency_pem}{}", pki.foreign_ca_pem),
                    "registry_ca_pem": registry_pem, "confirm_fingerprint": published }),
            400,
            "holds 2 certificates",
        );
        let (status, preview) = owner_call(
            http,
            &data,
            "POST",
            "/api/relay/join/preview",
            Some(&json!({ "agency_ca_pem": agency_pem })),
        );
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["agency_cas"][0]["sha256"], fingerprint.as_str());
        let (_, status) = owner_call(http, &data, "GET", "/api/relay", None);
        assert_eq!(status["state"], "left", "{status}");
        assert!(
            !pinned.join("agency-ca.pem").exists(),
            "the preview wrote nothing"
        );
    });

    // In the browser: paste, check, compare, confirm, join.
    let seen = tokio::task::block_in_place(|| {
        join_in_chromium(
            &format!("http://{http}"),
            &out,
            &pki.agency_ca_path,
            &registry_pki.ca_path,
        )
    });
    eprintln!("the browser saw: {seen:#}");
    assert!(seen["failed"].is_null(), "a step failed: {seen}");
    assert_eq!(seen["stateBefore"], "left", "{seen}");
    assert_eq!(seen["leaveHidden"], true, "{seen}");
    assert!(
        seen["shownError"]
            .as_str()
            .is_some_and(|e| e.contains("not a PEM")),
        "{seen}"
    );
    assert_eq!(
        seen["fingerprints"][0],
        fingerprint.as_str(),
        "the page shows the fingerprint the program published: {seen}"
    );
    assert_eq!(
        seen["fingerprints"].as_array().map(Vec::len),
        Some(2),
        "agency and registry CA: {seen}"
    );
    assert_eq!(seen["joinDisabledBeforeTick"], true, "{seen}");
    assert_eq!(seen["confirmFocused"], "join-confirm", "{seen}");
    assert_eq!(seen["stateAfter"], "enrolled", "{seen}");
    assert_eq!(seen["joinHiddenAfter"], true, "{seen}");
    // The restart did not log the owner out.
    assert!(
        seen["urlAfter"]
            .as_str()
            .is_some_and(|u| u.ends_with("/sharing")),
        "{seen}"
    );
    assert_eq!(seen["phoneOverflow"], false, "{seen}");
    // Failed loads are expected (the bad PEM's 400, the restart); script
    // errors are not.
    assert!(
        seen["consoleErrors"]
            .as_array()
            .is_some_and(|e| e.iter().all(|m| m
                .as_str()
                .is_some_and(|m| m.starts_with("Failed to load resource")))),
        "{seen}"
    );
    for shot in ["join-form", "join-form-phone"] {
        assert!(
            out.join(format!("{shot}.png")).exists(),
            "{shot} screenshot"
        );
    }

    // Restarted in place: registered again, the officer is served again.
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(60), "the new registration", || {
            registrations() == 2 && registry.entries().len() == 1
        });
        assert_eq!(officer_asks(&officer, "join-3"), Ok(201));
        let (_, status) = owner_call(http, &data, "GET", "/api/relay", None);
        assert_eq!(status["state"], "enrolled", "{status}");
        assert_eq!(status["registration"]["state"], "registered", "{status}");

        // The audit log names who joined, with which CA.
        let (_, page) = owner_call(http, &data, "GET", "/api/audit?limit=1000", None);
        let joins: Vec<&Value> = page["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| {
                e["event"] == "enrolment" && e.to_string().contains("joined the relay program")
            })
            .collect();
        assert_eq!(joins.len(), 1, "{joins:?}");
        let text = joins[0].to_string();
        assert!(text.contains(&fingerprint), "{text}");
        assert!(text.contains("\"owner\""), "the owner's name: {text}");
    });
    drop(daemon);

    // A box without a relay configured cannot join: the keys are named.
    tokio::task::block_in_place(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = support::Daemon::start(
            dir.path(),
            &format!(
                "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n",
                dir.path().join("data").display()
            ),
        );
        let body =
            json!({ "agency_ca_pem": agency_pem, "confirm_fingerprint": published }).to_string();
        let (status, text) =
            support::http_send(bare.http, "POST", "/api/relay/join", Some(&body)).expect("POST");
        assert_eq!(status, 409, "{text}");
        assert!(text.contains("[relay] listen"), "{text}");
    });
}
