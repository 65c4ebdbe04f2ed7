//! The config file exactly as written (serde structs), before validation,
//! and the masked rendering of the effective config.

use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::units::{ByteSize, HumanDuration};
use super::{line_of, CameraSharing, Config, ConfigError, PasswordSource, Secret, Transport};
use crate::policy::{SharingLevel, TimeOfDay, Weekdays};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub data_dir: Spanned<String>,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub retention: RawRetention,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub export: RawExport,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub relay: RawRelay,
    pub mqtt: Option<super::mqtt::RawMqtt>,
    /// `[discovery]`: background ONVIF discovery (absent: off).
    pub discovery: Option<Spanned<crate::onvif::discovery::DiscoveryConfig>>,
    #[serde(default)]
    pub cameras: Vec<RawCamera>,
}

/// `[policy]`: what police may see, for the whole device.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub privacy: Option<bool>,
    pub timezone: Option<Spanned<String>>,
    pub max_clip: Option<Spanned<HumanDuration>>,
    pub min_window: Option<Spanned<HumanDuration>>,
    pub max_window: Option<Spanned<HumanDuration>>,
    pub max_radius_m: Option<Spanned<u32>>,
    pub requests_per_case: Option<Spanned<u32>>,
    pub requests_per_agency_per_day: Option<Spanned<u32>>,
    pub approval_expiry: Option<Spanned<HumanDuration>>,
    pub download_expiry: Option<Spanned<HumanDuration>>,
    pub live_share_max: Option<Spanned<HumanDuration>>,
}

/// `[relay]`: the agency-facing HTTPS listener (absent: relay disabled).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelay {
    pub listen: Option<Spanned<SocketAddr>>,
    pub agency_ca: Option<Spanned<String>>,
    pub calls_per_minute: Option<Spanned<i64>>,
    pub registry_url: Option<Spanned<String>>,
    pub registry_ca: Option<Spanned<String>>,
    pub location_decimals: Option<Spanned<i64>>,
    pub contact_alias: Option<Spanned<String>>,
    pub uplink: Option<Spanned<String>>,
    pub uplink_retry_max: Option<Spanned<HumanDuration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocation {
    pub lat: f64,
    pub lon: f64,
}

/// One `schedule` entry of a camera: `{ days = "mon-fri", from = "22:00", to = "06:00" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScheduleWindow {
    pub days: Option<Weekdays>,
    pub from: Spanned<TimeOfDay>,
    pub to: TimeOfDay,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExport {
    pub max_clip: Option<Spanned<HumanDuration>>,
    pub time_server: Option<Spanned<String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub max_age: Option<Spanned<HumanDuration>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub bind: Option<Spanned<SocketAddr>>,
    pub setup_token: Option<bool>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    pub max_bytes: Option<ByteSize>,
    pub max_age: Option<HumanDuration>,
    pub min_free: Option<ByteSize>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub segment_duration: Option<Spanned<HumanDuration>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCameraRetention {
    pub max_bytes: Option<ByteSize>,
    pub max_age: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCamera {
    pub name: Spanned<String>,
    pub url: Spanned<String>,
    pub sub_url: Option<Spanned<String>>,
    pub onvif: Option<Spanned<String>>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<Spanned<String>>,
    pub transport: Option<Transport>,
    pub streams: Option<Spanned<Vec<String>>>,
    pub audio: Option<bool>,
    pub enabled: Option<bool>,
    pub retention: Option<RawCameraRetention>,
    pub sharing: Option<Spanned<SharingLevel>>,
    pub location: Option<Spanned<RawLocation>>,
    pub audio_to_police: Option<bool>,
    pub schedule: Option<Spanned<Vec<RawScheduleWindow>>>,
    pub outside_schedule: Option<Spanned<SharingLevel>>,
    pub max_clip_to_police: Option<Spanned<HumanDuration>>,
    pub direction: Option<Spanned<String>>,
    pub field_of_view: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for Transport {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            other => Err(serde::de::Error::custom(format!(
                "unknown transport `{other}` (expected \"tcp\" or \"udp\")"
            ))),
        }
    }
}

/// Parses TOML into the raw structs, turning serde's errors into ones that
/// carry the key path (`cameras[1].transport`) and the line.
pub(super) fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| toml_error(text, None, &e))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        // Spanned<T> shows up in the path as a private marker segment.
        let path = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let key = (path != ".").then_some(path);
        toml_error(text, key, e.inner())
    })
}

fn toml_error(text: &str, key: Option<String>, error: &toml::de::Error) -> ConfigError {
    ConfigError {
        file: None,
        key,
        line: error.span().map(|span| line_of(text, span.start)),
        message: error.message().trim().to_string(),
    }
}

/// Renders the effective config (defaults filled in) as TOML, secrets masked.
pub(super) fn render_effective(config: &Config) -> String {
    let mut out = String::new();
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let opt = |v: Option<String>| v.unwrap_or_else(|| "\"unlimited\"".into());
    let _ = writeln!(out, "data_dir = {}", q(&config.data_dir.to_string_lossy()));
    let _ = writeln!(out, "\n[http]\nbind = {}", q(&config.http.bind.to_string()));
    let _ = writeln!(out, "setup_token = {}", config.http.setup_token);
    let _ = writeln!(out, "\n[retention]");
    let _ = writeln!(
        out,
        "max_bytes = {}",
        opt(config
            .retention
            .defaults
            .max_bytes
            .map(|b| q(&b.to_string())))
    );
    let _ = writeln!(
        out,
        "max_age = {}",
        opt(config.retention.defaults.max_age.map(|d| q(&d.to_string())))
    );
    let _ = writeln!(
        out,
        "min_free = {}",
        q(&config.retention.min_free.to_string())
    );
    let _ = writeln!(
        out,
        "\n[storage]\nsegment_duration = {}",
        q(&HumanDuration(config.storage.segment_duration).to_string())
    );
    let _ = writeln!(
        out,
        "\n[export]\nmax_clip = {}",
        q(&HumanDuration(config.export.max_clip).to_string())
    );
    if let Some(server) = &config.export.time_server {
        let _ = writeln!(out, "time_server = {}", q(server));
    }
    let _ = writeln!(
        out,
        "\n[audit]\nmax_age = {}",
        q(&HumanDuration(config.audit.max_age).to_string())
    );
    render_policy(&mut out, config);
    render_mqtt(&mut out, config);
    render_discovery(&mut out, config);
    for cam in &config.cameras {
        let _ = writeln!(out, "\n[[cameras]]");
        let _ = writeln!(out, "name = {}", q(&cam.name));
        let _ = writeln!(out, "url = {}", q(cam.url.as_str()));
        if let Some(sub) = &cam.sub_url {
            let _ = writeln!(out, "sub_url = {}", q(sub.as_str()));
        }
        if let Some(onvif) = &cam.onvif {
            let _ = writeln!(out, "onvif = {}", q(onvif.as_str()));
        }
        if let Some(user) = &cam.username {
            let _ = writeln!(out, "username = {}", q(user));
        }
        let password = match &cam.password_source {
            PasswordSource::None => None,
            PasswordSource::Inline => Some("******** (inline)".to_string()),
            PasswordSource::File(path) => Some(format!("******** (from {})", path.display())),
            PasswordSource::Environment(var) => Some(format!("******** (from ${var})")),
        };
        if let Some(password) = password {
            let _ = writeln!(out, "password = {}", q(&password));
        }
        let transport = match cam.transport {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        };
        let _ = writeln!(out, "transport = {}", q(transport));
        let streams: Vec<String> = cam.streams.iter().map(|s| q(s.as_str())).collect();
        let _ = writeln!(out, "streams = [{}]", streams.join(", "));
        let _ = writeln!(out, "audio = {}", cam.audio);
        let _ = writeln!(out, "enabled = {}", cam.enabled);
        let _ = writeln!(
            out,
            "retention = {{ max_bytes = {}, max_age = {} }}",
            opt(cam.retention.max_bytes.map(|b| q(&b.to_string()))),
            opt(cam.retention.max_age.map(|d| q(&d.to_string())))
        );
        render_camera_sharing(&mut out, &cam.sharing);
    }
    out
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn render_policy(out: &mut String, config: &Config) {
    let p = &config.policy;
    let d = |d: std::time::Duration| quote(&HumanDuration(d).to_string());
    let _ = writeln!(out, "\n[policy]\nprivacy = {}", p.privacy);
    match (&p.timezone_name, p.timezone.iana_name()) {
        (Some(name), _) => {
            let _ = writeln!(out, "timezone = {}", quote(name));
        }
        (None, Some(system)) => {
            let _ = writeln!(out, "timezone = {}   # the system's", quote(system));
        }
        (None, None) => {
            let _ = writeln!(out, "# timezone: the system's (it has no IANA name)");
        }
    }
    let _ = writeln!(out, "max_clip = {}", d(p.max_clip));
    let _ = writeln!(out, "min_window = {}", d(p.min_window));
    let _ = writeln!(out, "max_window = {}", d(p.max_window));
    let _ = writeln!(out, "max_radius_m = {}", p.max_radius_m);
    let _ = writeln!(out, "requests_per_case = {}", p.requests_per_case);
    let _ = writeln!(
        out,
        "requests_per_agency_per_day = {}",
        p.requests_per_agency_per_day
    );
    let _ = writeln!(out, "approval_expiry = {}", d(p.approval_expiry));
    let _ = writeln!(out, "download_expiry = {}", d(p.download_expiry));
    let _ = writeln!(out, "live_share_max = {}", d(p.live_share_max));
    let _ = writeln!(out, "\n[relay]");
    match config.relay.listen {
        Some(listen) => {
            let _ = writeln!(out, "listen = {}", quote(&listen.to_string()));
        }
        None if config.relay.uplink.is_some() => {
            let _ = writeln!(
                out,
                "# listen: not set, no inbound relay port (uplink only)"
            );
        }
        None => {
            let _ = writeln!(out, "# listen: not set, the relay is disabled");
        }
    }
    if let Some(ca) = &config.relay.agency_ca {
        let _ = writeln!(out, "agency_ca = {}", quote(&ca.to_string_lossy()));
    }
    let _ = writeln!(out, "calls_per_minute = {}", config.relay.calls_per_minute);
    if let Some(registry) = &config.relay.registry {
        let _ = writeln!(out, "registry_url = {}", quote(registry.url.as_str()));
        let _ = writeln!(
            out,
            "registry_ca = {}",
            quote(&registry.ca.to_string_lossy())
        );
        let _ = writeln!(out, "location_decimals = {}", registry.location_decimals);
        if let Some(alias) = &registry.contact_alias {
            let _ = writeln!(out, "contact_alias = {}", quote(alias));
        }
    }
    if let Some(uplink) = &config.relay.uplink {
        let _ = writeln!(out, "uplink = {}", quote(uplink.url.as_str()));
        let _ = writeln!(
            out,
            "uplink_retry_max = {}",
            d(config.relay.uplink_retry_max)
        );
    }
}

fn render_camera_sharing(out: &mut String, sharing: &CameraSharing) {
    let _ = writeln!(out, "sharing = {}", quote(sharing.level.as_str()));
    if let Some(location) = sharing.location {
        let _ = writeln!(
            out,
            "location = {{ lat = {:?}, lon = {:?} }}",
            location.lat, location.lon
        );
    }
    let _ = writeln!(out, "audio_to_police = {}", sharing.audio_to_police);
    if let Some(schedule) = &sharing.schedule {
        let windows: Vec<String> = schedule
            .windows()
            .iter()
            .map(|w| {
                let days: Vec<String> = w.days().to_string().split(',').map(quote).collect();
                format!(
                    "{{ days = [{}], from = {}, to = {} }}",
                    days.join(", "),
                    quote(&w.start().to_string()),
                    quote(&w.end().to_string())
                )
            })
            .collect();
        let _ = writeln!(out, "schedule = [{}]", windows.join(", "));
        let _ = writeln!(
            out,
            "outside_schedule = {}",
            quote(sharing.outside_schedule.as_str())
        );
    }
    if let Some(max) = sharing.max_clip {
        let _ = writeln!(
            out,
            "max_clip_to_police = {}",
            quote(&HumanDuration(max).to_string())
        );
    }
    if let Some(direction) = &sharing.direction {
        let _ = writeln!(out, "direction = {}", quote(direction));
    }
    if let Some(fov) = &sharing.field_of_view {
        let _ = writeln!(out, "field_of_view = {}", quote(fov));
    }
}

fn render_mqtt(out: &mut String, config: &Config) {
    use std::fmt::Write;
    let Some(m) = &config.mqtt else {
        let _ = writeln!(out, "\n# [mqtt]: not set, Home Assistant over MQTT is off");
        return;
    };
    let _ = writeln!(
        out,
        "\n[mqtt]\nhost = {}\nport = {}",
        quote(&m.host),
        m.port
    );
    if let Some(tls) = &m.tls {
        let _ = writeln!(out, "ca_file = {}", quote(&tls.ca_file.to_string_lossy()));
        if let Some((cert, key)) = &tls.client_cert {
            let _ = writeln!(out, "client_cert = {}", quote(&cert.to_string_lossy()));
            let _ = writeln!(out, "client_key = {}", quote(&key.to_string_lossy()));
        }
    }
    if let Some(user) = &m.username {
        let _ = writeln!(out, "username = {}", quote(user));
    }
    if m.password.is_some() {
        let _ = writeln!(out, "password = {}", quote("********"));
    }
    let _ = writeln!(out, "client_id = {}", quote(&m.client_id));
    let _ = writeln!(out, "base_topic = {}", quote(&m.base_topic));
    let _ = writeln!(out, "discovery_prefix = {}", quote(&m.discovery_prefix));
}

fn render_discovery(out: &mut String, config: &Config) {
    let Some(d) = &config.discovery else {
        let _ = writeln!(
            out,
            "\n# [discovery]: not set, no background ONVIF discovery"
        );
        return;
    };
    let interfaces: Vec<String> = d.interfaces.iter().map(|i| quote(i)).collect();
    let _ = writeln!(
        out,
        "\n[discovery]\nenabled = {}\ninterfaces = [{}]\ninterval = {}\nprobe_timeout = {}",
        d.enabled,
        interfaces.join(", "),
        quote(&d.interval.to_string()),
        quote(&d.probe_timeout.to_string())
    );
}
