//! The owner runs Porchlight from a browser: watches the camera live,
//! picks a range on the timeline and downloads a clip and an evidence
//! package, raises a camera's sharing level, approves a police request the
//! relay made, reads the audit log and the storage forecast. Real headless
//! Chromium, a real simulated camera, a real mTLS relay client and a real
//! Mosquitto broker; screenshots of every page land in
//! `target/web-ui-screenshots/`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::pki::TestPki;
use support::relay_client::{download_when_ready, footage_request, Basis, RelayClient};
use support::{free_port, porchlight, wait_until, Mosquitto};

/// Where the screenshots (and the downloads) go: beside the build output.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("web-ui-screenshots");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

const OWNER: &str = "owner";
const OWNER_PASSWORD: &str = "porch light at night";

/// Runs tests/browser/web_ui.mjs, logged in as OWNER; returns what each
/// page showed.
fn walk_the_ui(base: &str, out: &Path, camera: &str, request_id: &str) -> serde_json::Value {
    support::browser_as_owner(
        "web_ui.mjs",
        OWNER,
        OWNER_PASSWORD,
        &[base, out.to_str().expect("utf-8"), camera, request_id],
    )
}

fn device_fingerprint(cert: &Path) -> String {
    support::openssl_sha256_fingerprint(cert)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_runs_porchlight_from_the_browser() {
    let broker = tokio::task::block_in_place(Mosquitto::start);
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let relay_port = free_port();
    let extra = format!(
        "[relay]\nlisten = \"127.0.0.1:{relay_port}\"\nagency_ca = \"{}\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"porchlight-web-ui\"\n",
        pki.agency_ca_path.display(),
        broker.port
    );
    let camera = "sharing = \"on_request\"\nlocation = { lat = 32.7767, lon = -96.7970 }\n\
                  audio_to_police = true\n";
    let rec = support::record_camera(6.0, &extra, "1GB", camera).await;
    let http = rec.daemon.http;
    let data = rec.dir.path().join("data");
    let out = artifacts();

    tokio::task::block_in_place(|| {
        // An officer asks, with consent, for the last quarter hour.
        let officer = RelayClient::for_daemon(
            format!("127.0.0.1:{relay_port}").parse().expect("addr"),
            &data,
            &pki.client,
        );
        let created = officer
            .post_json(
                "/v1/requests",
                &footage_request()
                    .case_id("web-ui-1")
                    .basis(Basis::Consent)
                    .window_ending_ago(Duration::ZERO, Duration::from_secs(15 * 60))
                    .to_json(),
            )
            .expect("POST /v1/requests");
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json()["id"].as_str().expect("id").to_string();
        wait_until(Duration::from_secs(20), "Porchlight online on MQTT", || {
            broker.retained("porchlight/status") == "online"
        });

        // The owner makes an account: from now on the UI needs a login.
        support::add_owner_account(&rec.dir.path().join("config.toml"), OWNER, OWNER_PASSWORD);

        let seen = walk_the_ui(&format!("http://{http}"), &out, "porch", &id);
        eprintln!("the browser saw: {seen:#}");
        assert!(seen["failed"].is_null(), "a step failed: {seen}");
        assert_eq!(seen["login"], "accounts", "{seen}");
        // Without a session nothing is served; with one, a change without
        // the CSRF token is refused.
        assert_eq!(seen["refused"]["noSessionApi"], 401, "{seen}");
        assert!(
            seen["refused"]["noSessionPage"]
                .as_str()
                .is_some_and(|url| url.contains("/login?next=")),
            "{seen}"
        );
        assert_eq!(seen["refused"]["noCsrf"], 403, "{seen}");
        assert!(
            seen["refused"]["noCsrfError"]
                .as_str()
                .is_some_and(|e| e.contains("X-CSRF-Token")),
            "{seen}"
        );
        let bearer = support::cli_bearer(&data);
        let owner_get = |path: &str| {
            let (status, _, body) =
                support::http_request(http, "GET", path, &[("Authorization", &bearer)], None);
            (status, body)
        };

        // Cameras: live video plays in the grid.
        let times: Vec<f64> = seen["cameras"]["currentTimes"]
            .as_array()
            .expect("samples")
            .iter()
            .filter_map(|t| t.as_f64())
            .collect();
        let advanced = times.last().unwrap_or(&0.0) - times.first().unwrap_or(&0.0);
        assert!(advanced >= 2.0, "live currentTime must advance: {seen}");
        assert_eq!(seen["cameras"]["badge"], "recording", "{seen}");

        // Timeline: the dragged range downloads as a clip ffprobe accepts…
        let clip = support::ffprobe(&out.join("clip.mp4"));
        assert_eq!(clip.video_codec, "h264", "{clip:?}");
        assert!(clip.video_frames >= 15, "{clip:?}");
        assert!(
            seen["timeline"]["playerTime"].as_f64().unwrap_or(0.0) > 0.5,
            "the selection plays: {seen}"
        );
        // …and as an evidence package `porchlight verify` accepts, pinned
        // to this box's key.
        let fingerprint = device_fingerprint(&data.join("device-cert.pem"));
        let evidence = out.join("evidence.zip");
        let (code, stdout, stderr) = porchlight(&[
            "verify",
            evidence.to_str().expect("utf-8"),
            "--expect-fingerprint",
            &fingerprint,
        ]);
        assert_eq!(code, 0, "{stdout}{stderr}");

        // Sharing: the change is in the API and on MQTT.
        assert_eq!(seen["sharing"]["before"], "on_request", "{seen}");
        let (status, body) = owner_get("/api/settings");
        assert_eq!(status, 200);
        let settings: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            settings["cameras"][0]["sharing"], "emergency_auto",
            "{body}"
        );
        wait_until(Duration::from_secs(10), "the new level on MQTT", || {
            broker.retained("porchlight/porch/sharing") == "emergency_auto"
        });

        // Requests: the owner's approval lets the relay download.
        let details = seen["requests"]["details"].as_str().unwrap_or_default();
        assert!(details.contains("consent"), "{seen}");
        let (_, package) = download_when_ready(&officer, &id, "porch");
        assert_eq!(package.status, 200, "{}", package.text());

        // Audit: entries, the owner's changes among them, and an intact chain.
        let verify = seen["audit"]["verify"].as_str().unwrap_or_default();
        assert!(verify.starts_with("Audit log intact"), "{seen}");
        let events = seen["audit"]["events"].to_string();
        assert!(events.contains("policy_change"), "{events}");
        assert!(events.contains("approval"), "{events}");
        assert!(
            seen["audit"]["requestRows"].as_u64().unwrap_or(0) >= 2,
            "{seen}"
        );
        let (status, body) = owner_get("/api/audit/verify");
        assert_eq!(status, 200);
        assert!(body.contains("\"intact\":true"), "{body}");

        // Health: the retention forecast, in days.
        let forecast = seen["health"]["forecast"].as_str().unwrap_or_default();
        assert!(
            forecast.contains("about") && forecast.contains("days"),
            "{seen}"
        );

        // A change that is not JSON is refused with an error naming it.
        assert_eq!(seen["refused"]["notJson"], 415, "{seen}");

        // Phones get one column and no sideways scrolling.
        assert_eq!(seen["phoneOverflow"], false, "{seen}");
        assert!(
            seen["consoleErrors"].as_array().is_some_and(Vec::is_empty),
            "{seen}"
        );
        // The only failed loads: the deliberate refusals above.
        for failed in seen["failedResponses"].as_array().expect("list") {
            let failed = failed.as_str().unwrap_or_default();
            assert!(
                failed == "415 /api/privacy" || failed == "403 /api/privacy",
                "unexpected failed load {failed}: {seen}"
            );
        }
        for page in [
            "cameras", "timeline", "sharing", "requests", "audit", "health",
        ] {
            assert!(
                out.join(format!("{page}.png")).exists(),
                "{page} screenshot"
            );
        }
    });
}
