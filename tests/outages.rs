//! The things around the recorder go away and come back: the Home
//! Assistant broker restarts (its retained state lost with it) and the
//! police relay drops off in the middle of a download. Recording does not
//! notice; once the broker is back, Home Assistant sees the current state,
//! including a change the owner made while it was gone, and the relay
//! picks its download up where it broke off.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::pki::TestPki;
use support::relay_client::{download_when_ready, footage_request, Basis, RelayClient};
use support::soak::{figure, scaled};
use support::{free_port, http_send, wait_until, Mosquitto};

/// Reads a relay download until `want` body bytes have arrived, then drops
/// the connection without a word (the relay's link went down); returns
/// the body bytes it got.
fn download_cut_short(officer: &RelayClient, url: &str, want: usize) -> Vec<u8> {
    let mut tls = officer.connect().expect("connect to the relay listener");
    write!(
        tls,
        "GET {url} HTTP/1.1\r\nHost: porchlight\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tls.read(&mut buf).expect("read");
        assert!(n > 0, "the download ended before {want} bytes");
        got.extend_from_slice(&buf[..n]);
        if let Some(head_end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..head_end]);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert!(
                !head
                    .to_ascii_lowercase()
                    .contains("transfer-encoding: chunked"),
                "{head}"
            );
            if got.len() >= head_end + 4 + want {
                return got[head_end + 4..head_end + 4 + want].to_vec();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_and_relay_outages_do_not_touch_recording_and_state_catches_up() {
    let outage = Duration::from_secs(scaled(8, 120));
    let broker = tokio::task::block_in_place(Mosquitto::start);
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(pki_dir.path());
    let relay_port = free_port();
    let extra = format!(
        "[relay]\nlisten = \"127.0.0.1:{relay_port}\"\nagency_ca = \"{}\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"porchlight-outage\"\n",
        pki.agency_ca_path.display(),
        broker.port
    );
    let camera = "sharing = \"emergency_auto\"\nlocation = { lat = 32.7767, lon = -96.7970 }\n";
    let rec = support::record_camera(4.0, &extra, "1GB", camera).await;
    let daemon = &rec.daemon;
    let frames = || {
        daemon.metric(
            "porchlight_frames_total",
            &[("camera", "porch"), ("stream", "main")],
        )
    };

    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(20), "Porchlight on MQTT", || {
            broker.retained("porchlight/status") == "online"
                && broker.retained("porchlight/porch/sharing") == "emergency_auto"
        });

        // An emergency request is served; the relay starts downloading.
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
                    .basis(Basis::Emergency)
                    .to_json(),
            )
            .expect("POST /v1/requests");
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json()["id"].as_str().expect("id").to_string();
        let (url, whole) = download_when_ready(&officer, &id, "porch");
        assert_eq!(whole.status, 200, "{}", whole.text());
        let half = whole.body.len() / 2;

        // The outage: the relay's link drops mid-download, the broker dies.
        let reconnects_before =
            daemon.metric("porchlight_reconnects_total", &[("camera", "porch")]);
        let got = download_cut_short(&officer, &url, half);
        assert_eq!(got, whole.body[..half], "the bytes before the cut");
        let port = broker.stop();

        // Recording goes on as before: frames keep being stored, no stall.
        // Meanwhile the owner changes the camera's sharing level.
        let started = Instant::now();
        let (mut last, mut last_change, mut longest_stall) =
            (frames(), Instant::now(), Duration::ZERO);
        let mut changed = false;
        while started.elapsed() < outage {
            std::thread::sleep(Duration::from_millis(250));
            let now = frames();
            if now > last {
                longest_stall = longest_stall.max(last_change.elapsed());
                (last, last_change) = (now, Instant::now());
            }
            assert!(
                last_change.elapsed() < Duration::from_secs(5),
                "recording stalled during the outage (frames stuck at {last})"
            );
            if !changed && started.elapsed() > outage / 2 {
                let (status, body) = http_send(
                    daemon.http,
                    "PUT",
                    "/api/cameras/porch/sharing",
                    Some(r#"{"level":"on_request"}"#),
                )
                .expect("PUT sharing");
                assert_eq!(status, 200, "{body}");
                changed = true;
            }
        }
        let reconnects = daemon.metric("porchlight_reconnects_total", &[("camera", "porch")]);
        assert_eq!(
            reconnects, reconnects_before,
            "the camera was never disconnected"
        );
        for counter in [
            "porchlight_fragments_dropped_total",
            "porchlight_rtp_packets_lost_total",
        ] {
            let value = daemon.metric(counter, &[("camera", "porch"), ("stream", "main")]);
            assert_eq!(value, 0.0, "{counter}");
        }
        assert_eq!(
            daemon.metric("porchlight_camera_up", &[("camera", "porch")]),
            1.0
        );

        // The relay is back: it resumes the download where it broke off.
        let rest = officer
            .get(&url, &[("Range", &format!("bytes={half}-"))])
            .expect("resume the download");
        assert_eq!(rest.status, 206, "{}", rest.text());
        assert_eq!(rest.body, whole.body[half..], "the resumed bytes");

        // The broker is back, empty: Porchlight announces itself again and
        // publishes the state as it is now, the outage's change included.
        let broker = Mosquitto::start_on(port);
        let back = Instant::now();
        wait_until(Duration::from_secs(60), "MQTT state caught up", || {
            broker.retained("porchlight/status") == "online"
                && broker.retained("porchlight/porch/sharing") == "on_request"
        });
        let caught_up = back.elapsed();
        let discovery = broker.collect("homeassistant/#", 2);
        assert!(
            discovery
                .lines()
                .any(|l| l.starts_with("homeassistant/select/") && l.contains("sharing")),
            "discovery announced again:\n{discovery}"
        );
        assert!(!daemon.log().contains("panicked"));

        let check = "MQTT broker and relay outage";
        figure(check, "outage (s)", outage.as_secs());
        figure(
            check,
            "longest gap between stored fragments (ms)",
            longest_stall.as_millis(),
        );
        figure(
            check,
            "camera reconnects during the outage",
            reconnects - reconnects_before,
        );
        figure(
            check,
            "broker back to state caught up (ms)",
            caught_up.as_millis(),
        );
    });
}
