//! Enrolment: which agency CAs this box trusts for the relay, and where the
//! relay is. `porchlight relay enroll` pins an agency CA (copies it to
//! `[relay] agency_ca`); the daemon writes every change of the pinned set to
//! the audit log when it starts, so the owner can see whom it trusted when.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, AuditLog, Component, EventType, Identity, Outcome};
use crate::config::Config;
use crate::policy::Policy;

/// One pinned agency certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedCa {
    pub agency: String,
    pub sha256: String,
}

/// What the box is enrolled with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    pub relay_url: Option<String>,
    pub agency_cas: Vec<PinnedCa>,
}

fn enrolment_path(data_dir: &Path) -> PathBuf {
    data_dir.join("relay").join("enrolment.json")
}

/// The certificates of a PEM file, named and fingerprinted.
pub fn read_cas(path: &Path) -> anyhow::Result<Vec<PinnedCa>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut cas = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert =
            cert.map_err(|e| anyhow::anyhow!("{}: not PEM certificates: {e}", path.display()))?;
        cas.push(PinnedCa {
            agency: super::tls::agency_name(cert.as_ref()).unwrap_or_else(|| "(unnamed)".into()),
            sha256: crate::evidence::certificate_fingerprint(cert.as_ref()),
        });
    }
    if cas.is_empty() {
        anyhow::bail!("{} holds no certificate", path.display());
    }
    Ok(cas)
}

/// `porchlight relay enroll`: pins `agency_ca_file` (or the configured
/// file) and records the relay URL. The daemon applies it at its next start.
pub fn enroll(
    config: &Config,
    agency_ca_file: Option<&Path>,
    relay_url: Option<&str>,
) -> anyhow::Result<Enrolment> {
    enroll_with_registry(config, agency_ca_file, None, relay_url).map(|(e, _)| e)
}

/// [`enroll`], also pinning `registry_ca_file` (copied to `[relay]
/// registry_ca`) and, with `relay.registry_url` set, recording that the
/// daemon should register the chosen cameras there. Joining again after
/// leaving keeps the record of the last leave as `left-<time>.json`.
pub fn enroll_with_registry(
    config: &Config,
    agency_ca_file: Option<&Path>,
    registry_ca_file: Option<&Path>,
    relay_url: Option<&str>,
) -> anyhow::Result<(Enrolment, Option<super::registry::state::Registration>)> {
    if let Some(source) = registry_ca_file {
        let registry = config
            .relay
            .registry
            .as_ref()
            .context("--registry-ca needs `[relay] registry_url` in the config")?;
        read_cas(source)?;
        if source != registry.ca {
            if let Some(dir) = registry.ca.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::copy(source, &registry.ca).with_context(|| {
                format!(
                    "cannot copy {} to {}",
                    source.display(),
                    registry.ca.display()
                )
            })?;
        }
    }
    let enrolment = enroll_agency(config, agency_ca_file, relay_url)?;
    let left = super::registry::state::left_path(&config.data_dir);
    if left.exists() {
        let kept = left.with_file_name(format!("left-{}.json", crate::time::now_utc_us()));
        std::fs::rename(&left, &kept)
            .with_context(|| format!("cannot move {} aside", left.display()))?;
    }
    let registration = match &config.relay.registry {
        Some(_) => Some(super::registry::request_registration(config)?),
        None => None,
    };
    Ok((enrolment, registration))
}

fn enroll_agency(
    config: &Config,
    agency_ca_file: Option<&Path>,
    relay_url: Option<&str>,
) -> anyhow::Result<Enrolment> {
    let pinned_path = config.relay.agency_ca.as_ref().context(
        "set `[relay] agency_ca = \"PATH\"` in the config: where the pinned agency CA is kept",
    )?;
    if let Some(source) = agency_ca_file {
        let cas = read_cas(source)?;
        if source != pinned_path {
            if let Some(dir) = pinned_path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::copy(source, pinned_path).with_context(|| {
                format!(
                    "cannot copy {} to {}",
                    source.display(),
                    pinned_path.display()
                )
            })?;
        }
        drop(cas);
    }
    if let Some(url) = relay_url {
        let parsed = url::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
        if parsed.scheme() != "https" {
            anyhow::bail!("the relay URL must be https, not `{}`", parsed.scheme());
        }
    }
    let enrolment = Enrolment {
        relay_url: relay_url
            .map(str::to_string)
            .or_else(|| load(&config.data_dir).and_then(|e| e.relay_url)),
        agency_cas: read_cas(pinned_path)?,
    };
    let path = enrolment_path(&config.data_dir);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&enrolment)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(enrolment)
}

/// What `porchlight relay enroll` recorded, if it ran.
pub fn load(data_dir: &Path) -> Option<Enrolment> {
    let text = std::fs::read_to_string(enrolment_path(data_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// At start: if the pinned agency CAs differ from what the audit log last
/// recorded, records the new set (also catches a hand-edited PEM file).
pub async fn audit_pinned_cas(config: &Config, audit: &AuditLog) -> anyhow::Result<()> {
    let Some(pinned_path) = &config.relay.agency_ca else {
        return Ok(());
    };
    if !pinned_path.exists() && super::registry::state::left_path(&config.data_dir).exists() {
        // Wiped when the owner left; the leave is in the log already.
        return Ok(());
    }
    let current = Enrolment {
        relay_url: load(&config.data_dir).and_then(|e| e.relay_url),
        agency_cas: read_cas(pinned_path)?,
    };
    audit_if_changed(
        audit,
        &config.data_dir,
        "enrolment",
        EventType::Enrolment,
        serde_json::to_value(&current)?,
    )
    .await
}

/// At start, with the relay enabled (listener or uplink: the only ways the
/// policy reaches anyone): if the sharing policy in force (privacy switch, levels,
/// schedules, limits) differs from what the audit log last recorded, records
/// it, so every policy change is in the log even when made by editing the
/// config file.
pub async fn audit_policy(
    config: &Config,
    policy: &Policy,
    audit: &AuditLog,
) -> anyhow::Result<()> {
    if config.relay.listen.is_none() && config.relay.uplink.is_none() {
        return Ok(());
    }
    audit_if_changed(
        audit,
        &config.data_dir,
        "policy",
        EventType::PolicyChange,
        policy_summary(policy),
    )
    .await
}

/// After a change the owner made at run time (already logged): the
/// snapshot the start-up check compares with.
pub fn remember_policy(data_dir: &Path, policy: &Policy) -> std::io::Result<()> {
    let path = snapshot_path(data_dir, "policy");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&policy_summary(policy))?)
}

fn snapshot_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("relay").join(format!("audited-{name}.json"))
}

/// The policy as the owner reads it in the audit log.
fn policy_summary(p: &Policy) -> serde_json::Value {
    let cameras: Vec<serde_json::Value> = p
        .cameras
        .iter()
        .map(|c| {
            serde_json::json!({
                "camera": c.name,
                "level": c.level,
                "location": c.location,
                "schedule": format!("{:?}", c.schedule),
                "outside_schedule": c.outside_schedule,
                "audio_allowed": c.audio_allowed,
                "max_clip_s": c.max_clip.map(|d| d.as_secs()),
            })
        })
        .collect();
    serde_json::json!({
        "privacy": p.privacy,
        "timezone": p.timezone.iana_name(),
        "max_clip_s": p.max_clip.as_secs(),
        "limits": format!("{:?}", p.limits),
        "approval_expiry_s": p.approval_expiry.as_secs(),
        "download_expiry_s": p.download_expiry.as_secs(),
        "cameras": cameras,
    })
}

/// Appends an entry with the previous and new `value` when `value` differs
/// from the one last audited under `name` (kept in `<data_dir>/relay/`).
async fn audit_if_changed(
    audit: &AuditLog,
    data_dir: &Path,
    name: &str,
    event: EventType,
    value: serde_json::Value,
) -> anyhow::Result<()> {
    let recorded_path = snapshot_path(data_dir, name);
    let recorded: Option<serde_json::Value> = std::fs::read_to_string(&recorded_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if recorded.as_ref() == Some(&value) {
        return Ok(());
    }
    audit
        .append(
            AuditEvent::new(Component::Daemon, event, Identity::owner(None))
                .outcome(Outcome::ok())
                .details(serde_json::json!({ "previous": recorded, "now": value })),
        )
        .await?;
    if let Some(dir) = recorded_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&recorded_path, serde_json::to_string_pretty(&value)?)?;
    Ok(())
}
