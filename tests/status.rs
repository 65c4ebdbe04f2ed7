//! The owner asks `porchlight status` how things stand: while the daemon
//! records the simulated camera, and again after it has stopped.

mod support;

use std::time::Duration;

use support::{porchlight, record_camera, wait_until};

#[tokio::test(flavor = "multi_thread")]
async fn status_summarises_health_storage_and_sharing() {
    let recorded = record_camera(
        3.0,
        "[policy]\nprivacy = false\n",
        "1GB",
        "sharing = \"on_request\"\nlocation = { lat = 32.78, lon = -96.8 }\n",
    )
    .await;
    let config = recorded
        .daemon
        .config_path
        .to_str()
        .expect("path")
        .to_string();

    // Wait for a second rate sample so fps and bitrate are measured.
    let (code, out, err) = tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(30), "a measured bitrate", || {
            let (_, out, _) = porchlight(&["status", "--config", &config, "--json"]);
            serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|s| s["cameras"][0]["bitrate_bps"].as_u64())
                .is_some_and(|b| b > 0)
        });
        porchlight(&["status", "--config", &config, "--json"])
    });
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(status["source"], "daemon");
    assert_eq!(status["store_ok"], true);
    assert_eq!(status["ingest_ok"], true);
    let camera = &status["cameras"][0];
    assert_eq!(camera["name"], "porch");
    assert_eq!(camera["online"], true, "{status:#}");
    assert!(camera["fps"].as_f64().unwrap() > 20.0, "{status:#}");
    // What the index holds matches what /metrics says was written.
    let written = recorded
        .daemon
        .metric("porchlight_bytes_written_total", &[("camera", "porch")]);
    let stored = camera["stored_bytes"].as_u64().unwrap();
    assert!(
        stored > 0 && stored as f64 <= written * 1.01 + 1.0,
        "{stored} vs {written}"
    );
    // 1 GB at the measured rate, or the 30-day default age, or the disk.
    let rate = camera["recording_rate_bps"].as_u64().expect("a rate") as f64 / 8.0;
    let days = camera["forecast_days"].as_f64().expect("a forecast");
    let by_bytes = 1e9 / rate / 86_400.0;
    let limit = camera["forecast_limit"].as_str().unwrap();
    assert!(["max_bytes", "disk"].contains(&limit), "{status:#}");
    assert!(
        days <= by_bytes * 1.01 + 0.1,
        "{days} days, 1 GB lasts {by_bytes}"
    );
    assert_eq!(status["sharing"]["privacy"], false);
    assert_eq!(status["sharing"]["cameras"]["porch"], "on_request");
    assert_eq!(status["sharing"]["agencies"], serde_json::json!([]));
    assert_eq!(status["sharing"]["pending_requests"], 0);

    // The owner flips privacy on: status follows the daemon, not the config.
    let (code, body) = support::http_send(
        recorded.daemon.http,
        "PUT",
        "/api/privacy",
        Some(r#"{"on":true}"#),
    )
    .expect("PUT /api/privacy");
    assert_eq!(code, 200, "{body}");

    let (code, text, err) = porchlight(&["status", "--config", &config]);
    assert_eq!(code, 0, "{err}");
    println!("{text}");
    assert!(text.contains("daemon running"), "{text}");
    assert!(text.contains("store ok, ingest ok"), "{text}");
    assert!(
        text.contains("privacy           ON: nothing is shared"),
        "{text}"
    );
    assert!(text.contains("camera porch      on_request"), "{text}");
    assert!(
        text.contains("relay             off, not enrolled"),
        "{text}"
    );
    let header = text
        .lines()
        .find(|l| l.contains("STATE"))
        .expect("camera table");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("porch "))
        .expect("porch row");
    assert_eq!(
        header.find("STATE"),
        row.find("online"),
        "columns align:\n{text}"
    );

    // Stopped: the same questions answered from the files, and said so.
    let data_dir = recorded.dir.path().join("data");
    recorded.daemon.stop();
    let (code, out, err) = porchlight(&["status", "--config", &config, "--json"]);
    assert_eq!(code, 0, "{err}");
    let down: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(down["source"], "files");
    assert_eq!(down["cameras"][0]["online"], serde_json::Value::Null);
    assert!(down["cameras"][0]["stored_bytes"].as_u64().unwrap() >= stored);
    assert_eq!(down["sharing"]["privacy"], true, "the owner's saved switch");
    assert_eq!(down["sharing"]["cameras"]["porch"], "on_request");
    assert_eq!(down["sharing"]["pending_requests"], 0);
    assert_eq!(down["storage"]["data_dir"], data_dir.display().to_string());
    let (_, text, _) = porchlight(&["status", "--config", &config]);
    assert!(text.contains("daemon NOT running"), "{text}");
    assert!(text.contains("not recording"), "{text}");
}
