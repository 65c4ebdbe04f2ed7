//! The owner's TOML config, parsed and validated as `porchlight` does it.
//!
//! Beyond "no panic": whatever validation accepts is within the documented
//! limits; every error names a key or a line; and the effective config that
//! `check-config` prints is itself a valid config that renders the same way
//! again (so what the owner is shown is what the daemon runs).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use porchlight::config::{is_valid_camera_name, Config, StreamKind};
use porchlight::fuzzing::parse_config;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match parse_config(text, None) {
        Ok(config) => config,
        Err(e) => {
            assert!(
                e.key.is_some() || e.line.is_some(),
                "an error that points nowhere: {e}"
            );
            assert!(!e.message.is_empty());
            return;
        }
    };
    check_limits(&config);

    // The effective config is a config (once the "unlimited" shown for
    // humans is left out, as the docs say), and rendering is a fixed point
    // from the second round on (masked passwords become inline placeholders).
    let shown = as_config(&config.to_masked_toml());
    let again = parse_config(&shown, None)
        .unwrap_or_else(|e| panic!("check-config output does not parse: {e}\n{shown}"));
    check_limits(&again);
    assert_eq!(config.cameras.len(), again.cameras.len());
    for (a, b) in config.cameras.iter().zip(&again.cameras) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.url, b.url);
        assert_eq!(a.streams, b.streams);
        assert_eq!(a.sharing, b.sharing, "camera {}", a.name);
        assert_eq!(a.retention, b.retention, "camera {}", a.name);
    }
    assert_eq!(config.policy.max_window, again.policy.max_window);
    assert_eq!(config.policy.min_window, again.policy.min_window);
    assert_eq!(
        config.storage.segment_duration,
        again.storage.segment_duration
    );
    assert_eq!(config.export.max_clip, again.export.max_clip);
    let second = as_config(&again.to_masked_toml());
    let third = parse_config(&second, None)
        .unwrap_or_else(|e| panic!("second rendering does not parse: {e}\n{second}"))
        .to_masked_toml();
    assert_eq!(second, as_config(&third), "rendering is not stable");
});

/// `check-config`'s rendering without the `"unlimited"` values (no key
/// means no limit); the rendering must be TOML.
fn as_config(rendered: &str) -> String {
    fn strip(table: &mut toml::Table) {
        table.retain(|_, v| v.as_str() != Some("unlimited"));
        for (_, value) in table.iter_mut() {
            match value {
                toml::Value::Table(t) => strip(t),
                toml::Value::Array(items) => items.iter_mut().for_each(|i| {
                    if let toml::Value::Table(t) = i {
                        strip(t)
                    }
                }),
                _ => {}
            }
        }
    }
    let mut table: toml::Table = toml::from_str(rendered)
        .unwrap_or_else(|e| panic!("check-config output is not TOML: {e}\n{rendered}"));
    strip(&mut table);
    toml::to_string(&table).expect("TOML renders")
}

/// What validation promises about an accepted config.
fn check_limits(c: &Config) {
    assert!(!c.data_dir.as_os_str().is_empty());
    let seg = c.storage.segment_duration;
    assert!(
        (2 * Duration::from_secs(1)..=10 * MINUTE).contains(&seg),
        "{seg:?}"
    );
    assert!(c.export.max_clip >= Duration::from_secs(1));
    assert!(c.audit.max_age >= 365 * DAY);
    let p = &c.policy;
    assert!(
        15 * MINUTE <= p.min_window && p.min_window <= p.max_window && p.max_window <= 12 * HOUR
    );
    assert!((1..=400).contains(&p.max_radius_m));
    assert!((1..=10).contains(&p.requests_per_case));
    assert!((1..=1000).contains(&p.requests_per_agency_per_day));
    assert!((MINUTE..=12 * HOUR).contains(&p.max_clip));
    for expiry in [p.approval_expiry, p.download_expiry] {
        assert!((MINUTE..=30 * DAY).contains(&expiry));
    }
    let mut names = std::collections::HashSet::new();
    for cam in &c.cameras {
        assert!(is_valid_camera_name(&cam.name), "{:?}", cam.name);
        assert!(names.insert(&cam.name), "duplicate camera {}", cam.name);
        for url in std::iter::once(&cam.url).chain(&cam.sub_url) {
            assert!(matches!(url.scheme(), "rtsp" | "rtsps"), "{url}");
            assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url}");
        }
        assert!(cam.url.username().is_empty() && cam.url.password().is_none());
        if let Some(onvif) = &cam.onvif {
            assert_eq!(onvif.scheme(), "http");
        }
        assert!(!cam.streams.is_empty());
        assert!(cam.streams.contains(&StreamKind::Main) || cam.sub_url.is_some());
        if cam.streams.contains(&StreamKind::Sub) {
            assert!(cam.sub_url.is_some());
        }
        if cam.password.is_some() {
            assert!(cam.username.is_some());
        }
        if let Some(max) = cam.sharing.max_clip {
            assert!(max >= MINUTE);
        }
        if cam.sharing.schedule.is_none() {
            assert_eq!(cam.sharing.outside_schedule.as_str(), "off");
        }
    }
}
