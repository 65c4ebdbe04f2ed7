//! What arrives on the Home Assistant command topics (plugins/porchlight-mqtt):
//! the input is a topic line, a newline, then the payload bytes.
//!
//! Beyond "no panic": every accepted command is within the plugin's rules
//! (known camera, a real sharing level, exact ON/OFF, bounded request ids and
//! deny reasons), and the payload an owner's UI would send for that command
//! parses back to the same command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porchlight_mqtt::fuzzing::{
    parse, Command, Incoming, Topics, DEFAULT_DENY_REASON, MAX_ID_CHARS, MAX_REASON_CHARS,
};
use porchlight_plugin_api::SHARING_LEVELS;

const CAMERAS: [&str; 2] = ["porch", "back-yard"];

fuzz_target!(|data: &[u8]| {
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(topic) = std::str::from_utf8(topic) else {
        return;
    };
    let topics = Topics::new("porchlight", "homeassistant");
    let is_camera = |c: &str| CAMERAS.contains(&c);
    let Ok(Incoming::Command(command)) = parse(&topics, topic, payload, is_camera) else {
        return;
    };
    check(&command);
    let (topic, payload) = encode(&topics, &command);
    assert_eq!(
        parse(&topics, &topic, payload.as_bytes(), is_camera),
        Ok(Incoming::Command(command.clone())),
        "{topic} {payload}"
    );
});

fn check_id(id: &str) {
    assert!(!id.is_empty() && id.len() <= MAX_ID_CHARS, "{id:?}");
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')));
}

fn check(command: &Command) {
    match command {
        Command::Sharing { camera, level } => {
            assert!(CAMERAS.contains(&camera.as_str()));
            assert!(SHARING_LEVELS.contains(&level.as_str()), "{level:?}");
        }
        Command::Recording { camera, .. } => assert!(CAMERAS.contains(&camera.as_str())),
        Command::Privacy(_) => {}
        Command::Approve { id } => check_id(id),
        Command::Deny { id, reason } => {
            check_id(id);
            assert!(!reason.is_empty() && reason.trim() == reason, "{reason:?}");
            assert!(reason.chars().count() <= MAX_REASON_CHARS.max(DEFAULT_DENY_REASON.len()));
            assert!(!reason.chars().any(char::is_control), "{reason:?}");
        }
        Command::EndLiveShares { camera } => {
            if let Some(camera) = camera {
                assert!(CAMERAS.contains(&camera.as_str()), "{camera:?}");
            }
        }
    }
}

/// The topic and payload that say `command`.
fn encode(topics: &Topics, command: &Command) -> (String, String) {
    let on_off = |on: bool| if on { "ON" } else { "OFF" }.to_string();
    match command {
        Command::Sharing { camera, level } => (topics.camera_set(camera, "sharing"), level.clone()),
        Command::Recording { camera, on } => (topics.camera_set(camera, "recording"), on_off(*on)),
        Command::Privacy(on) => (topics.privacy_set(), on_off(*on)),
        Command::Approve { id } => (topics.approve_set(), id.clone()),
        Command::Deny { id, reason } => (
            topics.deny_set(),
            serde_json::json!({ "id": id, "reason": reason }).to_string(),
        ),
        Command::EndLiveShares { camera } => (
            topics.end_live_shares_set(),
            camera.clone().unwrap_or_else(|| "ALL".into()),
        ),
    }
}
