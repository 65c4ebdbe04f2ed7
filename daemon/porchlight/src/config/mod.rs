//! The owner's configuration file: parsed strictly, validated once, then
//! handed to the rest of the daemon as plain typed values.
//!
//! Every error names the key path and the line, because a self-hoster editing
//! TOML over SSH needs to know exactly where the mistake is.

mod mqtt;
mod raw;
mod secret;
mod sharing;
pub mod units;

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use mqtt::{MqttConfig, MqttTlsConfig, PASSWORD_ENV as MQTT_PASSWORD_ENV};
pub use secret::Secret;
pub use sharing::{
    check_camera_clip, check_count, check_duration, check_outside_schedule, check_window_order,
    parse_uplink_url, schedule_window_from_text, CameraSharing, PolicyConfig, RegistryConfig,
    RelayConfig, UplinkTarget, MAX_CLIP_RANGE, MAX_RADIUS_M, MAX_REGISTRY_TEXT,
    MAX_REQUESTS_PER_AGENCY_PER_DAY, MAX_REQUESTS_PER_CASE, WINDOW_RANGE,
};
use units::{ByteSize, HumanDuration};

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub retention: RetentionConfig,
    pub storage: StorageConfig,
    pub export: ExportConfig,
    pub audit: AuditConfig,
    /// What police may see (see `crate::policy`).
    pub policy: PolicyConfig,
    /// The agency-facing relay: its listener and/or its uplink.
    pub relay: RelayConfig,
    /// Home Assistant over MQTT; `None`: off.
    pub mqtt: Option<MqttConfig>,
    /// Background ONVIF discovery; `None`: off (the default, so nothing is
    /// multicast unless the owner names the interfaces).
    pub discovery: Option<crate::onvif::discovery::DiscoveryConfig>,
    pub cameras: Vec<CameraConfig>,
}

/// The owner's audit log, kept apart from video retention.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// Entries older than this may be pruned (never less than a year).
    pub max_age: Duration,
}

#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// Longest time range one clip or evidence package may cover.
    pub max_clip: Duration,
    /// NTP server ("host" or "host:port") the clock is measured against at
    /// each evidence export; the kernel's own sync status is always recorded.
    pub time_server: Option<String>,
}

#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub bind: SocketAddr,
    /// With no owner account yet and a non-loopback `bind`, start anyway
    /// and print a one-time setup token (the first account is made in the
    /// browser with it) instead of refusing to start.
    pub setup_token: bool,
}

/// Global retention: per-camera defaults plus the disk-wide free-space reserve.
#[derive(Clone, Debug)]
pub struct RetentionConfig {
    pub defaults: RetentionLimits,
    /// Keep at least this much of the data disk free, deleting the oldest
    /// footage of any camera when needed.
    pub min_free: ByteSize,
}

/// Limits that apply to one camera (all of its streams together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionLimits {
    pub max_bytes: Option<ByteSize>,
    pub max_age: Option<HumanDuration>,
}

#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// Roughly how long each segment file covers before a new one starts.
    pub segment_duration: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// Which of a camera's streams a recording belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKind {
    Main,
    Sub,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Main => "main",
            StreamKind::Sub => "sub",
        }
    }
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a camera's password came from, shown (never the password itself)
/// by `check-config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    None,
    Inline,
    File(PathBuf),
    Environment(String),
}

/// Camera names appear in URLs, file names and metrics: 1-64 of a-z, 0-9,
/// `_` and `-`, so a name from a request can never be a path.
pub fn is_valid_camera_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[derive(Clone, Debug)]
pub struct CameraConfig {
    pub name: String,
    pub url: url::Url,
    pub sub_url: Option<url::Url>,
    /// The camera's ONVIF device service (`http://…/onvif/device_service`),
    /// for motion and tamper events; same login as the stream.
    pub onvif: Option<url::Url>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_source: PasswordSource,
    pub transport: Transport,
    pub streams: Vec<StreamKind>,
    pub audio: bool,
    pub enabled: bool,
    pub retention: RetentionLimits,
    /// Police sharing: level, location, schedule, audio.
    pub sharing: CameraSharing,
}

impl CameraConfig {
    /// The RTSP URL of one of this camera's streams.
    pub fn stream_url(&self, kind: StreamKind) -> Option<&url::Url> {
        match kind {
            StreamKind::Main => Some(&self.url),
            StreamKind::Sub => self.sub_url.as_ref(),
        }
    }

    /// The environment variable that may hold this camera's password.
    pub fn password_env_var(name: &str) -> String {
        format!(
            "PORCHLIGHT_CAMERA_{}_PASSWORD",
            name.to_ascii_uppercase().replace('-', "_")
        )
    }
}

/// A configuration problem, located by key path and line.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub key: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
        } else if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Character offsets to 1-based line numbers, for error messages.
pub(crate) fn line_of(source: &str, offset: usize) -> usize {
    source
        .get(..offset.min(source.len()))
        .map(|prefix| prefix.matches('\n').count() + 1)
        .unwrap_or(1)
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_path_buf()),
            key: None,
            line: None,
            message: format!("cannot read config file: {e}"),
        })?;
        Config::parse(&text, path.parent()).map_err(|mut e| {
            e.file = Some(path.to_path_buf());
            e
        })
    }

    /// Parses config text; relative `password_file` paths resolve against
    /// `base_dir` (the config file's directory).
    pub fn parse(text: &str, base_dir: Option<&Path>) -> Result<Config, ConfigError> {
        parse_with_env(text, base_dir, &|name| std::env::var(name).ok())
    }

    /// The effective configuration as TOML, with secrets masked, for
    /// `porchlight check-config`.
    pub fn to_masked_toml(&self) -> String {
        raw::render_effective(self)
    }
}

/// [`Config::parse`] with the environment lookup given (tests, fuzzing).
pub(crate) fn parse_with_env(
    text: &str,
    base_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let raw = raw::parse(text)?;
    validate(raw, text, base_dir, env)
}

fn validate(
    raw: raw::RawConfig,
    text: &str,
    base_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let error = |key: String, span: Option<std::ops::Range<usize>>, message: String| ConfigError {
        file: None,
        key: Some(key),
        line: span.map(|s| line_of(text, s.start)),
        message,
    };

    let data_dir = PathBuf::from(raw.data_dir.get_ref());
    if data_dir.as_os_str().is_empty() {
        return Err(error(
            "data_dir".into(),
            Some(raw.data_dir.span()),
            "must not be empty".into(),
        ));
    }

    let http = HttpConfig {
        bind: raw
            .http
            .bind
            .map(|b| *b.get_ref())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        setup_token: raw.http.setup_token.unwrap_or(false),
    };

    let retention = RetentionConfig {
        defaults: RetentionLimits {
            max_bytes: raw.retention.max_bytes,
            max_age: raw.retention.max_age,
        },
        min_free: raw.retention.min_free.unwrap_or(ByteSize(5_000_000_000)),
    };

    let segment_duration = raw
        .storage
        .segment_duration
        .map(|d| (d.get_ref().0, d.span()))
        .unwrap_or((Duration::from_secs(60), 0..0));
    if !(Duration::from_secs(2)..=Duration::from_secs(600)).contains(&segment_duration.0) {
        return Err(error(
            "storage.segment_duration".into(),
            Some(segment_duration.1),
            "must be between 2s and 10m".into(),
        ));
    }
    let storage = StorageConfig {
        segment_duration: segment_duration.0,
    };

    let max_clip = match raw.export.max_clip {
        Some(max) if max.get_ref().0 < Duration::from_secs(1) => {
            return Err(error(
                "export.max_clip".into(),
                Some(max.span()),
                "must be at least 1s".into(),
            ))
        }
        Some(max) => max.get_ref().0,
        None => Duration::from_secs(12 * 3600),
    };
    let time_server = match raw.export.time_server {
        Some(server) => {
            let text = server.get_ref().trim();
            if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == '/') {
                return Err(error(
                    "export.time_server".into(),
                    Some(server.span()),
                    format!("`{text}` is not a host or host:port (e.g. \"pool.ntp.org\")"),
                ));
            }
            Some(text.to_string())
        }
        None => None,
    };
    let export = ExportConfig {
        max_clip,
        time_server,
    };

    let audit = match raw.audit.max_age {
        Some(age) if age.get_ref().0 < crate::audit::MIN_RETENTION => {
            return Err(error(
                "audit.max_age".into(),
                Some(age.span()),
                format!(
                "`{}` is too short: the audit log is kept at least 365d (a year of who saw what)",
                age.get_ref()
            ),
            ))
        }
        Some(age) => AuditConfig {
            max_age: age.get_ref().0,
        },
        None => AuditConfig {
            max_age: crate::audit::DEFAULT_RETENTION,
        },
    };

    let policy = sharing::validate_policy(raw.policy, &error)?;
    let relay = sharing::validate_relay(raw.relay, http.bind, base_dir, &error)?;
    let mqtt = mqtt::validate_mqtt(raw.mqtt, base_dir, env, &error)?;
    let discovery = validate_discovery(raw.discovery, &error)?;

    let mut names = HashSet::new();
    let mut cameras = Vec::with_capacity(raw.cameras.len());
    for (i, mut cam) in raw.cameras.into_iter().enumerate() {
        let key = |field: &str| format!("cameras[{i}].{field}");
        let name = cam.name.get_ref().clone();
        if !is_valid_camera_name(&name) {
            return Err(error(
                key("name"),
                Some(cam.name.span()),
                format!(
                    "camera name `{name}` must be 1-64 characters of a-z, 0-9, `_` or `-` (it is used in URLs and metrics)"
                ),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(error(
                key("name"),
                Some(cam.name.span()),
                format!("duplicate camera name `{name}`: each camera needs a unique name"),
            ));
        }
        let url = parse_rtsp_url(cam.url.get_ref())
            .map_err(|m| error(key("url"), Some(cam.url.span()), m))?;
        let sub_url = match &cam.sub_url {
            Some(sub) => Some(
                parse_rtsp_url(sub.get_ref())
                    .map_err(|m| error(key("sub_url"), Some(sub.span()), m))?,
            ),
            None => None,
        };
        let onvif = match &cam.onvif {
            Some(text) => {
                let parsed = url::Url::parse(text.get_ref())
                    .ok()
                    .filter(|u| u.scheme() == "http" && u.host().is_some())
                    .ok_or_else(|| {
                        error(
                            key("onvif"),
                            Some(text.span()),
                            format!(
                                "`{}` is not an http:// ONVIF device service address (e.g. http://192.168.1.20/onvif/device_service)",
                                text.get_ref()
                            ),
                        )
                    })?;
                Some(parsed)
            }
            None => None,
        };

        let env_var = CameraConfig::password_env_var(&name);
        let (password, password_source) = match (&cam.password, &cam.password_file) {
            (Some(_), Some(file)) => {
                return Err(error(
                    key("password_file"),
                    Some(file.span()),
                    "set either `password` or `password_file`, not both".into(),
                ))
            }
            (Some(inline), None) => (Some(inline.clone()), PasswordSource::Inline),
            (None, Some(file)) => {
                let mut path = PathBuf::from(file.get_ref());
                if path.is_relative() {
                    if let Some(base) = base_dir {
                        path = base.join(path);
                    }
                }
                let secret = std::fs::read_to_string(&path).map_err(|e| {
                    error(
                        key("password_file"),
                        Some(file.span()),
                        format!("cannot read password file {}: {e}", path.display()),
                    )
                })?;
                let secret = secret.trim_end_matches(['\r', '\n']).to_string();
                (Some(Secret::new(secret)), PasswordSource::File(path))
            }
            (None, None) => match env(&env_var) {
                Some(value) => (
                    Some(Secret::new(value)),
                    PasswordSource::Environment(env_var.clone()),
                ),
                None => (None, PasswordSource::None),
            },
        };
        if password.is_some() && cam.username.is_none() && url.username().is_empty() {
            return Err(error(
                key("username"),
                Some(cam.name.span()),
                "a password is set but no `username`".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(error(
                key("url"),
                Some(cam.url.span()),
                "put credentials in `username` and `password_file`, not in the URL (URLs end up in logs)".into(),
            ));
        }

        let streams = match &cam.streams {
            None => vec![StreamKind::Main],
            Some(list) => {
                let mut kinds = Vec::new();
                for entry in list.get_ref() {
                    let kind = match entry.as_str() {
                        "main" => StreamKind::Main,
                        "sub" => StreamKind::Sub,
                        other => {
                            return Err(error(
                                key("streams"),
                                Some(list.span()),
                                format!("unknown stream `{other}` (expected \"main\" or \"sub\")"),
                            ))
                        }
                    };
                    if kind == StreamKind::Sub && sub_url.is_none() {
                        return Err(error(
                            key("streams"),
                            Some(list.span()),
                            "\"sub\" is listed but the camera has no `sub_url`".into(),
                        ));
                    }
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                if kinds.is_empty() {
                    return Err(error(
                        key("streams"),
                        Some(list.span()),
                        "list at least one stream to record (\"main\" and/or \"sub\")".into(),
                    ));
                }
                kinds
            }
        };

        let sharing = sharing::validate_camera_sharing(i, &mut cam, &error)?;
        let overrides = cam.retention.unwrap_or_default();
        cameras.push(CameraConfig {
            name,
            url,
            sub_url,
            onvif,
            username: cam.username,
            password,
            password_source,
            transport: cam.transport.unwrap_or(Transport::Tcp),
            streams,
            audio: cam.audio.unwrap_or(true),
            enabled: cam.enabled.unwrap_or(true),
            retention: RetentionLimits {
                max_bytes: overrides.max_bytes.or(retention.defaults.max_bytes),
                max_age: overrides.max_age.or(retention.defaults.max_age),
            },
            sharing,
        });
    }

    Ok(Config {
        data_dir,
        http,
        retention,
        storage,
        export,
        audit,
        policy,
        relay,
        mqtt,
        discovery,
        cameras,
    })
}

/// `[discovery]`: interfaces must be named (multicast goes only there), and
/// the probe interval and timeout must be sane. Disabled counts as absent.
fn validate_discovery(
    raw: Option<toml::Spanned<crate::onvif::discovery::DiscoveryConfig>>,
    error: &dyn Fn(String, Option<std::ops::Range<usize>>, String) -> ConfigError,
) -> Result<Option<crate::onvif::discovery::DiscoveryConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let span = raw.span();
    let discovery = raw.into_inner();
    if !discovery.enabled {
        return Ok(None);
    }
    if discovery.interfaces.iter().all(|i| i.trim().is_empty()) {
        return Err(error(
            "discovery.interfaces".into(),
            Some(span),
            "name the interfaces (or their IPv4 addresses) to search on, e.g. [\"eth0\"]: discovery multicasts only where you say".into(),
        ));
    }
    if !(Duration::from_secs(10)..=Duration::from_secs(86_400)).contains(&discovery.interval.0) {
        return Err(error(
            "discovery.interval".into(),
            Some(span),
            format!("`{}` must be between 10s and 1d", discovery.interval),
        ));
    }
    if !(Duration::from_millis(200)..=Duration::from_secs(30)).contains(&discovery.probe_timeout.0)
    {
        return Err(error(
            "discovery.probe_timeout".into(),
            Some(span),
            format!(
                "`{}` must be between 200ms and 30s",
                discovery.probe_timeout
            ),
        ));
    }
    Ok(Some(discovery))
}

pub(crate) fn parse_rtsp_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "rtsp" | "rtsps") {
        return Err(format!(
            "`{text}` must be an rtsp:// URL (got scheme `{}`)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests;
