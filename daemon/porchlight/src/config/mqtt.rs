//! `[mqtt]`: Home Assistant over MQTT. Absent or `enabled = false`: no
//! MQTT at all. Passwords come from `password_file`, the environment
//! (`PORCHLIGHT_MQTT_PASSWORD`) or, discouraged, inline.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::secret::Secret;
use super::sharing::ErrorAt;
use super::ConfigError;

pub const PASSWORD_ENV: &str = "PORCHLIGHT_MQTT_PASSWORD";

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqtt {
    pub enabled: Option<bool>,
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub ca_file: Option<Spanned<String>>,
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<Spanned<String>>,
    pub client_id: Option<Spanned<String>>,
    pub base_topic: Option<Spanned<String>>,
    pub discovery_prefix: Option<Spanned<String>>,
}

/// TLS to the broker: its CA, and our certificate when it asks for one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttTlsConfig {
    pub ca_file: PathBuf,
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

#[derive(Clone, Debug)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub tls: Option<MqttTlsConfig>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub client_id: String,
    pub base_topic: String,
    pub discovery_prefix: String,
}

pub(super) fn validate_mqtt(
    raw: Option<RawMqtt>,
    base_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    error: ErrorAt,
) -> Result<Option<MqttConfig>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let resolve = |path: &str| {
        let path = PathBuf::from(path);
        match base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path,
        }
    };
    let host = raw.host.ok_or_else(|| {
        error(
            "mqtt.host".into(),
            None,
            "is required (the broker's name or address), or set `enabled = false`".into(),
        )
    })?;
    if host.get_ref().trim().is_empty() || host.get_ref().contains(char::is_whitespace) {
        return Err(error(
            "mqtt.host".into(),
            Some(host.span()),
            format!("`{}` is not a host name or address", host.get_ref()),
        ));
    }
    let tls = match (&raw.ca_file, &raw.client_cert, &raw.client_key) {
        (None, None, None) => None,
        (None, Some(span), _) | (None, None, Some(span)) => {
            return Err(error(
                "mqtt.ca_file".into(),
                Some(span.span()),
                "TLS needs `ca_file` (the broker's CA) too".into(),
            ))
        }
        (Some(ca), cert, key) => {
            let client_cert = match (cert, key) {
                (Some(c), Some(k)) => Some((resolve(c.get_ref()), resolve(k.get_ref()))),
                (None, None) => None,
                (Some(c), None) => {
                    return Err(error(
                        "mqtt.client_key".into(),
                        Some(c.span()),
                        "`client_cert` needs `client_key`".into(),
                    ))
                }
                (None, Some(k)) => {
                    return Err(error(
                        "mqtt.client_cert".into(),
                        Some(k.span()),
                        "`client_key` needs `client_cert`".into(),
                    ))
                }
            };
            Some(MqttTlsConfig {
                ca_file: resolve(ca.get_ref()),
                client_cert,
            })
        }
    };
    let port = match raw.port {
        Some(p) if !(1..=65535).contains(p.get_ref()) => {
            return Err(error(
                "mqtt.port".into(),
                Some(p.span()),
                format!("{} is not a port (1-65535)", p.get_ref()),
            ))
        }
        Some(p) => *p.get_ref() as u16,
        None if tls.is_some() => 8883,
        None => 1883,
    };
    let password = match (raw.password, raw.password_file) {
        (Some(_), Some(file)) => {
            return Err(error(
                "mqtt.password_file".into(),
                Some(file.span()),
                "set either `password` or `password_file`, not both".into(),
            ))
        }
        (Some(inline), None) => Some(inline),
        (None, Some(file)) => {
            let path = resolve(file.get_ref());
            let text = std::fs::read_to_string(&path).map_err(|e| {
                error(
                    "mqtt.password_file".into(),
                    Some(file.span()),
                    format!("cannot read password file {}: {e}", path.display()),
                )
            })?;
            Some(Secret::new(text.trim_end_matches(['\r', '\n']).to_string()))
        }
        (None, None) => env(PASSWORD_ENV).map(Secret::new),
    };
    let topic = |key: &str, value: Option<Spanned<String>>, default: &str| {
        let Some(value) = value else {
            return Ok(default.to_string());
        };
        let text = value.get_ref();
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'/')
            && !text.starts_with('/')
            && !text.ends_with('/');
        if ok {
            Ok(text.clone())
        } else {
            Err(error(
                format!("mqtt.{key}"),
                Some(value.span()),
                format!("`{text}` must be 1-64 of a-z, A-Z, 0-9, `_`, `-`, `/` (no wildcards, no leading or trailing `/`)"),
            ))
        }
    };
    let base_topic = topic("base_topic", raw.base_topic, "porchlight")?;
    let discovery_prefix = topic("discovery_prefix", raw.discovery_prefix, "homeassistant")?;
    let client_id = match raw.client_id {
        Some(id) if id.get_ref().is_empty() || id.get_ref().len() > 64 => {
            return Err(error(
                "mqtt.client_id".into(),
                Some(id.span()),
                "must be 1-64 characters".into(),
            ))
        }
        Some(id) => id.into_inner(),
        None => format!("porchlight-{}", crate::evidence::device_name()),
    };
    Ok(Some(MqttConfig {
        host: host.into_inner(),
        port,
        tls,
        username: raw.username,
        password,
        client_id,
        base_topic,
        discovery_prefix,
    }))
}
