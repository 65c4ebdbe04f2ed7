//! An investigator's relay asks a home for footage over mutual TLS. The
//! owner's policy decides: an emergency on an `emergency_auto` camera is
//! served at once; a consent request on an `on_request` camera waits for the
//! owner. The package verifies offline. Every call is in the owner's audit
//! log.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::pki::TestPki;
use support::relay_client::{
    download_when_ready, footage_request, package_url, Basis, RelayClient,
};
use support::{free_port, porchlight, wait_until, Recorded};

struct Relay {
    rec: Recorded,
    pki: TestPki,
    _pki_dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
}

impl Relay {
    /// Stops the daemon, lets `edit` change its config file, and starts it
    /// again on the same config, address and data dir.
    fn restart(self, edit: impl FnOnce(&Path)) -> Relay {
        let Relay {
            rec,
            pki,
            _pki_dir,
            addr,
        } = self;
        let Recorded {
            dir,
            daemon,
            cam,
            first_us,
        } = rec;
        let daemon = tokio::task::block_in_place(|| daemon.restart_with(edit));
        Relay {
            rec: Recorded {
                dir,
                daemon,
                cam,
                first_us,
            },
            pki,
            _pki_dir,
            addr,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.rec.dir.path().join("data")
    }

    fn client(&self, identity: Option<&support::pki::ClientIdentity>) -> RelayClient {
        RelayClient::from_files(
            self.addr,
            &self.data_dir().join("device-cert.pem"),
            identity.map(|i| (i.cert_path.as_path(), i.key_path.as_path())),
        )
        .expect("client config")
    }

    fn officer(&self) -> RelayClient {
        self.client(Some(&self.pki.client))
    }

    fn config(&self) -> String {
        self.rec.daemon.config_path.display().to_string()
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        support::audit_entries(self.rec.daemon.http)
    }
}

async fn relay(sharing: &str, policy: &str) -> Relay {
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let port = free_port();
    let extra = format!(
        "[relay]\nlisten = \"127.0.0.1:{port}\"\nagency_ca = \"{}\"\n[policy]\n{policy}\n",
        pki.agency_ca_path.display()
    );
    let camera = format!(
        "sharing = \"{sharing}\"\nlocation = {{ lat = 32.7767, lon = -96.7970 }}\naudio_to_police = true\n"
    );
    let rec = support::record_camera(4.0, &extra, "1GB", &camera).await;
    Relay {
        rec,
        pki,
        _pki_dir: pki_dir,
        addr: format!("127.0.0.1:{port}").parse().expect("addr"),
    }
}

/// A request for the last 15 minutes (the footage is the last few seconds).
fn recent() -> support::relay_client::FootageRequestBody {
    footage_request().window_ending_ago(Duration::ZERO, Duration::from_secs(15 * 60))
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
async fn an_emergency_on_an_emergency_auto_camera_is_served_at_once_and_verifies() {
    let relay = relay("emergency_auto", "").await;
    let officer = relay.officer();
    tokio::task::block_in_place(|| {
        // Who is this box? Its fingerprint is what signs the evidence.
        let device = officer.get("/v1/device", &[]).expect("device");
        assert_eq!(device.status, 200, "{}", device.text());
        let device = device.json();
        assert_eq!(device["cameras"][0]["camera"], "porch");
        let fingerprint = device["device"]["cert_fingerprint"]
            .as_str()
            .and_then(|f| f.strip_prefix("sha256:"))
            .expect("fingerprint")
            .to_string();

        let created = officer
            .post_json("/v1/requests", &recent().basis(Basis::Emergency).to_json())
            .expect("POST");
        assert_eq!(created.status, 201, "{}", created.text());
        let body = created.json();
        assert_eq!(body["status"], "approved", "{body}");
        assert_eq!(body["cameras"][0]["status"], "approved", "{body}");
        let id = body["id"].as_str().expect("id").to_string();
        assert_eq!(
            created.header("location"),
            Some(format!("/v1/requests/{id}").as_str())
        );

        let (url, package) = download_when_ready(&officer, &id, "porch");
        assert_eq!(package.status, 200, "{}", package.text());
        assert_eq!(package.header("content-type"), Some("application/x-tar"));
        let path = relay.rec.dir.path().join("delivered.tar");
        std::fs::write(&path, &package.body).expect("write");
        let (code, out) = verify(&path, &fingerprint);
        assert_eq!(code, 0, "the delivered package verifies offline: {out}");

        // Range: a slice is the same bytes as the whole.
        let part = officer
            .get(&url, &[("Range", "bytes=1000-1999")])
            .expect("range");
        assert_eq!(part.status, 206);
        assert_eq!(part.body, package.body[1000..2000]);

        // The token belongs to this certificate, request and camera only.
        let other = relay.client(Some(&relay.pki.other_agency_client));
        let stolen = other.get(&url, &[]).expect("download");
        assert_eq!(stolen.status, 403, "{}", stolen.text());
        assert_eq!(stolen.error_code().as_deref(), Some("invalid_token"));
        let forged = url.replace("token=", "token=x");
        let forged = officer.get(&forged, &[]).expect("download");
        assert_eq!(forged.error_code().as_deref(), Some("invalid_token"));
        let other_camera = url.replace("/packages/porch", "/packages/garage");
        let other_camera = officer.get(&other_camera, &[]).expect("download");
        assert_eq!(other_camera.status, 403, "{}", other_camera.text());
        let traversal = url.replace("/packages/porch", "/packages/..%2Findex.sqlite3");
        let traversal = officer.get(&traversal, &[]).expect("download");
        assert_eq!(traversal.status, 403, "{}", traversal.text());

        // The owner's audit log holds the request, the download and the refusals.
        let audit = relay.audit();
        let of = |event: &str| audit.iter().filter(|e| e["event"] == event).count();
        assert!(of("request_received") >= 1, "{audit:?}");
        let downloads: Vec<_> = audit.iter().filter(|e| e["event"] == "download").collect();
        assert_eq!(
            downloads.len(),
            2,
            "whole and ranged downloads: {downloads:?}"
        );
        assert_eq!(downloads[0]["bytes_served"], package.body.len() as u64);
        assert_eq!(downloads[0]["identity"]["agency"], support::pki::AGENCY);
        assert!(
            of("auth_failure") >= 3,
            "refused tokens are logged: {audit:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_request_waits_for_the_owner_and_is_served_after_approval() {
    let relay = relay("on_request", "").await;
    let officer = relay.officer();
    tokio::task::block_in_place(|| {
        let created = officer
            .post_json("/v1/requests", &recent().basis(Basis::Consent).to_json())
            .expect("POST");
        assert_eq!(created.status, 201, "{}", created.text());
        let body = created.json();
        assert_eq!(body["status"], "pending", "{body}");
        assert!(
            package_url(&body, "porch").is_none(),
            "nothing before the owner says yes"
        );
        let id = body["id"].as_str().expect("id").to_string();

        // The owner approves with the CLI (through the running daemon).
        let (code, out, err) = porchlight(&["requests", "approve", "-c", &relay.config(), &id]);
        assert_eq!(code, 0, "{out}{err}");

        let status = officer
            .get(&format!("/v1/requests/{id}"), &[])
            .expect("status");
        assert_eq!(status.json()["status"], "approved", "{}", status.text());
        let (_, package) = download_when_ready(&officer, &id, "porch");
        assert_eq!(package.status, 200);

        // Another agency cannot even see the request.
        let other = relay.client(Some(&relay.pki.other_agency_client));
        let peek = other
            .get(&format!("/v1/requests/{id}"), &[])
            .expect("status");
        assert_eq!(peek.status, 404, "{}", peek.text());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_are_refused_and_logged_and_get_no_footage() {
    let relay = relay("emergency_auto", "").await;
    tokio::task::block_in_place(|| {
        // Certificates: none, another CA's, expired. The handshake fails.
        for (label, client) in [
            ("no certificate", relay.client(None)),
            ("foreign CA", relay.client(Some(&relay.pki.foreign_client))),
            ("expired", relay.client(Some(&relay.pki.expired_client))),
        ] {
            let result = client.get("/v1/device", &[]);
            assert!(
                matches!(&result, Err(e) if e.is_handshake_failure()),
                "{label}: {result:?}"
            );
        }

        let officer = relay.officer();
        let refused = |body: serde_json::Value, status: u16, code: &str, field: Option<&str>| {
            let response = officer.post_json("/v1/requests", &body).expect("POST");
            assert_eq!(response.status, status, "{code}: {}", response.text());
            assert_eq!(
                response.error_code().as_deref(),
                Some(code),
                "{}",
                response.text()
            );
            if let Some(field) = field {
                assert!(
                    response.error_field().is_some_and(|f| f.starts_with(field)),
                    "names `{field}`: {}",
                    response.text()
                );
            }
        };
        let now = porchlight::time::now_utc_us();
        let hour = 3_600_000_000;
        // Windows: too long, in the future, inverted.
        refused(
            recent().window_us(now - 13 * hour, now).to_json(),
            400,
            "invalid_field",
            Some("window"),
        );
        refused(
            recent().window_us(now + hour, now + 2 * hour).to_json(),
            400,
            "invalid_field",
            Some("window"),
        );
        refused(
            recent().window_us(now, now - hour).to_json(),
            400,
            "invalid_field",
            Some("window"),
        );
        // Forged settings in the body are refused, never obeyed.
        let mut forged = recent().to_json();
        forged["sharing_level"] = "emergency_live".into();
        refused(forged, 400, "unknown_field", Some("sharing_level"));
        let mut forged = recent().to_json();
        forged["privacy"] = false.into();
        refused(forged, 400, "unknown_field", Some("privacy"));
        // A body naming another agency than the certificate.
        refused(
            recent().agency("Other PD").to_json(),
            403,
            "agency_mismatch",
            None,
        );
        // Oversized and non-JSON bodies.
        let big = vec![b'a'; 70 * 1024];
        let response = officer
            .request(
                "POST",
                "/v1/requests",
                &[("Content-Type", "application/json")],
                &big,
            )
            .expect("POST");
        assert_eq!(response.status, 413, "{}", response.text());
        let response = officer
            .request(
                "POST",
                "/v1/requests",
                &[("Content-Type", "text/plain")],
                b"hi",
            )
            .expect("POST");
        assert_eq!(response.status, 415, "{}", response.text());
        // Path traversal in ids.
        for path in [
            "/v1/requests/..%2F..%2Fetc%2Fpasswd",
            "/v1/requests/req_../packages/porch?token=a",
        ] {
            let response = officer.get(path, &[]).expect("GET");
            assert!(
                matches!(response.status, 403 | 404),
                "{path}: {}",
                response.text()
            );
        }
        // Far away: in scope of no camera; nothing is served.
        let far = officer
            .post_json(
                "/v1/requests",
                &recent()
                    .basis(Basis::Emergency)
                    .location(29.76, -95.37, 250.0)
                    .case_id("far-1")
                    .to_json(),
            )
            .expect("POST");
        assert_eq!(far.status, 201, "{}", far.text());
        assert!(
            package_url(&far.json(), "porch").is_none(),
            "{}",
            far.text()
        );

        // A radius over the owner's maximum.
        refused(
            recent().location(32.7767, -96.7970, 5_000.0).to_json(),
            400,
            "invalid_field",
            Some("radius_m"),
        );
        // At most two requests per case (the default): the third is refused.
        for _ in 0..2 {
            let ok = officer
                .post_json("/v1/requests", &recent().case_id("repeat-1").to_json())
                .expect("POST");
            assert_eq!(ok.status, 201, "{}", ok.text());
        }
        refused(
            recent().case_id("repeat-1").to_json(),
            409,
            "case_limit_reached",
            None,
        );

        // A slow client (45 bytes of headers over 18 s) is cut off after
        // the 10 s header timeout instead of holding the connection.
        let slow = officer
            .clone()
            .with_timeout(Duration::from_secs(30))
            .send_slowly(
                b"GET /v1/device HTTP/1.1\r\nHost: x\r\nX-Slow: ",
                Duration::from_millis(400),
            )
            .expect("slow send");
        assert!(
            slow.cut_off && slow.elapsed < Duration::from_secs(16),
            "{slow:?}"
        );

        // Every refusal is in the owner's audit log.
        let audit = relay.audit();
        let refusals = audit
            .iter()
            .filter(|e| e["outcome"]["result"] == "refused")
            .count();
        assert!(refusals >= 12, "refusals logged: {refusals} in {audit:?}");
        assert!(
            audit.iter().all(|e| e["event"] != "download"),
            "no footage served"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_while_recording_goes_on() {
    let relay = relay("emergency_auto", "").await;
    let served = tokio::task::block_in_place(|| {
        let frames_before = relay.rec.daemon.metric(
            "porchlight_frames_total",
            &[("camera", "porch"), ("stream", "main")],
        );
        let officer = relay.officer();
        let started = std::time::Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let client = officer.clone().with_timeout(Duration::from_secs(10));
                std::thread::spawn(move || {
                    let mut statuses = std::collections::HashMap::<u16, u32>::new();
                    for _ in 0..2_500 {
                        let status = client.get("/v1/device", &[]).map(|r| r.status).unwrap_or(0);
                        *statuses.entry(status).or_default() += 1;
                    }
                    statuses
                })
            })
            .collect();
        let mut statuses = std::collections::HashMap::<u16, u32>::new();
        for thread in threads {
            for (status, n) in thread.join().expect("thread") {
                *statuses.entry(status).or_default() += n;
            }
        }
        let elapsed = started.elapsed();
        eprintln!("10,000 calls in {elapsed:?}: {statuses:?}");
        // 60 a minute, in windows that start at the first call: a loaded
        // machine that needs more than a minute for the flood opens more.
        let windows = elapsed.as_secs() as u32 / 60 + 1;
        let served = statuses.get(&200).copied().unwrap_or(0);
        assert!(
            (60..=60 * windows).contains(&served),
            "{served} served in {windows} window(s): {statuses:?}"
        );
        assert_eq!(
            statuses.get(&429).copied().unwrap_or(0),
            10_000 - served,
            "{statuses:?}"
        );

        // The box kept recording through it.
        let frames_after = relay.rec.daemon.metric(
            "porchlight_frames_total",
            &[("camera", "porch"), ("stream", "main")],
        );
        assert!(
            frames_after - frames_before >= elapsed.as_secs_f64() * 30.0 * 0.8,
            "recording went on: {frames_before} -> {frames_after} in {elapsed:?}"
        );
        served
    });
    // Every refused call is accounted for in the audit log: some one by
    // one, the rest counted in a summary written at the latest on stop.
    let config = relay.config();
    let Relay { rec, .. } = relay;
    rec.daemon.stop();
    let (code, out, err) = porchlight(&["audit", "show", "-c", &config, "--json"]);
    assert_eq!(code, 0, "{err}");
    let mut individually = 0u64;
    let mut summarised = 0u64;
    for line in out.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("json line");
        if entry["event"] != "request_refused" {
            continue;
        }
        match entry["details"]["refused_calls"].as_u64() {
            Some(n) => summarised += n,
            None => individually += 1,
        }
        summarised += entry["details"]["earlier_refusals_not_logged_individually"]
            .as_u64()
            .unwrap_or(0);
    }
    assert_eq!(
        individually + summarised,
        10_000 - u64::from(served),
        "{individually} + {summarised}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_of_the_owners_policy_is_in_the_audit_log() {
    let relay = relay("on_request", "").await;
    let policy_entries = |relay_audit: &[serde_json::Value]| {
        relay_audit
            .iter()
            .filter(|e| e["event"] == "policy_change")
            .cloned()
            .collect::<Vec<_>>()
    };
    let first = tokio::task::block_in_place(|| policy_entries(&relay.audit()));
    assert_eq!(
        first.len(),
        1,
        "the policy in force at first start: {first:?}"
    );

    // The owner turns sharing off by editing the config and restarting.
    let relay = relay.restart(|config_path| {
        let text = std::fs::read_to_string(config_path).expect("config");
        std::fs::write(
            config_path,
            text.replace("sharing = \"on_request\"", "sharing = \"off\""),
        )
        .expect("write");
    });
    let entries = tokio::task::block_in_place(|| policy_entries(&relay.audit()));
    assert_eq!(entries.len(), 2, "{entries:?}");
    let change = &entries[1]["details"];
    assert_eq!(
        change["previous"]["cameras"][0]["level"], "on_request",
        "{change}"
    );
    assert_eq!(change["now"]["cameras"][0]["level"], "off", "{change}");

    // And a restart without a change adds nothing.
    let relay = relay.restart(|_| {});
    let daemon = &relay.rec.daemon;
    let (_, body) =
        tokio::task::block_in_place(|| support::http_get(daemon.http, "/api/audit?limit=1000"))
            .expect("audit");
    let page: serde_json::Value = serde_json::from_str(&body).expect("json");
    let count = page["entries"].as_array().map_or(0, |e| {
        e.iter().filter(|e| e["event"] == "policy_change").count()
    });
    assert_eq!(count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_switches_take_effect_at_once_and_are_logged() {
    let relay = relay("on_request", "").await;
    let http = relay.rec.daemon.http;
    let officer = relay.officer();
    let put = |path: &str, body: &str| {
        tokio::task::block_in_place(|| support::http_send(http, "PUT", path, Some(body)))
            .expect("PUT")
    };
    let registry = || {
        tokio::task::block_in_place(|| officer.get("/v1/device", &[]))
            .expect("device")
            .json()["cameras"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(registry(), 1);

    // Sharing off: the camera disappears from what agencies see.
    let (status, body) = put("/api/cameras/porch/sharing", r#"{"level":"off"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(registry(), 0);
    let (status, _) = put("/api/cameras/porch/sharing", r#"{"level":"on_request"}"#);
    assert_eq!(status, 200);
    assert_eq!(registry(), 1);

    // Privacy on: nothing shared, whatever the levels say.
    let (status, body) = put("/api/privacy", r#"{"on":true}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(registry(), 0);
    let created = tokio::task::block_in_place(|| {
        officer.post_json("/v1/requests", &recent().basis(Basis::Consent).to_json())
    })
    .expect("POST");
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["status"], "denied", "{}", created.text());
    let (status, _) = put("/api/privacy", r#"{"on":false}"#);
    assert_eq!(status, 200);

    // Recording off: frames stop; on again: they resume.
    let frames = || {
        relay.rec.daemon.metric(
            "porchlight_frames_total",
            &[("camera", "porch"), ("stream", "main")],
        )
    };
    let (status, body) = put("/api/cameras/porch/recording", r#"{"on":false}"#);
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let paused_at = frames();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(frames(), paused_at, "nothing recorded while switched off");
    let (status, _) = put("/api/cameras/porch/recording", r#"{"on":true}"#);
    assert_eq!(status, 200);
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(20), "recording to resume", || {
            frames() > paused_at + 30.0
        })
    });

    // Bad input is named and changes nothing.
    for (path, body, want, text) in [
        (
            "/api/cameras/porch/sharing",
            r#"{"level":"maximum"}"#,
            400,
            "level",
        ),
        (
            "/api/cameras/porch/sharing",
            r#"{"level":"off","extra":1}"#,
            400,
            "extra",
        ),
        (
            "/api/cameras/garage/sharing",
            r#"{"level":"off"}"#,
            404,
            "garage",
        ),
        ("/api/privacy", r#"{"on":"yes"}"#, 400, "on"),
        ("/api/cameras/porch/recording", "not json", 400, ""),
    ] {
        let (status, response) = put(path, body);
        assert_eq!(status, want, "{path} {body}: {response}");
        assert!(response.contains(text), "{path} {body}: {response}");
    }
    assert_eq!(registry(), 1);

    // A web page cannot drive the owner API: foreign Host (DNS rebinding),
    // foreign Origin or a non-JSON body (CSRF) are refused.
    let raw = |request: String| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(http).expect("connect");
        stream.write_all(request.as_bytes()).expect("send");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    };
    let rebound = raw(
        "GET /api/settings HTTP/1.1\r\nHost: rebound.example:80\r\nConnection: close\r\n\r\n"
            .into(),
    );
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
    let body = r#"{"on":true}"#;
    let foreign = raw(format!(
        "PUT /api/privacy HTTP/1.1\r\nHost: {http}\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert!(foreign.starts_with("HTTP/1.1 403"), "{foreign}");
    let form = raw(format!(
        "PUT /api/privacy HTTP/1.1\r\nHost: {http}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert!(form.starts_with("HTTP/1.1 415"), "{form}");
    assert_eq!(registry(), 1, "privacy stayed off");

    // Every switch is in the audit log, from the owner API.
    let audit = tokio::task::block_in_place(|| relay.audit());
    let changes: Vec<_> = audit
        .iter()
        .filter(|e| e["event"] == "policy_change" && e["component"] == "owner_api")
        .collect();
    assert_eq!(changes.len(), 6, "{changes:?}");

    // And the switches survive a restart.
    let (status, _) = put("/api/cameras/porch/sharing", r#"{"level":"off"}"#);
    assert_eq!(status, 200);
    let relay = relay.restart(|_| {});
    let (status, body) =
        tokio::task::block_in_place(|| support::http_get(http, "/api/settings")).expect("GET");
    assert_eq!(status, 200);
    let settings: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(settings["cameras"][0]["sharing"], "off", "{settings}");
    let device =
        tokio::task::block_in_place(|| relay.officer().get("/v1/device", &[])).expect("device");
    assert_eq!(device.json()["cameras"].as_array().map_or(0, Vec::len), 0);
}
