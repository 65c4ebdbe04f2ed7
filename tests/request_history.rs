//! The owner answers two police requests from the requests page and later
//! reads, inline, what came of them. The pending request shows how far the
//! incident is from each camera; the owner shares the porch only and denies
//! the other request with a reason. The relay downloads the porch package
//! over mutual TLS, and the history shows the package (size, SHA-256) and
//! the download exactly as the relay received it. On the timeline, an
//! evidence package downloaded in the browser is verified at once; a package
//! with one flipped byte is reported failed, naming the file; an oversized
//! upload is refused with 413. Once the download link has expired (a one
//! minute `download_expiry` after a restart), the package is deleted from
//! disk and the history says when it was removed. Real daemon, simulated
//! camera, mTLS relay client and headless Chromium
//! (tests/browser/request_history.mjs);
//! screenshots land in `target/web-ui-screenshots/request-history-*.png`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::pki::{TestPki, AGENCY};
use support::relay_client::{download_when_ready, footage_request, Basis, RelayClient};
use support::{free_port, http_post_bytes, http_request, porchlight, wait_until};

const OWNER: &str = "owner";
const OWNER_PASSWORD: &str = "porch light at night";

/// The incident (the relay client's default: downtown Dallas, 250 m).
const INCIDENT: (f64, f64) = (32.7767, -96.7970);
/// The porch camera is 0.0009° north of it, the driveway camera 0.002° east.
const PORCH: (f64, f64) = (32.7776, -96.7970);
const DRIVEWAY: (f64, f64) = (32.7767, -96.7950);

/// Distance by hand, flat-earth over a few hundred metres: a degree of
/// latitude is R·π/180 with R = 6 371 008.8 m (the mean radius the daemon
/// uses), a degree of longitude that times cos(latitude).
fn by_hand_m(from: (f64, f64), to: (f64, f64)) -> f64 {
    let metres_per_degree = 6_371_008.8 * std::f64::consts::PI / 180.0;
    let north = (to.0 - from.0) * metres_per_degree;
    let east = (to.1 - from.1) * metres_per_degree * from.0.to_radians().cos();
    (north * north + east * east).sqrt()
}

/// Where the screenshots go: beside the other browser tests' ones.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("web-ui-screenshots");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// Runs one phase of tests/browser/request_history.mjs, logged in.
fn in_the_browser(base: &str, out: &Path, args: &[&str]) -> Value {
    let mut all: Vec<&std::ffi::OsStr> = vec![base.as_ref(), out.as_os_str()];
    all.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
    let seen = support::browser_as_owner("request_history.mjs", OWNER, OWNER_PASSWORD, &all);
    eprintln!("the browser saw: {seen:#}");
    assert!(seen["failed"].is_null(), "a step failed: {seen}");
    assert!(
        seen["consoleErrors"].as_array().is_some_and(Vec::is_empty),
        "{seen}"
    );
    seen
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sees_how_far_each_camera_is_and_what_was_delivered_and_downloaded() {
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let relay_port = free_port();
    let extra = format!(
        "[relay]\nlisten = \"127.0.0.1:{relay_port}\"\nagency_ca = \"{}\"\n",
        pki.agency_ca_path.display()
    );
    // The porch records; the driveway camera is switched off but placed and
    // shared on request, so requests show it too.
    let cameras = format!(
        "sharing = \"on_request\"\nlocation = {{ lat = {}, lon = {} }}\n\
         [[cameras]]\nname = \"driveway\"\nurl = \"rtsp://127.0.0.1:9/driveway\"\nenabled = false\n\
         sharing = \"on_request\"\nlocation = {{ lat = {}, lon = {} }}\n",
        PORCH.0, PORCH.1, DRIVEWAY.0, DRIVEWAY.1
    );
    let rec = support::record_camera(8.0, &extra, "1GB", &cameras).await;
    let http = rec.daemon.http;
    let base = format!("http://{http}");
    let data = rec.dir.path().join("data");
    let out = artifacts();

    tokio::task::block_in_place(|| {
        // Two officers' requests wait for the owner.
        let officer = RelayClient::for_daemon(
            format!("127.0.0.1:{relay_port}").parse().expect("addr"),
            &data,
            &pki.client,
        );
        let ask = |case: &str| {
            let created = officer
                .post_json(
                    "/v1/requests",
                    &footage_request()
                        .case_id(case)
                        .basis(Basis::Consent)
                        .location(INCIDENT.0, INCIDENT.1, 250.0)
                        .window_ending_ago(Duration::ZERO, Duration::from_secs(15 * 60))
                        .to_json(),
                )
                .expect("POST /v1/requests");
            assert_eq!(created.status, 201, "{}", created.text());
            created.json()["id"].as_str().expect("id").to_string()
        };
        let shared = ask("history-1");
        let refused = ask("history-2");

        // The owner has an account: the pages need a login.
        support::add_owner_account(&rec.dir.path().join("config.toml"), OWNER, OWNER_PASSWORD);
        let bearer = support::cli_bearer(&data);
        let owner_get = |path: &str| -> Value {
            let (status, _, body) =
                http_request(http, "GET", path, &[("Authorization", &bearer)], None);
            assert_eq!(status, 200, "{path}: {body}");
            serde_json::from_str(&body).expect("json")
        };

        // The pending card shows each camera's distance from the incident,
        // to the metre, as computed by hand.
        let porch_m = by_hand_m(INCIDENT, PORCH);
        let driveway_m = by_hand_m(INCIDENT, DRIVEWAY);
        assert!((99.0..102.0).contains(&porch_m) && (185.0..189.0).contains(&driveway_m));
        let pending = owner_get(&format!("/api/requests/{shared}"));
        for (camera, expected) in [("porch", porch_m), ("driveway", driveway_m)] {
            let stored = pending["cameras"]
                .as_array()
                .and_then(|list| list.iter().find(|c| c["camera"] == camera))
                .expect("camera in the request");
            let metres = stored["distance_m"].as_f64().expect("a distance");
            assert!(
                (metres - expected).abs() <= 1.0,
                "{camera}: {metres} m, by hand {expected:.1} m"
            );
        }
        let seen = in_the_browser(&base, &out, &["answer", &shared, &refused]);
        for (camera, expected) in [("porch", porch_m), ("driveway", driveway_m)] {
            let shown = seen["distances"][camera].as_str().unwrap_or_default();
            assert!(
                shown.contains(&format!("{} m", expected.round())),
                "{camera} shows `{shown}`, by hand {expected:.1} m: {seen}"
            );
        }
        assert!(
            seen["details"]
                .as_str()
                .is_some_and(|d| d.contains("within 250 m")),
            "{seen}"
        );

        // The relay downloads the porch package; the driveway was left out.
        let (_, package) = download_when_ready(&officer, &shared, "porch");
        assert_eq!(package.status, 200, "{}", package.text());
        let relay_sha256 = hex(&Sha256::digest(&package.body));
        let relay_bytes = package.body.len() as u64;
        wait_until(
            Duration::from_secs(10),
            "the download's end recorded",
            || {
                owner_get(&format!("/api/requests/{shared}"))["downloads"][0]["finished"]
                    .is_string()
            },
        );
        let record = owner_get(&format!("/api/requests/{shared}"));
        assert_eq!(record["state"], "partially_approved", "{record}");
        let delivery = &record["deliveries"][0];
        assert_eq!(delivery["camera"], "porch", "{record}");
        assert_eq!(delivery["sha256"], relay_sha256.as_str(), "{record}");
        assert_eq!(delivery["bytes"], relay_bytes, "{record}");
        let download = &record["downloads"][0];
        assert_eq!(download["agency"], AGENCY, "{record}");
        assert_eq!(
            download["cert_fingerprint"],
            pki.client.fingerprint.as_str(),
            "{record}"
        );
        assert_eq!(download["status"], 200, "{record}");
        assert_eq!(download["bytes_sent"], relay_bytes, "{record}");
        assert_eq!(download["complete"], true, "{record}");

        // The history shows the same, inline.
        let seen = in_the_browser(&base, &out, &["history", &shared, &refused]);
        let approved = &seen["approved"];
        let delivery_text = approved["delivery"].as_str().unwrap_or_default();
        assert!(
            delivery_text.contains(&relay_sha256[..16])
                && delivery_text.contains(&format!("({relay_bytes} bytes)")),
            "the package as the relay got it ({relay_sha256}, {relay_bytes} bytes): {seen}"
        );
        let downloads = approved["downloads"].to_string();
        assert!(
            downloads.contains(AGENCY)
                && downloads.contains(&pki.client.fingerprint[..12])
                && downloads.contains("whole package")
                && downloads.contains(&format!("({relay_bytes} bytes), complete")),
            "{seen}"
        );
        assert!(
            approved["driveway"]
                .as_str()
                .is_some_and(|t| t.contains("driveway: denied")),
            "{seen}"
        );
        let denied = seen["denied"]["state"].as_str().unwrap_or_default();
        assert!(
            denied.starts_with("denied")
                && denied.contains("Not our street; this camera faces the back yard."),
            "{seen}"
        );
        assert_eq!(seen["phoneOverflow"], false, "{seen}");

        // Verify status: the relay's copy verifies through the owner API…
        let verify = |body: &[u8], declared: Option<u64>| {
            http_post_bytes(
                http,
                "/api/evidence/verify",
                &[("Authorization", &bearer)],
                "application/x-tar",
                body,
                declared,
            )
        };
        let (status, body) = verify(&package.body, None);
        assert_eq!(status, 200, "{body}");
        let report: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(report["this_device"], true, "{report}");
        assert_eq!(report["signature_ok"], true, "{report}");
        let listed = report["files_listed"].as_u64().unwrap_or(0);
        assert!(listed >= 1 && report["files_matched"] == listed, "{report}");
        // …one flipped byte in the footage fails, naming the file…
        let mut tampered = package.body.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0x01;
        let tampered_path = out.join("request-history-tampered.tar");
        std::fs::write(&tampered_path, &tampered).expect("write tampered copy");
        let (status, body) = verify(&tampered, None);
        assert_eq!(status, 200, "{body}");
        let report: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(report["ok"], false, "{report}");
        let failed = report["failed"].to_string();
        assert!(
            failed.contains(".mp4"),
            "the altered file is named: {report}"
        );
        // …and a body over the cap is refused before it is read.
        let (status, body) = verify(b"not much", Some((4 << 30) + 1));
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("4096 MiB verification limit"), "{body}");
        // A package sent as a form-friendly type is refused, naming the right one.
        let (status, body) = http_post_bytes(
            http,
            "/api/evidence/verify",
            &[("Authorization", &bearer)],
            "text/plain",
            &package.body,
            None,
        );
        assert_eq!(status, 415, "{body}");
        assert!(body.contains("application/x-tar"), "{body}");
        // Without a session or token, verifying is refused like any owner call.
        let (status, _) = http_post_bytes(
            http,
            "/api/evidence/verify",
            &[],
            "application/x-tar",
            &package.body,
            None,
        );
        assert_eq!(status, 401);

        // On the timeline, the package downloaded in the browser is
        // verified at once; the tampered copy, picked by hand, is not.
        let tampered_arg = tampered_path.to_str().expect("utf-8");
        let seen = in_the_browser(&base, &out, &["timeline", "porch", tampered_arg]);
        assert_eq!(seen["downloaded"]["ok"], true, "{seen}");
        let status = seen["downloaded"]["status"].as_str().unwrap_or_default();
        assert!(
            status.starts_with("Verified") && status.contains("(this box)"),
            "{seen}"
        );
        assert!(
            seen["tampered"]
                .as_str()
                .is_some_and(|t| t.starts_with("NOT verified") && t.contains(".mp4")),
            "{seen}"
        );
        // The file the browser saved is the one it verified.
        let (code, stdout, stderr) = porchlight(&[
            "verify",
            out.join("request-history-evidence.tar")
                .to_str()
                .expect("utf-8"),
        ]);
        assert_eq!(code, 0, "{stdout}{stderr}");

        for shot in ["pending", "requests", "requests-phone", "timeline-verified"] {
            assert!(
                out.join(format!("request-history-{shot}.png")).exists(),
                "{shot} screenshot"
            );
        }

        // Later, the download link expires (the owner keeps links a minute
        // now): the package is deleted from disk and the history says so.
        let package_file = data.join("deliveries").join(&shared).join("porch.tar");
        assert!(package_file.is_file(), "the package is kept until expiry");
        let daemon = rec.daemon.restart_with(|config| {
            let mut text = std::fs::read_to_string(config).expect("config");
            text.push_str("\n[policy]\ndownload_expiry = \"1m\"\n");
            std::fs::write(config, text).expect("config");
        });
        let bearer = support::cli_bearer(&data);
        let owner_get = |path: &str| -> Value {
            let (status, _, body) =
                http_request(http, "GET", path, &[("Authorization", &bearer)], None);
            assert_eq!(status, 200, "{path}: {body}");
            serde_json::from_str(&body).expect("json")
        };
        wait_until(
            Duration::from_secs(180),
            "the expired package to be removed",
            || {
                owner_get(&format!("/api/requests/{shared}"))["deliveries"][0]["removed"]
                    .is_string()
            },
        );
        assert!(!package_file.exists(), "the expired package is deleted");
        let record = owner_get(&format!("/api/requests/{shared}"));
        let removed = porchlight::time::parse_utc_us(
            record["deliveries"][0]["removed"]
                .as_str()
                .expect("removed"),
        )
        .expect("an RFC 3339 time");
        let built = porchlight::time::parse_utc_us(
            record["deliveries"][0]["built"].as_str().expect("built"),
        )
        .expect("an RFC 3339 time");
        assert!(removed > built, "{record}");
        // The rest of the history is kept: the package's hash and download.
        assert_eq!(record["deliveries"][0]["sha256"], relay_sha256.as_str());
        assert_eq!(record["downloads"][0]["complete"], true, "{record}");
        let seen = in_the_browser(&base, &out, &["history", &shared, &refused]);
        let delivery_text = seen["approved"]["delivery"].as_str().unwrap_or_default();
        assert!(
            delivery_text.contains(&relay_sha256[..16]) && delivery_text.contains(", removed "),
            "the history shows the package removed: {seen}"
        );
        drop(daemon);
    });
}
