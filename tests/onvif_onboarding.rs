//! The owner's story of a new camera: the daemon's background discovery
//! finds it over real WS-Discovery multicast, it waits as pending in
//! `/api/discovery`, the owner adds it with its login choosing the main and
//! sub profiles, it records (segments appear), it is still there after a
//! restart, and when DHCP moves it to a new address (a Hello with new
//! XAddrs) the same camera follows it there and keeps recording; a device
//! merely claiming to be it, while it still answers, is refused.
//!
//! Everything runs in a network namespace of its own (support/netns.rs):
//! the daemon, the fake ONVIF camera (SOAP on 127.0.0.1, streams from the
//! simcam) and its WS-Discovery responder on the real port 3702; multicast
//! never leaves it.

#[path = "support/ws_discovery_fake.rs"]
mod discovery_fake;
#[path = "support/fake_onvif.rs"]
mod fake_onvif;
#[path = "support/netns.rs"]
mod netns;
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use support::{http_get, http_send, segment_files, wait_until, Daemon};

const CAM: &str = "6e0c8f2a-1d3b-4c5e-9f70-00a1b2c3d4e5";
const OTHER: &str = "b71d4e90-2c8f-4a16-8d3e-5f6a7b8c9d0e";
const USER: &str = "admin";
const PASS: &str = "porch light 42";

/// Runs blocking test code (HTTP polls, the daemon process) off the
/// namespace's single-threaded runtime, so the fakes keep serving.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking part")
}

fn get_json(daemon_http: std::net::SocketAddr, path: &str) -> Option<Value> {
    match http_get(daemon_http, path) {
        Ok((200, body)) => serde_json::from_str(&body).ok(),
        _ => None, // Restarting in place, or not yet up.
    }
}

fn device(discovery: &Value, endpoint: &str) -> Option<Value> {
    discovery["devices"]
        .as_array()?
        .iter()
        .find(|d| d["endpoint"] == endpoint)
        .cloned()
}

fn camera_frames(http: std::net::SocketAddr, name: &str, stream: &str) -> u64 {
    let Some(cameras) = get_json(http, "/api/cameras") else {
        return 0;
    };
    cameras
        .as_array()
        .and_then(|list| list.iter().find(|c| c["name"] == name))
        .and_then(|c| {
            c["streams"]
                .as_array()?
                .iter()
                .find(|s| s["stream"] == stream)
        })
        .and_then(|s| s["frames_total"].as_u64())
        .unwrap_or(0)
}

fn add(http: std::net::SocketAddr, endpoint: &str, body: Value) -> (u16, Value) {
    let (status, text) = http_send(
        http,
        "POST",
        &format!("/api/discovery/{endpoint}/add"),
        Some(&body.to_string()),
    )
    .expect("POST add");
    let answer = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, answer)
}

fn saved(data_dir: &Path) -> Value {
    let text = std::fs::read_to_string(data_dir.join("onboarded-cameras.json")).expect("saved");
    serde_json::from_str(&text).expect("saved JSON")
}

/// A fake ONVIF camera whose profiles `main` and `sub` are the simcam's streams.
async fn onvif_camera(simcam: &porchlight_simcam::SimCam) -> fake_onvif::FakeCamera {
    fake_onvif::FakeCamera::start(fake_onvif::Config {
        // Cameras' clocks are often off; this one is 90 minutes fast.
        clock_skew: time::Duration::minutes(90),
        streams: vec![
            ("main".into(), simcam.url("main")),
            ("sub".into(), simcam.url("sub")),
        ],
        ..fake_onvif::Config::default()
    })
    .await
}

#[test]
fn a_discovered_camera_is_added_records_survives_a_restart_and_follows_a_new_address() {
    netns::isolated(|| async {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir: PathBuf = dir.path().join("data");
        let simcam = support::simcam(porchlight_simcam::Clip::Sd, false).await;
        let soap = onvif_camera(&simcam).await;
        let mut announced = discovery_fake::FakeCamera::new(CAM, "Front%20Porch");
        announced.xaddrs = vec![soap.xaddr.clone()];
        let responder = announced.clone().spawn(3702);
        // A second device on the LAN, never added.
        let mut other = discovery_fake::FakeCamera::new(OTHER, "Garage");
        other.xaddrs = vec![soap.xaddr.clone()];
        let _other = other.spawn(3702);

        let config = format!(
            "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"10MB\"\n\
             [storage]\nsegment_duration = \"2s\"\n\
             [discovery]\ninterfaces = [\"127.0.0.1\"]\ninterval = \"10s\"\nprobe_timeout = \"1s\"\n",
            data_dir.display()
        );
        let root = dir.path().to_path_buf();
        let daemon = blocking(move || Daemon::start(&root, &config)).await;
        let http = daemon.http;
        let endpoint = format!("urn:uuid:{CAM}");

        // Discovered, pending, with what its announcement says.
        let pending = {
            let endpoint = endpoint.clone();
            blocking(move || {
                let mut found = None;
                wait_until(
                    Duration::from_secs(20),
                    "the camera in /api/discovery",
                    || {
                        found =
                            get_json(http, "/api/discovery").and_then(|d| device(&d, &endpoint));
                        found.is_some()
                    },
                );
                found.expect("device")
            })
            .await
        };
        assert_eq!(pending["state"], "pending", "{pending:#}");
        assert_eq!(pending["camera"], Value::Null);
        assert_eq!(pending["name"], "Front Porch");
        assert_eq!(pending["hardware"], "FK-100/IR");
        assert_eq!(pending["location"], "country/Front Porch");
        assert_eq!(pending["xaddrs"], json!([soap.xaddr]));
        assert!(pending["first_seen"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
        assert!(pending["last_seen"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
        // It wants a login even for GetDeviceInformation: no make yet.
        assert_eq!(pending["manufacturer"], Value::Null);

        // The owner's mistakes get clear answers.
        let ep = endpoint.clone();
        let errors = blocking(move || {
            let login = |password: &str| {
                json!({"name": "porch", "username": USER, "password": password,
                       "main_profile": "main", "sub_profile": "sub"})
            };
            vec![
                add(http, &ep, login("wrong")),
                add(
                    http,
                    "urn:uuid:00000000-0000-4000-8000-000000000000",
                    login(PASS),
                ),
                add(
                    http,
                    &ep,
                    json!({"name": "Front Porch!", "username": USER, "password": PASS}),
                ),
                add(
                    http,
                    &ep,
                    json!({"name": "porch", "username": USER, "password": PASS,
                                      "main_profile": "4k"}),
                ),
                add(
                    http,
                    &ep,
                    json!({"name": "porch", "username": USER, "password": PASS,
                                      "main_profile": "main", "sub_profile": "main"}),
                ),
                add(http, &ep, json!({"name": "porch", "colour": "red"})),
            ]
        })
        .await;
        let expect = [
            (422, "username or password"),
            (404, "no discovered ONVIF device"),
            (400, "camera name"),
            (400, "no profile `4k`"),
            (400, "different profiles"),
            (400, "colour"),
        ];
        assert_eq!(errors.len(), expect.len(), "one answer per mistake");
        for ((status, answer), (want, text)) in errors.iter().zip(expect) {
            let error = answer["error"].as_str().unwrap_or_default();
            assert_eq!(*status, want, "{answer}");
            assert!(error.contains(text), "`{error}` should mention `{text}`");
        }
        assert!(!data_dir.join("onboarded-cameras.json").exists());

        // The owner adds it, main and sub chosen.
        let ep = endpoint.clone();
        let (status, added) = blocking(move || {
            add(
                http,
                &ep,
                json!({"name": "porch", "username": USER, "password": PASS,
                       "main_profile": "main", "sub_profile": "sub"}),
            )
        })
        .await;
        assert_eq!(status, 201, "{added}");
        assert_eq!(added["url"], simcam.url("main"));
        assert_eq!(added["sub_url"], simcam.url("sub"));
        assert_eq!(added["manufacturer"], "Mockup Manufacturer");
        assert_eq!(added["serial"], "00000000");
        let skew = added["clock_skew_ms"].as_i64().expect("skew");
        assert!((skew - 5_400_000).abs() < 5_000, "skew {skew} ms");
        let mode = std::fs::metadata(data_dir.join("onboarded-cameras.json"))
            .expect("saved file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the file holds the camera's password");
        assert_eq!(saved(&data_dir)["cameras"][0]["password"], PASS);

        // It records both streams, without the owner restarting anything.
        let data = data_dir.clone();
        blocking(move || {
            wait_until(
                Duration::from_secs(40),
                "the added camera to record",
                || {
                    camera_frames(http, "porch", "main") >= 90
                        && camera_frames(http, "porch", "sub") >= 30
                },
            );
            assert!(!segment_files(&data).is_empty(), "segments on disk");
        })
        .await;
        assert!(simcam.frames_sent("main") > 0 && simcam.frames_sent("sub") > 0);

        // Now it is a camera: listed as such, with its make; adding it
        // again, or another device under its name, is a conflict.
        let (ep, other_ep) = (endpoint.clone(), format!("urn:uuid:{OTHER}"));
        let (listed, again, same_name) = blocking(move || {
            let listed = get_json(http, "/api/discovery").expect("discovery");
            let again = add(
                http,
                &ep,
                json!({"name": "porch2", "username": USER, "password": PASS}),
            );
            let same_name = add(
                http,
                &other_ep,
                json!({"name": "porch", "username": USER, "password": PASS}),
            );
            (listed, again, same_name)
        })
        .await;
        let cam = device(&listed, &endpoint).expect("still listed");
        assert_eq!(cam["state"], "camera", "{cam:#}");
        assert_eq!(cam["camera"], "porch");
        assert_eq!(cam["model"], "Mockup Model");
        let garage = device(&listed, &format!("urn:uuid:{OTHER}")).expect("garage");
        assert_eq!(garage["state"], "pending");
        assert_eq!(again.0, 409, "{}", again.1);
        assert!(again.1["error"]
            .as_str()
            .unwrap_or_default()
            .contains("already the camera `porch`"));
        assert_eq!(same_name.0, 409, "{}", same_name.1);
        assert!(same_name.1["error"]
            .as_str()
            .unwrap_or_default()
            .contains("already a camera named `porch`"));

        // A restart keeps it.
        let daemon = blocking(move || {
            let daemon = daemon.restart_with(|_| {});
            wait_until(
                Duration::from_secs(30),
                "recording after the restart",
                || camera_frames(http, "porch", "main") >= 30,
            );
            daemon
        })
        .await;

        // An impostor on the LAN announces the camera's (public) endpoint
        // reference from its own address, copying even its serial number,
        // while the real camera still answers where it was: not a move.
        let impostor_simcam = support::simcam(porchlight_simcam::Clip::Sd, false).await;
        let impostor_soap = onvif_camera(&impostor_simcam).await;
        let mut impostor = announced.clone();
        impostor.xaddrs = vec![impostor_soap.xaddr.clone()];
        impostor.metadata_version = 7;
        discovery_fake::multicast(impostor.hello(true).as_bytes(), 3702).await;
        let data = data_dir.clone();
        let old_xaddr = soap.xaddr.clone();
        let daemon = blocking(move || {
            wait_until(
                Duration::from_secs(30),
                "the impostor refused in the audit log",
                || {
                    get_json(http, "/api/audit?camera=porch").is_some_and(|page| {
                        page.to_string()
                            .contains("still answers at its saved address")
                    })
                },
            );
            assert_eq!(saved(&data)["cameras"][0]["onvif"], old_xaddr.as_str());
            assert!(camera_frames(http, "porch", "main") > 0, "still recording");
            daemon
        })
        .await;
        assert_eq!(
            impostor_simcam.frames_sent("main"),
            0,
            "nothing is recorded from the impostor"
        );
        drop(impostor_soap);
        impostor_simcam.shutdown().await;

        // DHCP moves the camera: its SOAP service and streams now answer on
        // other ports, the old ones are gone, and it says Hello from there.
        let moved_simcam = support::simcam(porchlight_simcam::Clip::Sd, false).await;
        let moved_soap = onvif_camera(&moved_simcam).await;
        simcam.shutdown().await;
        drop(soap);
        responder.abort();
        let mut moved = announced.clone();
        moved.xaddrs = vec![moved_soap.xaddr.clone()];
        moved.metadata_version = 2;
        let _moved_responder = moved.clone().spawn(3702);
        discovery_fake::multicast(moved.hello(true).as_bytes(), 3702).await;

        let data = data_dir.clone();
        let new_xaddr = moved_soap.xaddr.clone();
        let new_url = moved_simcam.url("main");
        let daemon = blocking(move || {
            wait_until(
                Duration::from_secs(40),
                "the camera to follow its new address",
                || {
                    let s = saved(&data);
                    s["cameras"][0]["onvif"] == new_xaddr.as_str()
                        && s["cameras"][0]["url"] == new_url.as_str()
                },
            );
            daemon
        })
        .await;
        let before = moved_simcam.frames_sent("main");
        blocking(move || {
            wait_until(
                Duration::from_secs(40),
                "recording from the new address",
                || camera_frames(http, "porch", "main") >= 60,
            );
        })
        .await;
        assert!(
            moved_simcam.frames_sent("main") > before,
            "streams come from the new address"
        );

        // Still one camera, the same one; the device shows as that camera.
        let (cameras, listed, log) = blocking(move || {
            let cameras = get_json(http, "/api/cameras").expect("cameras");
            let listed = get_json(http, "/api/discovery").expect("discovery");
            (cameras, listed, daemon.stop())
        })
        .await;
        let names: Vec<&str> = cameras
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["porch"], "no new camera");
        let cam = device(&listed, &endpoint).expect("listed");
        assert_eq!(cam["camera"], "porch");
        assert_eq!(cam["xaddrs"], json!([moved_soap.xaddr]));
        let s = saved(&dir.path().join("data"));
        assert_eq!(s["cameras"].as_array().map(Vec::len), Some(1));
        assert_eq!(s["cameras"][0]["sub_url"], moved_simcam.url("sub"));
        assert!(s["cameras"][0]["moved_at"].is_i64());
        assert!(log.contains("camera moved"), "{log}");
        let audit = std::process::Command::new(env!("CARGO_BIN_EXE_porchlight"))
            .args(["audit", "show", "--camera", "porch", "--config"])
            .arg(dir.path().join("config.toml"))
            .output()
            .expect("porchlight audit show");
        let audit = String::from_utf8_lossy(&audit.stdout);
        assert!(
            audit.contains("camera_change"),
            "adds and moves are audited:\n{audit}"
        );
    });
}
