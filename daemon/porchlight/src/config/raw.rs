//! The config file exactly as written (serde structs), before validation,
//! and the masked rendering of the effective config.

use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::units::{ByteSize, HumanDuration};
use super::{line_of, Config, ConfigError, PasswordSource, Secret, Transport};

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
    pub cameras: Vec<RawCamera>,
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
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<Spanned<String>>,
    pub transport: Option<Transport>,
    pub streams: Option<Spanned<Vec<String>>>,
    pub audio: Option<bool>,
    pub enabled: Option<bool>,
    pub retention: Option<RawCameraRetention>,
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
    for cam in &config.cameras {
        let _ = writeln!(out, "\n[[cameras]]");
        let _ = writeln!(out, "name = {}", q(&cam.name));
        let _ = writeln!(out, "url = {}", q(cam.url.as_str()));
        if let Some(sub) = &cam.sub_url {
            let _ = writeln!(out, "sub_url = {}", q(sub.as_str()));
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
    }
    out
}
