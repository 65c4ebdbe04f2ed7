//! The owner tightens police sharing from the browser: the porch camera
//! shares at its full level only on the days they choose (not today), gives
//! clips of at most 20 minutes, without audio, and any one agency may ask
//! once a day. The gate applies it to the next relay request at once; the
//! owner API, Home Assistant (MQTT) and the audit log show it; bad values are
//! refused with the field named; and it all survives a restart.
//!
//! Real headless Chromium, a real simulated camera, a real mTLS relay
//! client and a real Mosquitto broker. Screenshots (desktop and phone width)
//! land in `target/web-ui-screenshots/`.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use support::pki::TestPki;
use support::relay_client::{footage_request, Basis, RelayClient};
use support::{free_port, porchlight, wait_until, Mosquitto};

const OWNER: &str = "owner";
const OWNER_PASSWORD: &str = "schedules are for cameras";
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("web-ui-screenshots");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// Today in UTC (the config's time zone), Monday is 0.
fn today_utc() -> usize {
    let days = porchlight::time::now_utc_us().div_euclid(86_400_000_000);
    // 1970-01-01 was a Thursday.
    (days + 3).rem_euclid(7) as usize
}

/// Runs tests/browser/sharing_settings.mjs logged in as OWNER.
fn edit_in_the_browser(base: &str, out: &Path, camera: &str, skip_day: &str) -> Value {
    support::browser_as_owner(
        "sharing_settings.mjs",
        OWNER,
        OWNER_PASSWORD,
        &[base, out.to_str().expect("utf-8"), camera, skip_day],
    )
}

/// The owner API with the local CLI token (accounts mode: nothing without it).
struct Owner {
    http: SocketAddr,
    bearer: String,
}

impl Owner {
    fn new(http: SocketAddr, data: &Path) -> Owner {
        Owner {
            http,
            bearer: support::cli_bearer(data),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, _, body) = support::http_request(
            self.http,
            method,
            path,
            &[("Authorization", &self.bearer)],
            body,
        );
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {body}"));
        (status, json)
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

fn camera<'a>(sharing: &'a Value, name: &str) -> &'a Value {
    sharing["cameras"]
        .as_array()
        .and_then(|cameras| cameras.iter().find(|c| c["camera"] == name))
        .unwrap_or_else(|| panic!("{name} in {sharing}"))
}

/// What the owner set, as `GET /api/sharing` must show it.
fn assert_owner_settings(sharing: &Value, skip_day: &str) {
    let porch = camera(sharing, "porch");
    let days: Vec<&str> = DAYS.iter().copied().filter(|d| *d != skip_day).collect();
    assert_eq!(
        porch["schedule"],
        json!([{ "days": days, "from": "00:00", "to": "24:00" }]),
        "{porch}"
    );
    assert_eq!(porch["schedule_open"], false, "{porch}");
    assert_eq!(porch["level"], "emergency_auto", "{porch}");
    assert_eq!(porch["outside_schedule"], "on_request", "{porch}");
    assert_eq!(porch["effective_level"], "on_request", "{porch}");
    assert_eq!(porch["max_clip"], "20m", "{porch}");
    assert_eq!(porch["effective_max_clip_s"], 1200, "{porch}");
    assert_eq!(porch["audio_to_police"], false, "{porch}");
    assert_eq!(porch["audio_available"], true, "{porch}");
    for field in [
        "schedule",
        "outside_schedule",
        "max_clip",
        "audio_to_police",
    ] {
        assert_eq!(porch["sources"][field], "owner", "{field}: {porch}");
    }
    assert_eq!(porch["sources"]["level"], "config", "{porch}");
    let limits = &sharing["limits"];
    assert_eq!(limits["requests_per_agency_per_day"], 1, "{limits}");
    assert_eq!(
        limits["sources"]["requests_per_agency_per_day"], "owner",
        "{limits}"
    );
    assert_eq!(limits["sources"]["max_clip"], "config", "{limits}");
    assert_eq!(camera(sharing, "garage")["audio_available"], false);
}

fn minutes(window: &Value) -> f64 {
    let at = |key: &str| {
        porchlight::time::parse_utc_us(window[key].as_str().expect("time")).expect("RFC 3339")
    };
    (at("to") - at("from")) as f64 / 60e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sets_schedules_clip_audio_and_limits_and_the_gate_follows() {
    let broker = tokio::task::block_in_place(Mosquitto::start);
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let relay_port = free_port();
    // A second camera that records no audio (it is not reachable; its
    // settings are what matters here).
    let extra = format!(
        "[policy]\ntimezone = \"UTC\"\n\
         [relay]\nlisten = \"127.0.0.1:{relay_port}\"\nagency_ca = \"{}\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"porchlight-sharing-settings\"\n\
         [[cameras]]\nname = \"garage\"\nurl = \"rtsp://127.0.0.1:9/none\"\naudio = false\n",
        pki.agency_ca_path.display(),
        broker.port
    );
    let porch = "sharing = \"emergency_auto\"\nlocation = { lat = 32.7767, lon = -96.7970 }\n\
                 audio_to_police = true\n";
    let rec = support::record_camera(4.0, &extra, "1GB", porch).await;
    let data = rec.dir.path().join("data");
    let skip_day = DAYS[today_utc()];
    let out = artifacts();

    tokio::task::block_in_place(|| {
        let http = rec.daemon.http;
        // The owner makes an account: from now on the UI and API need a login.
        support::add_owner_account(&rec.dir.path().join("config.toml"), OWNER, OWNER_PASSWORD);
        let owner = Owner::new(http, &data);
        let before = owner.get("/api/sharing");
        assert_eq!(camera(&before, "porch")["schedule"], json!([]), "{before}");
        assert_eq!(
            camera(&before, "porch")["effective_level"],
            "emergency_auto"
        );

        // In the browser: every day but today, outside it "on_request",
        // 20-minute clips, no audio; then one request per agency a day.
        let seen = edit_in_the_browser(&format!("http://{http}"), &out, "porch", skip_day);
        eprintln!("the browser saw: {seen:#}");
        assert!(seen["failed"].is_null(), "a step failed: {seen}");
        assert_eq!(seen["consoleErrors"], json!([]), "{seen}");
        assert_eq!(seen["before"]["always"], true, "{seen}");
        assert!(
            seen["shownError"]
                .as_str()
                .is_some_and(|e| e.contains("schedule[0].to") && e.contains("25:00")),
            "the API's error, next to the form: {seen}"
        );
        assert_eq!(seen["after"]["windows"], 1, "{seen}");
        assert_eq!(seen["after"]["days"].as_array().map(Vec::len), Some(6));
        assert_eq!(seen["after"]["outside"], "on_request", "{seen}");
        assert_eq!(seen["after"]["maxClip"], "20m", "{seen}");
        assert_eq!(seen["after"]["audio"], false, "{seen}");
        assert_eq!(seen["after"]["error"], "", "{seen}");
        assert!(
            seen["limitsError"]
                .as_str()
                .is_some_and(|e| e.contains("requests_per_agency_per_day")),
            "{seen}"
        );
        assert_eq!(seen["limits"]["perDay"], "1", "{seen}");
        assert_eq!(
            seen["noAudio"],
            json!([{ "camera": "garage", "why": "Audio can't be shared: this camera records none (audio = false in its config)." }]),
            "{seen}"
        );
        assert_eq!(
            seen["phoneOverflow"], false,
            "no sideways scroll on a phone"
        );

        // The owner API shows it, with where each value comes from.
        assert_owner_settings(&owner.get("/api/sharing"), skip_day);

        // Home Assistant: the sharing select carries the settings as attributes.
        wait_until(
            Duration::from_secs(15),
            "the sharing attributes on MQTT",
            || {
                let text = broker.retained("porchlight/porch/sharing/attributes");
                serde_json::from_str::<Value>(&text)
                    .is_ok_and(|a| a["max_clip_s"] == 1200 && a["audio_to_police"] == false)
            },
        );
        let attributes: Value =
            serde_json::from_str(&broker.retained("porchlight/porch/sharing/attributes"))
                .expect("JSON attributes");
        assert_eq!(attributes["schedule_open"], false, "{attributes}");
        assert_eq!(attributes["outside_schedule"], "on_request", "{attributes}");
        assert_eq!(attributes["effective_level"], "on_request", "{attributes}");
        assert_eq!(
            attributes["schedule"].as_array().map(Vec::len),
            Some(1),
            "{attributes}"
        );
        let discovery: Value = serde_json::from_str(
            &broker.retained("homeassistant/select/porchlight/camera_porch_sharing/config"),
        )
        .expect("discovery config");
        assert_eq!(
            discovery["json_attributes_topic"], "porchlight/porch/sharing/attributes",
            "{discovery}"
        );

        // The audit log holds each change with before and after.
        let audit = owner.get("/api/audit?limit=1000");
        let changes: Vec<&Value> = audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["event"] == "policy_change" && e["component"] == "owner_api")
            .collect();
        let camera_change = changes
            .iter()
            .find(|e| e["details"]["set"] == "camera_sharing")
            .unwrap_or_else(|| panic!("a camera_sharing change: {changes:?}"));
        let details = &camera_change["details"];
        assert_eq!(details["before"]["schedule"], json!([]), "{details}");
        assert_eq!(details["after"]["max_clip"], "20m", "{details}");
        assert_eq!(details["before"]["audio_to_police"], true, "{details}");
        assert_eq!(details["after"]["audio_to_police"], false, "{details}");
        assert_eq!(
            camera_change["identity"]["owner_user"], OWNER,
            "{camera_change}"
        );
        let limits_change = changes
            .iter()
            .find(|e| e["details"]["set"] == "limits")
            .unwrap_or_else(|| panic!("a limits change: {changes:?}"));
        assert_eq!(
            limits_change["details"]["before"]["requests_per_agency_per_day"], 20,
            "{limits_change}"
        );
        assert_eq!(
            limits_change["details"]["after"]["requests_per_agency_per_day"], 1,
            "{limits_change}"
        );

        // An emergency request for half an hour: inside the schedule this
        // emergency_auto camera would serve it at once; outside it, it waits
        // for the owner ("on_request"), cut to 20 minutes, without audio.
        let officer = RelayClient::for_daemon(
            format!("127.0.0.1:{relay_port}").parse().expect("addr"),
            &data,
            &pki.client,
        );
        let created = officer
            .post_json(
                "/v1/requests",
                &footage_request()
                    .case_id("settings-1")
                    .basis(Basis::Emergency)
                    .window_ending_ago(Duration::ZERO, Duration::from_secs(30 * 60))
                    .to_json(),
            )
            .expect("POST /v1/requests");
        assert_eq!(created.status, 201, "{}", created.text());
        let body = created.json();
        assert_eq!(body["status"], "pending", "{body}");
        let id = body["id"].as_str().expect("id");
        let stored = owner.get(&format!("/api/requests/{id}"));
        let porch = stored["cameras"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["camera"] == "porch"))
            .unwrap_or_else(|| panic!("porch in {stored}"));
        assert_eq!(porch["outcome"], "await_owner", "{porch}");
        assert_eq!(porch["audio"], false, "{porch}");
        let length = minutes(&porch["window"]);
        assert!(
            (length - 20.0).abs() < 0.01,
            "cut to 20 minutes, not {length}: {porch}"
        );

        // One request per agency a day: the second is refused.
        let second = officer
            .post_json(
                "/v1/requests",
                &footage_request()
                    .case_id("settings-2")
                    .basis(Basis::Emergency)
                    .window_ending_ago(Duration::ZERO, Duration::from_secs(15 * 60))
                    .to_json(),
            )
            .expect("POST /v1/requests");
        assert_eq!(second.status, 429, "{}", second.text());
        assert_eq!(
            second.error_code().as_deref(),
            Some("agency_daily_limit_reached"),
            "{}",
            second.text()
        );

        // Bad values are refused with the field named; nothing changes.
        let put = |path: &str, body: &str| owner.call("PUT", path, Some(body));
        let porch_settings = "/api/cameras/porch/sharing-settings";
        for (path, body, status, field) in [
            (
                porch_settings,
                r#"{"schedule": [{"days": "someday", "from": "08:00", "to": "09:00"}]}"#,
                400,
                "schedule[0].days",
            ),
            (
                porch_settings,
                r#"{"schedule": [{"days": "mon", "from": "09:00", "to": "09:00"}]}"#,
                400,
                "schedule[0].to",
            ),
            (
                porch_settings,
                r#"{"schedule": [{"days": "mon", "from": "9am", "to": "10:00"}]}"#,
                400,
                "schedule[0].from",
            ),
            (porch_settings, r#"{"max_clip": "30s"}"#, 400, "max_clip"),
            (porch_settings, r#"{"max_clip": "13h"}"#, 400, "max_clip"),
            (
                porch_settings,
                r#"{"outside_schedule": "emergency_live"}"#,
                400,
                "outside_schedule",
            ),
            (porch_settings, r#"{"sharing": "off"}"#, 400, "sharing"),
            (
                "/api/cameras/garage/sharing-settings",
                r#"{"audio_to_police": true}"#,
                400,
                "audio_to_police",
            ),
            (
                "/api/cameras/attic/sharing-settings",
                r#"{"max_clip": "10m"}"#,
                404,
                "attic",
            ),
            (
                "/api/policy/limits",
                r#"{"max_window": "10m"}"#,
                400,
                "max_window",
            ),
            (
                "/api/policy/limits",
                r#"{"requests_per_case": 11}"#,
                400,
                "requests_per_case",
            ),
        ] {
            let (got, answer) = put(path, body);
            assert_eq!(got, status, "{path} {body}: {answer}");
            let error = answer["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(field),
                "{path} {body}: `{error}` names `{field}`"
            );
        }
        let (status, _, answer) = support::http_request(
            http,
            "PUT",
            "/api/policy/limits",
            &[
                ("Authorization", &owner.bearer),
                ("Content-Type", "text/plain"),
            ],
            None,
        );
        assert_eq!(status, 415, "{answer}");
        assert_owner_settings(&owner.get("/api/sharing"), skip_day);
    });

    // A restart keeps every setting.
    let daemon = tokio::task::block_in_place(|| rec.daemon.restart_with(|_| {}));
    tokio::task::block_in_place(|| {
        let owner = Owner::new(daemon.http, &data);
        assert_owner_settings(&owner.get("/api/sharing"), skip_day);
        let policy = owner.get("/api/sharing");
        assert_eq!(camera(&policy, "porch")["effective_level"], "on_request");

        // The same from the shell, through the running daemon.
        let config = daemon.config_path.to_str().expect("utf-8").to_string();
        let (code, stdout, stderr) = porchlight(&["sharing", "show", "-c", &config]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(
            stdout.contains("porch: emergency_auto (now on_request)")
                && stdout.contains("outside: on_request, max clip: 20m, audio: off")
                && stdout.contains("1 per agency per day"),
            "{stdout}"
        );
        let (code, stdout, stderr) = porchlight(&[
            "sharing",
            "set",
            "-c",
            &config,
            "--camera",
            "porch",
            "--max-clip",
            "25m",
        ]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains("max clip: 25m"), "{stdout}");
        wait_until(Duration::from_secs(15), "the CLI's change on MQTT", || {
            serde_json::from_str::<Value>(&broker.retained("porchlight/porch/sharing/attributes"))
                .is_ok_and(|a| a["max_clip_s"] == 1500 && a["schedule_open"] == false)
        });
        let (code, stdout, stderr) = porchlight(&[
            "sharing",
            "set",
            "-c",
            &config,
            "--camera",
            "porch",
            "--schedule",
            "mon 9am-10:00",
        ]);
        assert_ne!(code, 0, "{stdout}");
        assert!(stderr.contains("schedule[0].from"), "{stderr}");
        daemon.stop();
    });
}
