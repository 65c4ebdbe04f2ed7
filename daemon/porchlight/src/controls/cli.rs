//! `porchlight sharing show|set`: the sharing settings through the running
//! daemon's owner API (with its local CLI token), so a change from the
//! shell is checked, saved, audited and announced like one from the page.

use anyhow::{anyhow, bail};
use serde_json::{json, Map, Value};

use super::sharing_settings::WindowText;
use crate::config::Config;

/// What `porchlight sharing set` changes; `None`: left as it is.
#[derive(Clone, Debug, Default)]
pub struct SetArgs {
    /// The camera whose settings change; without one, `max_clip` is the
    /// device-wide limit.
    pub camera: Option<String>,
    pub level: Option<String>,
    /// Windows as `"mon-fri 22:00-06:00"` (days optional: every day).
    pub schedule: Vec<String>,
    /// Clear the schedule: the level applies at all times.
    pub always: bool,
    pub outside_schedule: Option<String>,
    pub max_clip: Option<String>,
    pub audio: Option<bool>,
    pub requests_per_case: Option<i64>,
    pub requests_per_agency_per_day: Option<i64>,
    pub max_window: Option<String>,
    pub max_radius_m: Option<i64>,
}

/// Parses one window as the CLI and `schedule_text` write it:
/// `[DAYS ]FROM-TO`, days comma-separated (`mon,wed` or `mon-fri`).
pub fn parse_window(text: &str) -> Result<WindowText, String> {
    let text = text.trim();
    let (days, times) = match text.rsplit_once(char::is_whitespace) {
        Some((days, times)) => (days.trim(), times),
        None => ("", text),
    };
    let (from, to) = times
        .split_once('-')
        .ok_or_else(|| format!("`{text}` is not a window such as \"mon-fri 22:00-06:00\""))?;
    Ok(WindowText {
        days: days
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(String::from)
            .collect(),
        from: from.to_string(),
        to: to.to_string(),
    })
}

/// The owner API calls for `args`: the camera's, then the limits'.
fn calls(args: &SetArgs) -> anyhow::Result<Vec<(String, Value)>> {
    let mut camera = Map::new();
    let mut limits = Map::new();
    if args.always && !args.schedule.is_empty() {
        bail!("--always clears the schedule: give it or --schedule, not both");
    }
    if !args.schedule.is_empty() || args.always {
        let windows = args
            .schedule
            .iter()
            .map(|w| parse_window(w))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("--schedule: {e}"))?;
        camera.insert("schedule".into(), json!(windows));
    }
    let put = |map: &mut Map<String, Value>, key: &str, value: Option<Value>| {
        if let Some(value) = value {
            map.insert(key.into(), value);
        }
    };
    put(&mut camera, "level", args.level.clone().map(Value::from));
    put(
        &mut camera,
        "outside_schedule",
        args.outside_schedule.clone().map(Value::from),
    );
    put(&mut camera, "audio_to_police", args.audio.map(Value::from));
    let clip = args.max_clip.clone().map(Value::from);
    if args.camera.is_some() {
        put(&mut camera, "max_clip", clip);
    } else {
        put(&mut limits, "max_clip", clip);
    }
    put(
        &mut limits,
        "requests_per_case",
        args.requests_per_case.map(Value::from),
    );
    put(
        &mut limits,
        "requests_per_agency_per_day",
        args.requests_per_agency_per_day.map(Value::from),
    );
    put(
        &mut limits,
        "max_window",
        args.max_window.clone().map(Value::from),
    );
    put(
        &mut limits,
        "max_radius_m",
        args.max_radius_m.map(Value::from),
    );
    let mut calls = Vec::new();
    match &args.camera {
        Some(name)
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            bail!("--camera `{name}` is not a camera name (letters, digits, `_` and `-`)")
        }
        Some(name) => {
            if camera.is_empty() && limits.is_empty() {
                bail!("nothing to change for `{name}`: give --schedule, --always, --outside, --max-clip, --audio or --level");
            }
            if !camera.is_empty() {
                calls.push((
                    format!("/api/cameras/{name}/sharing-settings"),
                    Value::Object(camera),
                ));
            }
        }
        None if !camera.is_empty() => {
            bail!("--schedule, --always, --outside, --audio and --level need --camera NAME")
        }
        None if limits.is_empty() => {
            bail!("nothing to change: see `porchlight sharing set --help`")
        }
        None => {}
    }
    if !limits.is_empty() {
        calls.push(("/api/policy/limits".into(), Value::Object(limits)));
    }
    Ok(calls)
}

fn call(config: &Config, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    crate::owner_client::call_if_running(config, method, path, body)?.ok_or_else(|| {
        anyhow!(
            "the daemon is not running (nothing answers at http.bind = {}): sharing settings are changed through it, so the change is checked and audited",
            config.http.bind
        )
    })
}

/// `porchlight sharing show`: `GET /api/sharing`.
pub fn show(config: &Config) -> anyhow::Result<Value> {
    call(config, "GET", "/api/sharing", None)
}

/// `porchlight sharing set`: the changes in `args`; answers with the
/// settings as they then stand.
pub fn set(config: &Config, args: &SetArgs) -> anyhow::Result<Value> {
    let mut last = Value::Null;
    for (path, body) in calls(args)? {
        last = call(config, "PUT", &path, Some(&body))?;
    }
    Ok(last)
}

/// The settings as text for a terminal.
pub fn render(view: &Value) -> String {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), String::from);
    let mut out = format!(
        "privacy: {}   time zone: {}\n",
        if view["privacy"] == true { "on" } else { "off" },
        text(&view["timezone"])
    );
    for c in view["cameras"].as_array().into_iter().flatten() {
        let schedule: Vec<String> = c["schedule_text"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        out.push_str(&format!(
            "{}: {} (now {}), schedule: {}, outside: {}, max clip: {}, audio: {}\n",
            text(&c["camera"]),
            text(&c["level"]),
            text(&c["effective_level"]),
            if schedule.is_empty() {
                "always".to_string()
            } else {
                schedule.join("; ")
            },
            text(&c["outside_schedule"]),
            c["max_clip"].as_str().unwrap_or("device's"),
            if c["audio_to_police"] == true {
                "on"
            } else {
                "off"
            },
        ));
    }
    let l = &view["limits"];
    out.push_str(&format!(
        "limits: max clip {}, {} request(s) per case, {} per agency per day, window {}..{}, radius {} m",
        text(&l["max_clip"]),
        text(&l["requests_per_case"]),
        text(&l["requests_per_agency_per_day"]),
        text(&l["min_window"]),
        text(&l["max_window"]),
        text(&l["max_radius_m"]),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_as_the_schedule_text_reads() {
        let w = parse_window("mon,tue 22:00-06:00").expect("window");
        assert_eq!(w.days, vec!["mon", "tue"]);
        assert_eq!((w.from.as_str(), w.to.as_str()), ("22:00", "06:00"));
        let w = parse_window("mon-fri 08:00-18:00").expect("window");
        assert_eq!(w.days, vec!["mon-fri"]);
        let w = parse_window("00:00-24:00").expect("window");
        assert!(w.days.is_empty());
        assert!(parse_window("mon 22:00").is_err());
    }

    #[test]
    fn arguments_split_into_camera_and_limit_calls() {
        let args = SetArgs {
            camera: Some("porch".into()),
            max_clip: Some("20m".into()),
            requests_per_case: Some(1),
            ..SetArgs::default()
        };
        let made = calls(&args).expect("calls");
        assert_eq!(made.len(), 2);
        assert_eq!(made[0].1, json!({ "max_clip": "20m" }));
        assert_eq!(made[1].1, json!({ "requests_per_case": 1 }));
        let device = SetArgs {
            max_clip: Some("2h".into()),
            ..SetArgs::default()
        };
        assert_eq!(
            calls_of(&device),
            vec![(
                "/api/policy/limits".to_string(),
                json!({ "max_clip": "2h" })
            )]
        );
        let no_camera = SetArgs {
            always: true,
            ..SetArgs::default()
        };
        assert!(calls(&no_camera).is_err());
        assert!(calls(&SetArgs::default()).is_err());
    }

    fn calls_of(args: &SetArgs) -> Vec<(String, Value)> {
        calls(args).expect("calls")
    }
}
