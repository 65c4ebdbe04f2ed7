//! A Home Assistant user runs Porchlight next to a Mosquitto broker: the
//! cameras and the hub appear through MQTT discovery, the owner sets a
//! camera's sharing level and answers a police request from Home Assistant,
//! and both go through the same checks and the same audit log as the owner
//! API.

#[path = "support/fake_onvif.rs"]
mod fake_onvif;
mod support;

use std::time::Duration;

use support::pki::TestPki;
use support::relay_client::{footage_request, Basis, RelayClient};
use support::{free_port, http_get, wait_until, Mosquitto};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_sees_the_cameras_and_answers_police_requests() {
    let broker = tokio::task::block_in_place(Mosquitto::start);
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let relay_port = free_port();
    let extra = format!(
        "[relay]\nlisten = \"127.0.0.1:{relay_port}\"\nagency_ca = \"{}\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"porchlight-test\"\n",
        pki.agency_ca_path.display(),
        broker.port
    );
    // The camera's ONVIF side (a fake over real HTTP) reports motion.
    // Its clock runs two hours fast, as camera clocks often do.
    let onvif = fake_onvif::FakeCamera::start(fake_onvif::Config {
        clock_skew: time::Duration::hours(2),
        ..fake_onvif::Config::default()
    })
    .await;
    let camera = format!(
        "sharing = \"on_request\"\nlocation = {{ lat = 32.7767, lon = -96.7970 }}\n\
         onvif = \"{}\"\nusername = \"admin\"\npassword = \"porch light 42\"\n",
        onvif.xaddr
    );
    let rec = support::record_camera(3.0, &extra, "1GB", &camera).await;
    let http = rec.daemon.http;

    tokio::task::block_in_place(|| {
        // Discovery: retained configs for the camera's entities and the hub.
        wait_until(Duration::from_secs(20), "Porchlight online on MQTT", || {
            broker.retained("porchlight/status") == "online"
        });
        let discovery = broker.collect("homeassistant/#", 2);
        for (component, what) in [
            ("select", "sharing"),
            ("switch", "recording"),
            ("binary_sensor", "online"),
            ("image", "snapshot"),
            ("switch", "privacy"),
            ("event", "police_request"),
        ] {
            let line = discovery
                .lines()
                .find(|l| l.starts_with(&format!("homeassistant/{component}/")) && l.contains(what))
                .unwrap_or_else(|| panic!("no {component} {what} in:\n{discovery}"));
            let json: serde_json::Value = serde_json::from_str(
                line.split_once(' ')
                    .map(|(_, payload)| payload)
                    .unwrap_or_default(),
            )
            .expect("discovery JSON");
            assert!(json["unique_id"].is_string(), "{json}");
            assert!(json["device"]["identifiers"].is_array(), "{json}");
        }

        // Motion from the camera's ONVIF events reaches the motion sensor.
        wait_until(
            Duration::from_secs(20),
            "an ONVIF event subscription",
            || {
                onvif
                    .operations()
                    .iter()
                    .any(|op| op.contains("CreatePullPointSubscription"))
            },
        );
        onvif.push_motion(true);
        wait_until(
            Duration::from_secs(15),
            "motion ON in Home Assistant",
            || broker.retained("porchlight/porch/motion") == "ON",
        );
        onvif.push_motion(false);
        wait_until(
            Duration::from_secs(15),
            "motion OFF in Home Assistant",
            || broker.retained("porchlight/porch/motion") == "OFF",
        );

        // The camera's clock skew, learnt over ONVIF, goes into evidence.
        let path = format!(
            "/api/cameras/porch/evidence?from={}&to={}",
            porchlight::time::format_utc_us(rec.first_us),
            porchlight::time::format_utc_us(rec.first_us + 2_000_000)
        );
        let (status, _, package) = support::http_get_bytes(http, &path, &[]);
        assert_eq!(status, 200);
        let text = String::from_utf8_lossy(&package);
        let skew: i64 = text
            .split("\"clock_skew_ms\": ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit() && c != '-').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a clock skew in the manifest"));
        assert!(
            (skew - 7_200_000).abs() < 2_000,
            "skew {skew} ms for a camera 2 h fast"
        );

        // The owner raises the camera's level from Home Assistant.
        broker.publish("porchlight/porch/sharing/set", "emergency_auto");
        wait_until(
            Duration::from_secs(10),
            "the sharing level to follow",
            || {
                let (_, body) = http_get(http, "/api/settings").expect("GET /api/settings");
                body.contains("emergency_auto")
            },
        );
        wait_until(Duration::from_secs(10), "the state topic to follow", || {
            broker.retained("porchlight/porch/sharing") == "emergency_auto"
        });
        // A garbage level changes nothing.
        broker.publish("porchlight/porch/sharing/set", "maximum");
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            broker.retained("porchlight/porch/sharing"),
            "emergency_auto"
        );
        broker.publish("porchlight/porch/sharing/set", "on_request");
        wait_until(Duration::from_secs(10), "back to on_request", || {
            broker.retained("porchlight/porch/sharing") == "on_request"
        });

        // A police request arrives: Home Assistant gets an event.
        let watcher = {
            let port = broker.port;
            std::thread::spawn(move || {
                let out = std::process::Command::new("mosquitto_sub")
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port.to_string(),
                        "-t",
                        "porchlight/requests/event",
                    ])
                    .args(["-C", "1", "-W", "15"])
                    .output()
                    .expect("mosquitto_sub");
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
        };
        std::thread::sleep(Duration::from_millis(500));
        let officer = RelayClient::for_daemon(
            format!("127.0.0.1:{relay_port}").parse().expect("addr"),
            &rec.dir.path().join("data"),
            &pki.client,
        );
        let created = officer
            .post_json(
                "/v1/requests",
                &footage_request()
                    .window_ending_ago(Duration::ZERO, Duration::from_secs(15 * 60))
                    .basis(Basis::Consent)
                    .to_json(),
            )
            .expect("POST");
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json()["id"].as_str().expect("id").to_string();
        let event = watcher.join().expect("watcher");
        let event: serde_json::Value = serde_json::from_str(event.trim()).expect("event JSON");
        assert_eq!(event["event_type"], "police_request", "{event}");
        assert_eq!(event["id"], id.as_str(), "{event}");
        assert_eq!(event["agency"], support::pki::AGENCY, "{event}");
        wait_until(Duration::from_secs(10), "one pending request", || {
            broker.retained("porchlight/hub/pending_requests") == "1"
        });

        // The owner approves from Home Assistant.
        broker.publish("porchlight/requests/approve/set", &id);
        wait_until(
            Duration::from_secs(10),
            "the request to be approved",
            || {
                let (_, body) = http_get(http, &format!("/api/requests/{id}")).expect("GET");
                body.contains("\"approved\"")
            },
        );
        // The store changes first, then the audit entry is written.
        wait_until(
            Duration::from_secs(10),
            "the approval audited as from MQTT",
            || {
                support::audit_entries(http)
                    .iter()
                    .any(|e| e["event"] == "approval" && e["component"] == "mqtt")
            },
        );
        let audit = support::audit_entries(http);
        assert!(
            audit
                .iter()
                .filter(|e| e["event"] == "policy_change" && e["component"] == "mqtt")
                .count()
                >= 2,
            "{audit:?}"
        );
    });
}
