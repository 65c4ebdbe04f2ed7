//! Strict parsing of what arrives on the command topics. Anything that is
//! not exactly what the topic takes is an error naming the problem; nothing
//! here panics, whatever the bytes.

use porchlight_plugin_api::SHARING_LEVELS;
use serde::Deserialize;

use crate::topics::Topics;

/// The reason given to the daemon when a deny carries none.
pub const DEFAULT_DENY_REASON: &str = "denied from Home Assistant";
/// Longest deny reason accepted.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest request id accepted (the daemon's are `req_` + 20 hex digits).
pub const MAX_ID_CHARS: usize = 64;

/// An owner's command, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Sharing {
        camera: String,
        level: String,
    },
    Recording {
        camera: String,
        on: bool,
    },
    Privacy(bool),
    Approve {
        id: String,
    },
    Deny {
        id: String,
        reason: String,
    },
    /// End every live share (`None`) or one camera's.
    EndLiveShares {
        camera: Option<String>,
    },
}

/// What an incoming message is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A well-formed command for the Host.
    Command(Command),
    /// Home Assistant came online (birth message): re-send discovery.
    HaOnline,
    /// Nothing for us (another payload on the HA status topic, or a topic
    /// we did not subscribe to).
    Ignore,
}

/// Parses one message. `Err` names the problem (for the log).
pub fn parse(
    topics: &Topics,
    topic: &str,
    payload: &[u8],
    is_camera: impl Fn(&str) -> bool,
) -> Result<Incoming, String> {
    if topic == topics.ha_status() {
        return Ok(if payload == b"online" {
            Incoming::HaOnline
        } else {
            Incoming::Ignore
        });
    }
    let Some(rest) = topic
        .strip_prefix(topics.base.as_str())
        .and_then(|r| r.strip_prefix('/'))
    else {
        return Ok(Incoming::Ignore);
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let command = match parts.as_slice() {
        ["privacy", "set"] => Command::Privacy(on_off(payload)?),
        ["requests", "approve", "set"] => Command::Approve {
            id: parse_request(payload, false)?.0,
        },
        ["requests", "deny", "set"] => {
            let (id, reason) = parse_request(payload, true)?;
            Command::Deny {
                id,
                reason: reason.unwrap_or_else(|| DEFAULT_DENY_REASON.to_string()),
            }
        }
        ["live_shares", "end", "set"] => Command::EndLiveShares {
            camera: match payload {
                b"PRESS" | b"ALL" => None,
                name if is_camera(&String::from_utf8_lossy(name)) => {
                    Some(String::from_utf8_lossy(name).into_owned())
                }
                other => {
                    return Err(format!(
                        "expected `PRESS`, `ALL` or a camera name, got `{}`",
                        preview(other)
                    ))
                }
            },
        },
        [camera, leaf @ ("sharing" | "recording"), "set"] => {
            if !is_camera(camera) {
                return Err(format!("unknown camera `{}`", preview(camera.as_bytes())));
            }
            let camera = camera.to_string();
            if *leaf == "sharing" {
                Command::Sharing {
                    camera,
                    level: sharing_level(payload)?,
                }
            } else {
                Command::Recording {
                    camera,
                    on: on_off(payload)?,
                }
            }
        }
        _ => return Ok(Incoming::Ignore),
    };
    Ok(Incoming::Command(command))
}

fn on_off(payload: &[u8]) -> Result<bool, String> {
    match payload {
        b"ON" => Ok(true),
        b"OFF" => Ok(false),
        other => Err(format!("expected `ON` or `OFF`, got `{}`", preview(other))),
    }
}

fn sharing_level(payload: &[u8]) -> Result<String, String> {
    SHARING_LEVELS
        .iter()
        .find(|level| level.as_bytes() == payload)
        .map(|level| level.to_string())
        .ok_or_else(|| {
            format!(
                "expected one of {}, got `{}`",
                SHARING_LEVELS.join(", "),
                preview(payload)
            )
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestPayload {
    id: String,
    #[serde(default)]
    reason: Option<String>,
}

/// A request id alone, or `{"id": .., "reason": ..}` (`reason` for deny only).
fn parse_request(payload: &[u8], allow_reason: bool) -> Result<(String, Option<String>), String> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| format!("payload is not UTF-8: `{}`", preview(payload)))?;
    if text.starts_with('{') {
        let parsed: RequestPayload = serde_json::from_str(text).map_err(|e| {
            format!(
                "expected a request id or {}, got `{}` ({e})",
                if allow_reason {
                    r#"{"id": "...", "reason": "..."}"#
                } else {
                    r#"{"id": "..."}"#
                },
                preview(payload)
            )
        })?;
        let id = request_id(&parsed.id)?;
        let reason = match parsed.reason {
            None => None,
            Some(_) if !allow_reason => {
                return Err("`reason` is only taken by the deny topic".to_string())
            }
            Some(reason) => Some(deny_reason(&reason)?),
        };
        Ok((id, reason))
    } else {
        Ok((request_id(text)?, None))
    }
}

fn request_id(id: &str) -> Result<String, String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(id.to_string())
    } else {
        Err(format!(
            "`{}` is not a request id (1 to {MAX_ID_CHARS} of A-Z a-z 0-9 _ - .)",
            preview(id.as_bytes())
        ))
    }
}

fn deny_reason(reason: &str) -> Result<String, String> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err("`reason` is empty".to_string());
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(format!(
            "`reason` is longer than {MAX_REASON_CHARS} characters"
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err("`reason` has control characters".to_string());
    }
    Ok(reason.to_string())
}

/// At most 64 bytes of a payload, printable, for a log line.
pub(crate) fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let cut = &bytes[..bytes.len().min(MAX)];
    let mut s: String = String::from_utf8_lossy(cut).escape_debug().collect();
    if bytes.len() > MAX {
        s.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore};

    fn topics() -> Topics {
        Topics::new("porchlight", "homeassistant")
    }

    fn p(topic: &str, payload: &[u8]) -> Result<Incoming, String> {
        parse(&topics(), topic, payload, |c| c == "porch")
    }

    fn cmd(c: Command) -> Result<Incoming, String> {
        Ok(Incoming::Command(c))
    }

    #[test]
    fn well_formed_commands() {
        assert_eq!(
            p("porchlight/porch/sharing/set", b"on_request"),
            cmd(Command::Sharing {
                camera: "porch".into(),
                level: "on_request".into()
            })
        );
        assert_eq!(
            p("porchlight/porch/recording/set", b"OFF"),
            cmd(Command::Recording {
                camera: "porch".into(),
                on: false
            })
        );
        assert_eq!(
            p("porchlight/privacy/set", b"ON"),
            cmd(Command::Privacy(true))
        );
        assert_eq!(
            p("porchlight/requests/approve/set", b"req_0123abcd"),
            cmd(Command::Approve {
                id: "req_0123abcd".into()
            })
        );
        assert_eq!(
            p("porchlight/requests/approve/set", br#"{"id":"req_1"}"#),
            cmd(Command::Approve { id: "req_1".into() })
        );
        assert_eq!(
            p("porchlight/requests/deny/set", b"req_1"),
            cmd(Command::Deny {
                id: "req_1".into(),
                reason: DEFAULT_DENY_REASON.into()
            })
        );
        assert_eq!(
            p(
                "porchlight/requests/deny/set",
                br#"{"id":"req_1","reason":"  no warrant "}"#
            ),
            cmd(Command::Deny {
                id: "req_1".into(),
                reason: "no warrant".into()
            })
        );
        assert_eq!(p("homeassistant/status", b"online"), Ok(Incoming::HaOnline));
        assert_eq!(p("homeassistant/status", b"offline"), Ok(Incoming::Ignore));
        assert_eq!(p("elsewhere/privacy/set", b"ON"), Ok(Incoming::Ignore));
    }

    #[test]
    fn malformed_commands_are_named() {
        for (topic, payload, needle) in [
            (
                "porchlight/privacy/set",
                &b"on"[..],
                "expected `ON` or `OFF`",
            ),
            ("porchlight/privacy/set", b"ON ", "expected `ON` or `OFF`"),
            ("porchlight/privacy/set", b"", "expected `ON` or `OFF`"),
            (
                "porchlight/porch/sharing/set",
                b"public",
                "expected one of off",
            ),
            (
                "porchlight/garage/sharing/set",
                b"off",
                "unknown camera `garage`",
            ),
            (
                "porchlight/requests/approve/set",
                b"",
                "is not a request id",
            ),
            (
                "porchlight/requests/approve/set",
                b"a b",
                "is not a request id",
            ),
            ("porchlight/requests/approve/set", b"\xff\xfe", "not UTF-8"),
            (
                "porchlight/requests/approve/set",
                br#"{"id":"r","reason":"x"}"#,
                "only taken by the deny topic",
            ),
            (
                "porchlight/requests/deny/set",
                br#"{"id":1}"#,
                "expected a request id",
            ),
            (
                "porchlight/requests/deny/set",
                br#"{"id":"r","x":1}"#,
                "unknown field",
            ),
            (
                "porchlight/requests/deny/set",
                br#"{"id":"r","reason":" "}"#,
                "empty",
            ),
        ] {
            let err = p(topic, payload).expect_err(topic);
            assert!(err.contains(needle), "{topic}: {err}");
        }
        let long = "x".repeat(1000);
        let err = p("porchlight/requests/approve/set", long.as_bytes()).unwrap_err();
        assert!(err.len() < 200, "log line stays short: {err}");
    }

    /// Random bytes on random and real topics: never a panic, and garbage
    /// never parses as a command.
    #[test]
    fn fuzz_never_panics() {
        let mut rng = rand::rng();
        let real = [
            "porchlight/porch/sharing/set",
            "porchlight/porch/recording/set",
            "porchlight/privacy/set",
            "porchlight/requests/approve/set",
            "porchlight/requests/deny/set",
            "homeassistant/status",
        ];
        for i in 0..20_000 {
            let len = rng.random_range(0..200);
            let mut payload = vec![0u8; len];
            rng.fill_bytes(&mut payload);
            let topic = if i % 2 == 0 {
                real[i % real.len()].to_string()
            } else {
                let mut t = vec![0u8; rng.random_range(0..40)];
                rng.fill_bytes(&mut t);
                format!("porchlight/{}", String::from_utf8_lossy(&t))
            };
            if let Ok(Incoming::Command(c)) = p(&topic, &payload) {
                // Only an id-shaped random payload could get through.
                match c {
                    Command::Approve { id } | Command::Deny { id, .. } => {
                        assert!(request_id(&id).is_ok())
                    }
                    other => panic!("random bytes made a command: {other:?}"),
                }
            }
        }
    }
}
