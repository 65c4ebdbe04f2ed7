//! The plugin against a real mosquitto, observed by a second MQTT client.

mod support;

use std::sync::Arc;
use std::time::Duration;

use porchlight_mqtt::{spawn, MqttConfig, MqttTls};
use porchlight_plugin_api::{Host, HostEvent, SHARING_LEVELS};
use serde_json::{json, Value};
use support::{log_text, logs, request, Broker, FakeHost, Msg, Observer, JPEG};
use tokio::sync::watch;

fn config(broker: &Broker, client_id: &str) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port: broker.port,
        client_id: client_id.into(),
        snapshot_interval: Duration::from_secs(1),
        ..MqttConfig::default()
    }
}

struct Plugin {
    handle: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

fn start(config: MqttConfig, host: Arc<FakeHost>) -> Plugin {
    logs();
    let (stop, rx) = watch::channel(false);
    let started = std::time::Instant::now();
    let handle = spawn(config, host as Arc<dyn Host>, rx);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "spawn returns at once"
    );
    Plugin { handle, stop }
}

/// Waits until the plugin is online and has published `porch`'s state.
async fn wait_ready(obs: &Observer) {
    obs.wait_value("porchlight/status", "online", 15).await;
    obs.wait_value("porchlight/porch/sharing", "registered", 15)
        .await;
}

/// Required and expected keys per platform, from Home Assistant's MQTT
/// documentation (integrations `image.mqtt`, `binary_sensor.mqtt`,
/// `sensor.mqtt`, `switch.mqtt`, `select.mqtt`, `event.mqtt`, `text.mqtt`):
/// image needs `image_topic` (or `url_topic`) and takes `content_type`;
/// binary_sensor and sensor need `state_topic`; switch takes
/// `command_topic` and `state_topic`; select needs `command_topic` and
/// `options`; event needs `state_topic` and `event_types`; text needs
/// `command_topic`.
const REQUIRED: &[(&str, &[&str])] = &[
    ("image", &["image_topic", "content_type"]),
    ("binary_sensor", &["state_topic"]),
    ("sensor", &["state_topic"]),
    ("switch", &["command_topic", "state_topic"]),
    ("select", &["command_topic", "state_topic", "options"]),
    ("event", &["state_topic", "event_types"]),
    ("text", &["command_topic"]),
];

/// Keys every discovered entity carries (MQTT discovery docs: `unique_id`
/// and `device` tie it to a device; availability so HA greys it out).
const COMMON: &[&str] = &["unique_id", "name", "device", "availability_topic"];

/// The entities the issue asks for: (component, object id, expected values).
fn expected_entities() -> Vec<(&'static str, String, Value)> {
    let mut v = Vec::new();
    for cam in ["porch", "garage"] {
        let o = |leaf: &str| format!("camera_{cam}_{leaf}");
        v.extend([
            (
                "image",
                o("snapshot"),
                json!({"content_type": "image/jpeg", "image_topic": format!("porchlight/{cam}/snapshot")}),
            ),
            (
                "binary_sensor",
                o("online"),
                json!({"device_class": "connectivity"}),
            ),
            ("binary_sensor", o("motion"), json!({"device_class": "motion"})),
            ("sensor", o("fps"), json!({})),
            (
                "sensor",
                o("bitrate"),
                json!({"device_class": "data_rate", "unit_of_measurement": "bit/s"}),
            ),
            (
                "sensor",
                o("storage"),
                json!({"device_class": "data_size", "unit_of_measurement": "B"}),
            ),
            (
                "sensor",
                o("oldest_footage_age"),
                json!({"device_class": "duration", "unit_of_measurement": "s"}),
            ),
            (
                "switch",
                o("recording"),
                json!({"command_topic": format!("porchlight/{cam}/recording/set")}),
            ),
            (
                "select",
                o("sharing"),
                json!({"options": SHARING_LEVELS, "command_topic": format!("porchlight/{cam}/sharing/set")}),
            ),
        ]);
    }
    v.extend([
        (
            "switch",
            "hub_privacy".to_string(),
            json!({"command_topic": "porchlight/privacy/set"}),
        ),
        ("sensor", "hub_pending_requests".to_string(), json!({})),
        (
            "event",
            "hub_police_request".to_string(),
            json!({"event_types": ["police_request"]}),
        ),
        ("sensor", "hub_last_relay_access".to_string(), json!({})),
        (
            "sensor",
            "hub_disk_free".to_string(),
            json!({"device_class": "data_size"}),
        ),
        (
            "text",
            "hub_approve_request".to_string(),
            json!({"command_topic": "porchlight/requests/approve/set"}),
        ),
        (
            "text",
            "hub_deny_request".to_string(),
            json!({"command_topic": "porchlight/requests/deny/set"}),
        ),
    ]);
    v
}

fn config_topic(component: &str, object_id: &str) -> String {
    format!("homeassistant/{component}/porchlight/{object_id}/config")
}

fn configs(msgs: &[Msg]) -> Vec<&Msg> {
    msgs.iter()
        .filter(|m| m.topic.starts_with("homeassistant/") && m.topic.ends_with("/config"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_retained_and_has_what_home_assistant_requires() {
    let broker = Broker::plain();
    let host = FakeHost::new();
    let plugin = start(config(&broker, "disc"), host.clone());
    {
        let live = Observer::connect(&broker).await;
        wait_ready(&live).await;
        live.wait_for("porch snapshot", 10, |m| {
            m.iter()
                .any(|m| m.topic == "porchlight/porch/snapshot" && m.payload == JPEG)
        })
        .await;
    }
    // A fresh client sees only what is retained.
    let obs = Observer::connect(&broker).await;
    let expected = expected_entities();
    obs.wait_for("every retained config", 10, |m| {
        configs(m).len() >= expected.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let msgs = obs.all();
    let mut hub_id = None;
    let mut unique_ids = Vec::new();
    for (component, object_id, values) in &expected {
        let topic = config_topic(component, object_id);
        let msg = msgs
            .iter()
            .find(|m| m.topic == topic)
            .unwrap_or_else(|| panic!("no config on {topic}"));
        assert!(msg.retain, "{topic} is retained");
        let cfg = msg.json();
        let required = REQUIRED
            .iter()
            .find(|(c, _)| c == component)
            .map(|(_, keys)| *keys)
            .unwrap();
        for key in required.iter().chain(COMMON) {
            assert!(cfg.get(key).is_some(), "{topic}: no `{key}` in {cfg}");
        }
        for (key, want) in values.as_object().unwrap() {
            assert_eq!(&cfg[key], want, "{topic}: `{key}`");
        }
        assert_eq!(cfg["availability_topic"], "porchlight/status");
        let device = &cfg["device"];
        assert_eq!(device["manufacturer"], "Porchlight", "{topic}");
        assert!(device["identifiers"]
            .as_array()
            .is_some_and(|a| !a.is_empty()));
        assert!(device["name"].is_string() && device["model"].is_string());
        if object_id.starts_with("hub_") {
            hub_id = Some(device["identifiers"][0].clone());
        } else {
            assert!(device["via_device"].is_string(), "{topic}: via_device");
        }
        // Whatever the entity reads is there, retained.
        if let Some(state) = cfg.get("state_topic").and_then(Value::as_str) {
            if *component != "event" {
                let s = msgs
                    .iter()
                    .find(|m| m.topic == state)
                    .unwrap_or_else(|| panic!("{topic}: nothing retained on {state}"));
                assert!(s.retain);
            }
        }
        unique_ids.push(cfg["unique_id"].as_str().unwrap().to_string());
    }
    // Stable ids: base topic + camera + entity.
    assert!(unique_ids.contains(&"porchlight_camera_porch_sharing".to_string()));
    let n = unique_ids.len();
    unique_ids.sort();
    unique_ids.dedup();
    assert_eq!(unique_ids.len(), n, "unique ids are unique");
    // Cameras hang off the hub.
    let porch = msgs
        .iter()
        .find(|m| m.topic == config_topic("select", "camera_porch_sharing"))
        .unwrap()
        .json();
    assert_eq!(Some(porch["device"]["via_device"].clone()), hub_id);
    // The state values.
    let value = |t: &str| msgs.iter().find(|m| m.topic == t).map(Msg::text);
    assert_eq!(value("porchlight/status").as_deref(), Some("online"));
    assert_eq!(value("porchlight/porch/online").as_deref(), Some("ON"));
    assert_eq!(value("porchlight/porch/motion").as_deref(), Some("OFF"));
    assert_eq!(value("porchlight/porch/fps").as_deref(), Some("15.0"));
    assert_eq!(
        value("porchlight/porch/bitrate").as_deref(),
        Some("2000000")
    );
    assert_eq!(
        value("porchlight/porch/storage").as_deref(),
        Some("123456789")
    );
    assert_eq!(
        value("porchlight/porch/oldest_footage_age").as_deref(),
        Some("86400")
    );
    assert_eq!(value("porchlight/hub/privacy").as_deref(), Some("OFF"));
    assert_eq!(
        value("porchlight/hub/pending_requests").as_deref(),
        Some("1")
    );
    assert_eq!(
        value("porchlight/hub/disk_free").as_deref(),
        Some("500000000000")
    );
    let attrs = msgs
        .iter()
        .find(|m| m.topic == "porchlight/hub/pending_requests/attributes")
        .unwrap()
        .json();
    assert_eq!(attrs["requests"][0]["id"], "req_1");
    // The garage's snapshot fails: logged, nothing published, still running.
    assert!(!msgs.iter().any(|m| m.topic == "porchlight/garage/snapshot"));
    assert!(log_text().contains("no snapshot"));
    assert!(!plugin.handle.is_finished());

    // Graceful stop: offline, retained, and the task ends.
    plugin.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), plugin.handle)
        .await
        .expect("stops in time")
        .unwrap();
    obs.wait_value("porchlight/status", "offline", 5).await;
    let after = Observer::connect(&broker).await;
    after.wait_value("porchlight/status", "offline", 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_round_trip_and_requests_fire_events() {
    let broker = Broker::plain();
    let host = FakeHost::new();
    let _plugin = start(config(&broker, "cmds"), host.clone());
    let obs = Observer::connect(&broker).await;
    wait_ready(&obs).await;

    obs.publish("porchlight/porch/sharing/set", b"on_request", false)
        .await;
    obs.wait_value("porchlight/porch/sharing", "on_request", 10)
        .await;
    assert!(host
        .commands()
        .contains(&"sharing porch on_request by mqtt".to_string()));

    obs.publish("porchlight/garage/recording/set", b"OFF", false)
        .await;
    obs.wait_value("porchlight/garage/recording", "OFF", 10)
        .await;

    obs.publish("porchlight/privacy/set", b"ON", false).await;
    obs.wait_value("porchlight/hub/privacy", "ON", 10).await;

    // A new police request: an event (not retained) with its details.
    let mut second = request("req_2");
    second.cameras = vec!["porch".into(), "garage".into()];
    host.pending.lock().unwrap().push(second.clone());
    host.emit(HostEvent::RequestCreated(second));
    obs.wait_for("police request event", 10, |m| {
        m.iter().any(|m| m.topic == "porchlight/requests/event")
    })
    .await;
    let event = obs.last("porchlight/requests/event").unwrap();
    assert!(!event.retain);
    let e = event.json();
    assert_eq!(e["event_type"], "police_request");
    for key in [
        "agency",
        "case_id",
        "incident_type",
        "window_from",
        "window_to",
        "cameras",
        "expires",
        "id",
    ] {
        assert!(e.get(key).is_some(), "event has {key}: {e}");
    }
    assert_eq!(e["id"], "req_2");
    assert_eq!(e["cameras"], json!(["porch", "garage"]));

    // Approve one by id, deny the other with a reason.
    obs.publish("porchlight/requests/approve/set", b"req_1", false)
        .await;
    obs.publish(
        "porchlight/requests/deny/set",
        br#"{"id": "req_2", "reason": "no case number I recognise"}"#,
        false,
    )
    .await;
    obs.wait_value("porchlight/hub/pending_requests", "0", 10)
        .await;
    let commands = host.commands();
    assert!(
        commands.contains(&"approve req_1 by mqtt".to_string()),
        "{commands:?}"
    );
    assert!(
        commands.contains(&"deny req_2 (no case number I recognise) by mqtt".to_string()),
        "{commands:?}"
    );
    obs.wait_for("empty pending list", 10, |m| {
        m.iter()
            .rev()
            .find(|m| m.topic == "porchlight/hub/pending_requests/attributes")
            .is_some_and(|m| m.json()["requests"] == json!([]))
    })
    .await;

    // Already answered: rejected before the daemon, true state again.
    let before = obs.count("porchlight/hub/pending_requests");
    let n_commands = host.commands().len();
    obs.publish("porchlight/requests/approve/set", b"req_1", false)
        .await;
    obs.wait_for("state republished after a stale id", 10, |m| {
        m.iter()
            .filter(|m| m.topic == "porchlight/hub/pending_requests")
            .count()
            > before
    })
    .await;
    assert_eq!(host.commands().len(), n_commands);
    assert!(log_text().contains("no pending request `req_1`"));

    // The daemon refuses: warned, and the select goes back to the truth.
    obs.publish("porchlight/porch/sharing/set", b"emergency_live", false)
        .await;
    obs.wait_for("refusal", 10, |_| {
        log_text().contains("command refused by the daemon")
    })
    .await;
    assert!(host
        .commands()
        .contains(&"sharing porch emergency_live by mqtt".to_string()));
    obs.wait_value("porchlight/porch/sharing", "on_request", 10)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_birth_resends_discovery() {
    let broker = Broker::plain();
    let host = FakeHost::new();
    let _plugin = start(config(&broker, "birth"), host);
    let obs = Observer::connect(&broker).await;
    wait_ready(&obs).await;
    let n = expected_entities().len();
    obs.wait_for("discovery", 10, |m| configs(m).len() >= n)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    obs.clear();
    // HA's will: nothing to do.
    obs.publish("homeassistant/status", b"offline", false).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(configs(&obs.all()).is_empty());
    // HA's birth: every config again.
    obs.publish("homeassistant/status", b"online", false).await;
    obs.wait_for("discovery again after HA's birth", 10, |m| {
        configs(m).len() >= n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_broker_down_at_start_and_restart() {
    let mut broker = Broker::plain();
    broker.kill();
    let host = FakeHost::new();
    let plugin = start(config(&broker, "restart"), host.clone());
    // Broker down at start: the plugin waits and retries.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!plugin.handle.is_finished());
    broker.start();
    let obs = Observer::connect(&broker).await;
    wait_ready(&obs).await;
    drop(obs);

    // Restart mid-run (no persistence: the broker forgets everything).
    broker.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    host.state.lock().unwrap().1[0].sharing = "off".into();
    broker.start();
    let obs = Observer::connect(&broker).await;
    obs.wait_value("porchlight/status", "online", 40).await;
    obs.wait_value("porchlight/porch/sharing", "off", 10).await;
    obs.wait_for("discovery after the restart", 10, |m| {
        m.iter()
            .any(|m| m.topic == config_topic("select", "camera_porch_sharing"))
    })
    .await;
    // Commands work on the new connection (subscriptions made again).
    obs.publish("porchlight/privacy/set", b"ON", false).await;
    obs.wait_value("porchlight/hub/privacy", "ON", 10).await;
    assert!(host
        .commands()
        .contains(&"privacy true by mqtt".to_string()));

    // The Last Will: the plugin vanishes without a goodbye.
    plugin.handle.abort();
    obs.wait_value("porchlight/status", "offline", 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_password_and_a_wrong_password_is_retried() {
    let broker = Broker::tls("porchlight", "correct horse");
    let tls = broker.tls.as_ref().unwrap();
    let host = FakeHost::new();
    let good = MqttConfig {
        tls: Some(MqttTls {
            ca_file: tls.ca.clone(),
            client_cert: None,
        }),
        username: Some("porchlight".into()),
        password: Some("correct horse".into()),
        ..config(&broker, "tls-good")
    };
    let bad = MqttConfig {
        password: Some("wrong".into()),
        client_id: "tls-bad".into(),
        base_topic: "badlight".into(),
        ..good.clone()
    };
    let _good = start(good, host.clone());
    let obs = Observer::connect(&broker).await;
    wait_ready(&obs).await;

    let bad = start(bad, host.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let refusals = log_text()
            .lines()
            .filter(|l| l.contains("refused the connection"))
            .count();
        if refusals >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "wrong password not retried; log:\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!bad.handle.is_finished(), "a wrong password is not fatal");
    assert!(
        !obs.all().iter().any(|m| m.topic.starts_with("badlight/")),
        "nothing from the refused client"
    );
    assert!(
        !log_text().contains("wrong\""),
        "the password is not logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_command_topic_is_rejected_and_state_republished() {
    let broker = Broker::plain();
    let host = FakeHost::new();
    let obs = Observer::connect(&broker).await;
    // A well-formed command left retained on the broker: the plugin gets it
    // when it subscribes (and would again on every reconnect): refused.
    obs.publish("porchlight/privacy/set", b"ON", true).await;
    let _plugin = start(config(&broker, "garbage"), host.clone());
    wait_ready(&obs).await;

    let long = vec![b'A'; 50_000];
    let garbage: Vec<&[u8]> = vec![
        b"",
        b"on",
        b"ON ",
        b"1",
        b"true",
        b"\xff\xfe\x00",
        b"{",
        b"{\"id\": 5}",
        b"{\"id\": \"req_1\", \"extra\": 1}",
        b"req 1",
        b"PUBLIC",
        b"emergency",
        &long,
    ];
    let topics = [
        "porchlight/porch/sharing/set",
        "porchlight/porch/recording/set",
        "porchlight/privacy/set",
        "porchlight/requests/approve/set",
        "porchlight/requests/deny/set",
        // A camera that does not exist, with payloads that would be valid.
        "porchlight/attic/sharing/set",
        "porchlight/attic/recording/set",
    ];
    let before = obs.count("porchlight/porch/sharing");
    for topic in topics {
        for payload in &garbage {
            obs.publish(topic, payload, false).await;
        }
    }
    obs.publish("porchlight/attic/sharing/set", b"off", false)
        .await;
    obs.publish("porchlight/attic/recording/set", b"ON", false)
        .await;
    let sent = topics.len() * garbage.len() + 2;
    obs.wait_for("the true state after each rejection", 20, |m| {
        m.iter()
            .filter(|m| m.topic == "porchlight/porch/sharing")
            .count()
            >= before + sent
    })
    .await;
    assert!(host.commands().is_empty(), "{:?}", host.commands());
    assert_eq!(
        obs.last("porchlight/porch/sharing").unwrap().text(),
        "registered"
    );
    assert_eq!(obs.last("porchlight/hub/privacy").unwrap().text(), "OFF");
    let log = log_text();
    for needle in [
        "topic=porchlight/porch/sharing/set",
        "no pending request `emergency`",
        "expected one of off",
        "expected `ON` or `OFF`",
        "is not a request id",
        "unknown camera `attic`",
        "retained message",
    ] {
        assert!(log.contains(needle), "log names `{needle}`");
    }
    // Clear the retained command so it does not linger.
    obs.publish("porchlight/privacy/set", b"", true).await;
}
