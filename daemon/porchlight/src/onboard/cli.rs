//! `porchlight cameras discovered|add`: the owner onboards from a shell,
//! through the running daemon's owner API (discovery lives in the daemon).

use anyhow::anyhow;
use serde_json::{json, Value};

use crate::config::Config;
use crate::owner_client::call_if_running;

/// What the owner asked for.
pub enum CamerasAction {
    Discovered,
    Add {
        endpoint: String,
        name: String,
        username: Option<String>,
        password: Option<String>,
        main_profile: Option<String>,
        sub_profile: Option<String>,
    },
}

/// Runs `action` against the daemon; returns its JSON answer.
pub fn run(config: &Config, action: CamerasAction) -> anyhow::Result<Value> {
    let (method, path, body) = match action {
        CamerasAction::Discovered => ("GET", "/api/discovery".to_string(), None),
        CamerasAction::Add {
            endpoint,
            name,
            username,
            password,
            main_profile,
            sub_profile,
        } => (
            "POST",
            format!("/api/discovery/{}/add", encode_segment(&endpoint)),
            Some(json!({
                "name": name,
                "username": username,
                "password": password,
                "main_profile": main_profile,
                "sub_profile": sub_profile,
            })),
        ),
    };
    call_if_running(config, method, &path, body.as_ref())?.ok_or_else(|| {
        anyhow!(
            "the daemon is not running at http.bind = {}: discovery and adding cameras happen in the daemon",
            config.http.bind
        )
    })
}

/// Percent-encodes what a path segment may not hold as is.
fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The discovered devices as a table.
pub fn print_discovered(answer: &Value) {
    if answer["enabled"] != json!(true) {
        println!("background discovery is off (add a [discovery] section with `interfaces` to the config)");
    }
    let devices = answer["devices"].as_array().cloned().unwrap_or_default();
    if devices.is_empty() {
        println!("no ONVIF devices seen yet");
    }
    for d in devices {
        let text = |k: &str| d[k].as_str().unwrap_or("-").to_string();
        let state = match d["camera"].as_str() {
            Some(camera) => format!("camera `{camera}`"),
            None => "pending".into(),
        };
        println!("{}  [{state}]", text("endpoint"));
        println!(
            "  name: {}  hardware: {}  location: {}",
            text("name"),
            text("hardware"),
            text("location")
        );
        if d["manufacturer"].is_string() {
            println!(
                "  make: {}  model: {}  serial: {}",
                text("manufacturer"),
                text("model"),
                text("serial")
            );
        }
        for x in d["xaddrs"].as_array().into_iter().flatten() {
            println!("  onvif: {}", x.as_str().unwrap_or_default());
        }
        println!(
            "  first seen {}, last seen {}{}",
            text("first_seen"),
            text("last_seen"),
            if d["gone"] == json!(true) {
                " (said Bye)"
            } else {
                ""
            }
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoint_references_stay_readable_in_paths() {
        assert_eq!(
            super::encode_segment("urn:uuid:6e0c8f2a-1d3b"),
            "urn:uuid:6e0c8f2a-1d3b"
        );
        assert_eq!(super::encode_segment("a b/c"), "a%20b%2Fc");
    }
}
