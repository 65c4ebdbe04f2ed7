//! Live share to the police relay. An officer's emergency request on a
//! camera the owner shares live in emergencies gets a live URL, bound to
//! the request, the camera and the officer's client certificate, that ends
//! by itself at the owner's maximum. Every other combination is refused.
//! The owner ends any share at once (API, CLI, Home Assistant), and so do
//! the privacy switch and a lowered level. Every started minute of viewing
//! is in the owner's audit log, and the owner's request history shows each
//! live view with the same minute count and why it ended.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::pki::TestPki;
use support::relay_client::{footage_request, Basis, RelayClient, StreamRead, StreamingResponse};
use support::{free_port, http_get, http_send, porchlight, wait_until, Daemon, Mosquitto};

struct Home {
    dir: tempfile::TempDir,
    daemon: Daemon,
    pki: TestPki,
    _pki_dir: tempfile::TempDir,
    _cam: porchlight_simcam::SimCam,
    relay: SocketAddr,
}

/// A home with the given cameras (`(name, camera table lines)`), a relay
/// listener, `policy` lines and `extra` config; waits until every camera
/// streams.
async fn home(cameras: &[(&str, String)], policy: &str, extra: &str) -> Home {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let cam = support::simcam(porchlight_simcam::Clip::Sd, false).await;
    let relay: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let mut text = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"100MB\"\nmax_bytes = \"1GB\"\n\
         [relay]\nlisten = \"{relay}\"\nagency_ca = \"{}\"\n[policy]\ntimezone = \"UTC\"\n{policy}\n{extra}\n",
        dir.path().join("data").display(),
        pki.agency_ca_path.display(),
    );
    for (name, table) in cameras {
        text.push_str(&format!(
            "[[cameras]]\nname = \"{name}\"\nurl = \"{}\"\nlocation = {{ lat = 32.7767, lon = -96.7970 }}\n{table}\n",
            cam.url(name)
        ));
    }
    let daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &text));
    tokio::task::block_in_place(|| {
        for (name, _) in cameras {
            wait_until(Duration::from_secs(60), "the camera to stream", || {
                daemon.metric(
                    "porchlight_frames_total",
                    &[("camera", name), ("stream", "main")],
                ) >= 45.0
            });
        }
    });
    Home {
        dir,
        daemon,
        pki,
        _pki_dir: pki_dir,
        _cam: cam,
        relay,
    }
}

fn level(level: &str) -> String {
    format!("sharing = \"{level}\"\n")
}

impl Home {
    fn client(&self, identity: &support::pki::ClientIdentity) -> RelayClient {
        RelayClient::for_daemon(self.relay, &self.dir.path().join("data"), identity)
    }

    fn officer(&self) -> RelayClient {
        self.client(&self.pki.client)
    }

    /// A recorded request of the officer for the last 15 minutes; its id.
    fn request(&self, case: &str, basis: Basis) -> (String, Value) {
        let body = footage_request()
            .case_id(case)
            .basis(basis)
            .window_ending_ago(Duration::ZERO, Duration::from_secs(15 * 60))
            .to_json();
        let created = self
            .officer()
            .post_json("/v1/requests", &body)
            .expect("POST /v1/requests");
        assert_eq!(created.status, 201, "{}", created.text());
        let json = created.json();
        (json["id"].as_str().expect("id").to_string(), json)
    }

    /// `POST /v1/requests/{id}/live` as the officer: status and body.
    fn ask_live(&self, id: &str) -> (u16, Value) {
        let answer = self
            .officer()
            .request("POST", &format!("/v1/requests/{id}/live"), &[], &[])
            .expect("POST live");
        (answer.status, answer.json())
    }

    fn audit(&self) -> Vec<Value> {
        support::audit_entries(self.daemon.http)
    }

    /// The live views the owner's request history shows for request `id`.
    fn live_views(&self, id: &str) -> Vec<Value> {
        let (status, body) =
            http_get(self.daemon.http, &format!("/api/requests/{id}")).expect("GET");
        assert_eq!(status, 200, "{body}");
        let request: Value = serde_json::from_str(&body).expect("json");
        request["live_views"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The id of the officer's request for `case`, from the owner's list.
    fn request_of_case(&self, case: &str) -> String {
        let (status, body) = http_get(self.daemon.http, "/api/requests").expect("GET");
        assert_eq!(status, 200, "{body}");
        let all: Value = serde_json::from_str(&body).expect("json");
        all.as_array()
            .and_then(|all| all.iter().find(|r| r["case_id"] == case))
            .and_then(|r| r["id"].as_str())
            .unwrap_or_else(|| panic!("no request for {case}: {all}"))
            .to_string()
    }

    /// Waits until the history shows request `id`'s one live view ended for
    /// `reason`; checks its minutes are the audit log's minute entries.
    fn history_shows_live_view(&self, id: &str, camera: &str, reason: &str) -> Value {
        wait_until(
            Duration::from_secs(10),
            "the live view's end in the request history",
            || {
                self.live_views(id)
                    .first()
                    .is_some_and(|v| v["end_reason"] == reason)
            },
        );
        let views = self.live_views(id);
        assert_eq!(views.len(), 1, "{views:?}");
        let view = views[0].clone();
        let share = view["share"].as_str().expect("share");
        let audited = minutes_of(&self.audit(), share);
        assert!(audited >= 1, "{view}");
        assert_eq!(view["minutes"], audited, "{view}");
        assert_eq!(view["camera"], camera, "{view}");
        assert_eq!(view["agency"], support::pki::AGENCY, "{view}");
        assert_eq!(
            view["cert_fingerprint"],
            self.pki.client.fingerprint.as_str(),
            "{view}"
        );
        assert!(view["ended"].is_string(), "{view}");
        view
    }

    fn shares(&self) -> Vec<Value> {
        let (status, body) = http_get(self.daemon.http, "/api/live-shares").expect("GET");
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).expect("json");
        page["live_shares"].as_array().cloned().unwrap_or_default()
    }
}

/// The live link the answer gives for `camera`.
fn link(answer: &Value, camera: &str) -> Value {
    answer["live"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["camera"] == camera))
        .cloned()
        .unwrap_or_else(|| panic!("no live link for {camera}: {answer}"))
}

/// Opens a stream and checks it starts as an MP4 (ftyp, moov) with frames.
fn watch(client: &RelayClient, url: &str) -> StreamingResponse {
    let mut stream = client
        .open_stream(url)
        .expect("connect")
        .unwrap_or_else(|refused| panic!("stream refused: {} {}", refused.status, refused.text()));
    assert_eq!(stream.header("content-type"), Some("video/mp4"));
    let mut bytes = Vec::new();
    while bytes.len() < 64 * 1024 {
        match stream.next().expect("read the stream") {
            StreamRead::Data(data) => bytes.extend_from_slice(&data),
            StreamRead::End => panic!("the stream ended at once"),
        }
    }
    assert_eq!(&bytes[4..8], b"ftyp", "an MP4 starts with ftyp");
    let has = |name: &[u8]| bytes.windows(4).any(|w| w == name);
    assert!(
        has(b"moov") && has(b"moof") && has(b"mdat"),
        "init then fragments"
    );
    stream
}

/// Reads until the server ends the stream; how long that took.
fn read_to_end(stream: &mut StreamingResponse) -> Duration {
    let started = Instant::now();
    loop {
        match stream.next().expect("read the stream") {
            StreamRead::Data(_) => {}
            StreamRead::End => return started.elapsed(),
        }
    }
}

/// Reads until the stream ends, on its own thread (so the test can act
/// meanwhile); gives the instant the end was seen.
fn end_seen(mut stream: StreamingResponse) -> std::thread::JoinHandle<Instant> {
    std::thread::spawn(move || {
        read_to_end(&mut stream);
        Instant::now()
    })
}

fn minutes_of(audit: &[Value], share: &str) -> usize {
    audit
        .iter()
        .filter(|e| e["event"] == "live_view_minute" && e["details"]["live_share"] == share)
        .count()
}

fn error_code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_gets_a_live_stream_bound_to_its_camera_that_ends_at_expiry_with_every_minute_audited(
) {
    let cameras = [
        ("porch", level("emergency_live")),
        ("garage", level("emergency_live")),
    ];
    let home = home(&cameras, "live_share_max = \"65s\"", "").await;
    tokio::task::block_in_place(|| {
        let (id, _) = home.request("CASE-LIVE-1", Basis::Emergency);
        let (status, answer) = home.ask_live(&id);
        assert_eq!(status, 201, "{answer}");
        let porch = link(&answer, "porch");
        let garage = link(&answer, "garage");
        let url = porch["url"].as_str().expect("url").to_string();
        assert_eq!(porch["content_type"], "video/mp4");

        // Frames arrive, starting with the MP4 header.
        let asked = Instant::now();
        let mut stream = watch(&home.officer(), &url);
        let shares = home.shares();
        assert_eq!(shares.len(), 2, "{shares:?}");
        let share = porch["share"].as_str().expect("share").to_string();

        // The porch token does not open the garage.
        let garage_url = garage["url"].as_str().expect("url");
        let token = url.split("token=").nth(1).expect("token");
        let crossed = format!(
            "{}token={token}",
            garage_url.split("token=").next().expect("path")
        );
        let refused = home.officer().get(&crossed, &[]).expect("GET");
        assert_eq!(refused.status, 403, "{}", refused.text());
        assert_eq!(refused.error_code().as_deref(), Some("invalid_token"));
        // Nor does it work over another agency's certificate.
        let other = home.client(&home.pki.other_agency_client);
        let refused = other.get(&url, &[]).expect("GET");
        assert_eq!(refused.status, 403, "{}", refused.text());
        assert_eq!(refused.error_code().as_deref(), Some("invalid_token"));
        // A made-up token neither.
        let forged = format!(
            "{}token=AAAA{}",
            url.split("token=").next().expect("path"),
            &token[4..]
        );
        let refused = home.officer().get(&forged, &[]).expect("GET");
        assert_eq!(refused.status, 403, "{}", refused.text());

        // Watched to the end: the share expires at the owner's maximum.
        read_to_end(&mut stream);
        let since_asked = asked.elapsed();
        eprintln!("live share: stream ended {since_asked:?} after the link was given (max 65 s)");
        assert!(
            since_asked >= Duration::from_secs(60) && since_asked <= Duration::from_secs(75),
            "the stream ends at expiry, not before or long after ({since_asked:?})"
        );
        let after = home.officer().get(&url, &[]).expect("GET");
        assert_eq!(after.status, 410, "{}", after.text());
        assert_eq!(after.error_code().as_deref(), Some("token_expired"));
        wait_until(Duration::from_secs(5), "the shares to be over", || {
            home.shares().is_empty()
        });

        // A bit over a minute of viewing: two started minutes, two entries.
        let audit = home.audit();
        assert_eq!(
            minutes_of(&audit, &share),
            2,
            "one entry per started minute"
        );
        let minute = audit
            .iter()
            .find(|e| e["event"] == "live_view_minute")
            .expect("a minute entry");
        assert_eq!(minute["object"]["request_id"], id.as_str());
        assert_eq!(minute["object"]["camera"], "porch");
        assert_eq!(minute["identity"]["kind"], "agency");
        wait_until(Duration::from_secs(5), "the expiry to be logged", || {
            home.audit()
                .iter()
                .any(|e| e["event"] == "expiry" && e["details"]["live_share"] == share.as_str())
        });
        // The owner's request history shows the live view: two minutes,
        // ended at expiry.
        let view = home.history_shows_live_view(&id, "porch", "expired");
        assert_eq!(view["share"], share.as_str(), "{view}");
        assert_eq!(view["minutes"], 2, "{view}");
        // The same request cannot start it again.
        let (status, again) = home.ask_live(&id);
        assert_eq!(status, 410, "{again}");
        assert_eq!(error_code(&again), "live_share_ended");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_combination_that_forbids_a_live_share_is_refused() {
    let today_off = {
        // A day that is not today (UTC), so "porch" is outside its schedule.
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let now = porchlight::time::now_utc_us() / 1_000_000;
        // 1970-01-01 was a Thursday.
        let today = ((now / 86_400) + 3) % 7;
        days[((today + 2) % 7) as usize]
    };
    let cameras = [
        (
            "front",
            format!(
                "{}schedule = [ {{ days = \"daily\", from = \"00:00\", to = \"24:00\" }} ]\n",
                level("emergency_live")
            ),
        ),
        (
            "porch",
            format!(
                "{}schedule = [ {{ days = \"{today_off}\", from = \"00:00\", to = \"24:00\" }} ]\noutside_schedule = \"emergency_auto\"\n",
                level("emergency_live")
            ),
        ),
        ("garage", level("emergency_auto")),
        ("side", level("on_request")),
    ];
    let home = home(&cameras, "", "").await;
    tokio::task::block_in_place(|| {
        let (id, _) = home.request("CASE-LIVE-2", Basis::Emergency);
        let (status, answer) = home.ask_live(&id);
        assert_eq!(status, 201, "{answer}");
        // Inside its schedule at emergency_live: the only one allowed.
        let live: Vec<&str> = answer["live"]
            .as_array()
            .expect("live")
            .iter()
            .filter_map(|l| l["camera"].as_str())
            .collect();
        assert_eq!(live, ["front"], "{answer}");
        let refused = |camera: &str| -> String {
            answer["refused"]
                .as_array()
                .and_then(|r| r.iter().find(|r| r["camera"] == camera))
                .and_then(|r| r["code"].as_str())
                .unwrap_or_else(|| panic!("{camera} not refused: {answer}"))
                .to_string()
        };
        // Outside the schedule (even with emergency_auto off-hours): the
        // agency learns nothing of the owner's habits.
        assert_eq!(refused("porch"), "not_available");
        assert_eq!(refused("garage"), "live_not_shared");
        // Waits for the owner: nothing granted to live from.
        assert_eq!(refused("side"), "not_in_request");

        // A consent request, even once the owner approved it, is no emergency.
        let (consent, _) = home.request("CASE-LIVE-3", Basis::Consent);
        let (status, approved) = http_send(
            home.daemon.http,
            "POST",
            &format!("/api/requests/{consent}/approve"),
            Some("{}"),
        )
        .expect("approve");
        assert_eq!(status, 200, "{approved}");
        let (status, answer) = home.ask_live(&consent);
        assert_eq!(status, 403, "{answer}");
        assert_eq!(error_code(&answer), "emergency_required", "{answer}");
        assert!(answer["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("emergency"));

        // Privacy on: an emergency request granted before is refused live.
        let (before, _) = home.request("CASE-LIVE-4", Basis::Emergency);
        let (status, body) = http_send(
            home.daemon.http,
            "PUT",
            "/api/privacy",
            Some(r#"{"on": true}"#),
        )
        .expect("privacy");
        assert_eq!(status, 200, "{body}");
        let (status, answer) = home.ask_live(&before);
        assert_eq!(status, 403, "{answer}");
        assert_eq!(error_code(&answer), "not_available", "{answer}");

        // Every refusal is in the owner's log.
        let refusals = home
            .audit()
            .iter()
            .filter(|e| {
                e["details"]["call"] == "POST /v1/requests/{id}/live"
                    && e["outcome"]["result"] == "refused"
            })
            .count();
        assert!(refusals >= 5, "refusals logged: {refusals}");
        // Unknown requests and bad ids look alike.
        let (status, answer) = home.ask_live("req_00000000000000000000");
        assert_eq!(status, 404, "{answer}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_ends_live_shares_at_once_from_the_api_cli_and_home_assistant() {
    let broker = Mosquitto::start();
    let mqtt = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"porchlight-live-share\"\n",
        broker.port
    );
    let cameras = [("porch", level("emergency_live"))];
    let home = home(&cameras, "", &mqtt).await;
    tokio::task::block_in_place(|| {
        let sensor = "porchlight/porch/live_share";
        wait_until(Duration::from_secs(20), "the sensor to read OFF", || {
            broker.retained(sensor) == "OFF"
        });
        assert!(broker
            .retained("homeassistant/binary_sensor/porchlight/camera_porch_live_share/config")
            .contains("Live share active"));

        // 1. The owner API ends one share.
        let start = |case: &str| -> (String, StreamingResponse) {
            let (id, _) = home.request(case, Basis::Emergency);
            let (status, answer) = home.ask_live(&id);
            assert_eq!(status, 201, "{answer}");
            let porch = link(&answer, "porch");
            let stream = watch(&home.officer(), porch["url"].as_str().expect("url"));
            (porch["share"].as_str().expect("share").to_string(), stream)
        };
        let (share, stream) = start("CASE-KILL-1");
        wait_until(Duration::from_secs(10), "HA to show the live share", || {
            broker.retained(sensor) == "ON"
        });
        let ended = end_seen(stream);
        let asked = Instant::now();
        let (status, body) = http_send(
            home.daemon.http,
            "DELETE",
            &format!("/api/live-shares/{share}"),
            None,
        )
        .expect("DELETE");
        assert_eq!(status, 200, "{body}");
        let took = ended.join().expect("reader").duration_since(asked);
        eprintln!("live share: owner API end -> stream closed in {took:?}");
        assert!(
            took <= Duration::from_millis(1500),
            "ends within a second: {took:?}"
        );
        wait_until(Duration::from_secs(10), "HA to show it ended", || {
            broker.retained(sensor) == "OFF"
        });
        let (status, body) = http_send(
            home.daemon.http,
            "DELETE",
            &format!("/api/live-shares/{share}"),
            None,
        )
        .expect("DELETE");
        assert_eq!(status, 404, "{body}");
        let (status, body) =
            http_send(home.daemon.http, "DELETE", "/api/live-shares/..%2Fx", None).expect("DELETE");
        assert_eq!(status, 400, "{body}");

        // 2. Home Assistant's button ends every share.
        let (_, stream) = start("CASE-KILL-2");
        wait_until(Duration::from_secs(10), "HA to show the live share", || {
            broker.retained(sensor) == "ON"
        });
        let ended = end_seen(stream);
        let asked = Instant::now();
        broker.publish("porchlight/live_shares/end/set", "PRESS");
        let took = ended.join().expect("reader").duration_since(asked);
        eprintln!("live share: MQTT end -> stream closed in {took:?}");
        assert!(
            took <= Duration::from_millis(1500),
            "ends within a second: {took:?}"
        );
        wait_until(Duration::from_secs(10), "HA to show it ended", || {
            broker.retained(sensor) == "OFF"
        });

        // 3. The CLI lists and ends them through the running daemon.
        let (share, stream) = start("CASE-KILL-3");
        let config = home.daemon.config_path.to_str().expect("utf-8").to_string();
        let (code, out, err) = porchlight(&["live-shares", "list", "--config", &config]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&share), "{out}");
        let ended = end_seen(stream);
        let asked = Instant::now();
        let (code, out, err) = porchlight(&["live-shares", "end", "--all", "--config", &config]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&share), "{out}");
        let took = ended.join().expect("reader").duration_since(asked);
        eprintln!("live share: CLI end (incl. process start) -> stream closed in {took:?}");
        let (code, _, err) = porchlight(&["live-shares", "end", "nonsense", "--config", &config]);
        assert_ne!(code, 0);
        assert!(err.contains("not a live share id"), "{err}");

        // 4. Lowering the camera's level ends a running share.
        let (_, stream) = start("CASE-KILL-4");
        let ended = end_seen(stream);
        let asked = Instant::now();
        let (status, body) = http_send(
            home.daemon.http,
            "PUT",
            "/api/cameras/porch/sharing",
            Some(r#"{"level": "emergency_auto"}"#),
        )
        .expect("PUT sharing");
        assert_eq!(status, 200, "{body}");
        let took = ended.join().expect("reader").duration_since(asked);
        eprintln!("live share: level lowered -> stream closed in {took:?}");
        assert!(
            took <= Duration::from_millis(1500),
            "ends within a second: {took:?}"
        );

        // 5. So does the privacy switch.
        let (status, body) = http_send(
            home.daemon.http,
            "PUT",
            "/api/cameras/porch/sharing",
            Some(r#"{"level": "emergency_live"}"#),
        )
        .expect("PUT sharing");
        assert_eq!(status, 200, "{body}");
        let (_, stream) = start("CASE-KILL-5");
        let ended = end_seen(stream);
        let asked = Instant::now();
        let (status, body) = http_send(
            home.daemon.http,
            "PUT",
            "/api/privacy",
            Some(r#"{"on": true}"#),
        )
        .expect("privacy");
        assert_eq!(status, 200, "{body}");
        let took = ended.join().expect("reader").duration_since(asked);
        eprintln!("live share: privacy on -> stream closed in {took:?}");
        assert!(
            took <= Duration::from_millis(1500),
            "ends within a second: {took:?}"
        );

        // Each end is in the owner's log with its reason.
        let reasons = || -> Vec<String> {
            home.audit()
                .iter()
                .filter(|e| e["event"] == "revocation")
                .filter_map(|e| e["details"]["ended"].as_str().map(str::to_string))
                .collect()
        };
        wait_until(Duration::from_secs(5), "every end to be logged", || {
            reasons().len() >= 5
        });
        let reasons = reasons();
        assert_eq!(
            reasons,
            [
                "ended_by_owner",
                "ended_by_owner",
                "ended_by_owner",
                "live_not_shared",
                "privacy_mode"
            ],
            "{reasons:?}"
        );
        assert!(home.shares().is_empty());

        // 6. Leaving the relay program ends every share, and the live URL
        // is refused from then on.
        let (status, body) = http_send(
            home.daemon.http,
            "PUT",
            "/api/privacy",
            Some(r#"{"on": false}"#),
        )
        .expect("privacy");
        assert_eq!(status, 200, "{body}");
        let (id, _) = home.request("CASE-LEAVE", Basis::Emergency);
        let (status, answer) = home.ask_live(&id);
        assert_eq!(status, 201, "{answer}");
        let url = link(&answer, "porch")["url"]
            .as_str()
            .expect("url")
            .to_string();
        let ended = end_seen(watch(&home.officer(), &url));
        let asked = Instant::now();
        let (status, body) =
            http_send(home.daemon.http, "POST", "/api/relay/leave", Some("{}")).expect("leave");
        assert!(status == 200 || status == 202, "{status} {body}");
        let took = ended.join().expect("reader").duration_since(asked);
        eprintln!("live share: relay leave -> stream closed in {took:?}");
        assert!(
            took <= Duration::from_millis(1500),
            "ends within a second: {took:?}"
        );
        match home.officer().open_stream(&url) {
            Err(_) => {} // Refused before TLS: the box left the program.
            Ok(Ok(_)) => panic!("the live URL still streams after leaving"),
            Ok(Err(refused)) => assert!(
                refused.status == 403 || refused.status == 410,
                "{} {}",
                refused.status,
                refused.text()
            ),
        }
        wait_until(Duration::from_secs(5), "the end to be logged", || {
            home.audit()
                .iter()
                .any(|e| e["event"] == "revocation" && e["details"]["ended"] == "relay_left")
        });
        assert!(home.shares().is_empty());

        // The owner's request history shows each live view, its audited
        // minutes and why it ended.
        for (case, reason) in [
            ("CASE-KILL-1", "ended_by_owner"),
            ("CASE-KILL-2", "ended_by_owner"),
            ("CASE-KILL-3", "ended_by_owner"),
            ("CASE-KILL-4", "live_not_shared"),
            ("CASE-KILL-5", "privacy_mode"),
            ("CASE-LEAVE", "relay_left"),
        ] {
            let id = home.request_of_case(case);
            home.history_shows_live_view(&id, "porch", reason);
        }
    });
}
