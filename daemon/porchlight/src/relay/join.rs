//! Joining the relay program (again) from the owner API (`POST
//! /api/relay/join/preview`, `POST /api/relay/join`): the owner pastes the
//! agency CA the police program published, compares its fingerprint, and
//! confirms. The files are then pinned by the same
//! [`super::enrolment::enroll_with_registry`] that `porchlight relay enroll`
//! runs; the caller restarts the daemon so the relay starts.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::Decode;

use super::membership::Membership;
use crate::config::Config;

/// One certificate the owner pasted, as they compare it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaCertificate {
    pub subject: String,
    /// What the box calls the agency (Organization, else Common Name).
    pub agency: String,
    pub not_before: String,
    pub not_after: String,
    /// SHA-256 of the DER certificate, lowercase hex.
    pub sha256: String,
}

/// Why joining is refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The owner's input is wrong (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The box's state or config does not allow it (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// The certificates of `pem` (`what` names the field in errors), each a
/// CA certificate valid now.
pub fn describe(pem: &str, what: &str, now_us: i64) -> Result<Vec<CaCertificate>, JoinError> {
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(JoinError::Invalid(format!(
            "`{what}` is not a PEM certificate (expected a block starting with -----BEGIN CERTIFICATE-----)"
        )));
    }
    let mut cas = Vec::new();
    for (index, cert) in CertificateDer::pem_slice_iter(pem.as_bytes()).enumerate() {
        let n = index + 1;
        let cert = cert.map_err(|e| {
            JoinError::Invalid(format!("`{what}`: certificate {n} is not PEM: {e}"))
        })?;
        cas.push(describe_one(cert.as_ref(), what, n, now_us)?);
    }
    if cas.is_empty() {
        return Err(JoinError::Invalid(format!("`{what}` holds no certificate")));
    }
    Ok(cas)
}

fn describe_one(der: &[u8], what: &str, n: usize, now_us: i64) -> Result<CaCertificate, JoinError> {
    let invalid = |why: String| JoinError::Invalid(format!("`{what}`: certificate {n} {why}"));
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| invalid(format!("is not an X.509 certificate: {e}")))?;
    let tbs = &cert.tbs_certificate;
    let subject = tbs.subject.to_string();
    let is_ca = tbs
        .extensions
        .iter()
        .flatten()
        .filter(|ext| ext.extn_id == x509_cert::ext::pkix::BasicConstraints::OID)
        .any(|ext| {
            x509_cert::ext::pkix::BasicConstraints::from_der(ext.extn_value.as_bytes())
                .is_ok_and(|bc| bc.ca)
        });
    if !is_ca {
        return Err(invalid(format!(
            "({subject}) is not a CA certificate (no basicConstraints CA:TRUE): paste the agency's CA, not a client or server certificate"
        )));
    }
    let to_us = |t: &x509_cert::time::Time| t.to_unix_duration().as_micros() as i64;
    let (not_before, not_after) = (
        to_us(&tbs.validity.not_before),
        to_us(&tbs.validity.not_after),
    );
    let format = crate::time::format_utc_us;
    if now_us > not_after {
        return Err(invalid(format!(
            "({subject}) expired on {}",
            format(not_after)
        )));
    }
    if now_us < not_before {
        return Err(invalid(format!(
            "({subject}) is not valid before {}",
            format(not_before)
        )));
    }
    Ok(CaCertificate {
        agency: super::tls::agency_name(der).unwrap_or_else(|| "(unnamed)".into()),
        subject,
        not_before: format(not_before),
        not_after: format(not_after),
        sha256: crate::evidence::certificate_fingerprint(der),
    })
}

/// A fingerprint as the owner may type it: any case, with or without colons.
pub fn normalize_fingerprint(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// What the owner joins with.
pub struct JoinRequest<'a> {
    pub agency_ca_pem: &'a str,
    pub registry_ca_pem: Option<&'a str>,
    /// The agency CA's SHA-256 the owner compared.
    pub confirm_fingerprint: &'a str,
}

/// What joining did.
#[derive(Clone, Debug, Serialize)]
pub struct JoinReport {
    pub agency_cas: Vec<CaCertificate>,
    pub registry_cas: Vec<CaCertificate>,
    /// The registry the daemon registers with after the restart.
    pub registry: Option<String>,
    /// Always true: the relay starts after the daemon's in-place restart.
    pub restarting: bool,
}

/// Checks `request` against the config and the box's state, then pins the
/// CAs with [`super::enrolment::enroll_with_registry`]. Blocking (files).
pub fn join(
    config: &Config,
    membership: &Membership,
    request: &JoinRequest<'_>,
) -> Result<JoinReport, JoinError> {
    let now = crate::time::now_utc_us();
    if config.relay.listen.is_none() && config.relay.uplink.is_none() {
        return Err(JoinError::Conflict(
            "the relay is not configured: add `[relay] listen = \"ADDRESS:PORT\"` (or `[relay] uplink`) to the config file, then try again".into(),
        ));
    }
    if config.relay.agency_ca.is_none() {
        return Err(JoinError::Conflict(
            "add `[relay] agency_ca = \"PATH\"` to the config file (where the pinned agency CA is kept), then try again".into(),
        ));
    }
    let agency_cas = describe(request.agency_ca_pem, "agency_ca_pem", now)?;
    let registry_cas = match request.registry_ca_pem {
        Some(pem) if !pem.trim().is_empty() => {
            if config.relay.registry.is_none() {
                return Err(JoinError::Invalid(
                    "`registry_ca_pem` given, but the config has no `[relay] registry_url`".into(),
                ));
            }
            describe(pem, "registry_ca_pem", now)?
        }
        _ => Vec::new(),
    };
    if let Some(registry) = &config.relay.registry {
        if registry_cas.is_empty() && !registry.ca.is_file() {
            return Err(JoinError::Invalid(format!(
                "`registry_ca_pem` is needed: the registry's CA is not pinned ({} does not exist)",
                registry.ca.display()
            )));
        }
        let leaving =
            super::registry::state::load(&config.data_dir)?.is_some_and(|r| r.leaving.is_some());
        if leaving {
            return Err(JoinError::Conflict(
                "this box is still leaving the relay (waiting for the registry to confirm the deletion); try again once it has".into(),
            ));
        }
    }
    // The fingerprint the owner compared must cover everything pinned.
    if agency_cas.len() != 1 {
        return Err(JoinError::Invalid(format!(
            "`agency_ca_pem` holds {} certificates: paste one agency CA (the fingerprint you confirm must cover everything this box will trust; `porchlight relay enroll` takes bundles)",
            agency_cas.len()
        )));
    }
    let confirmed = normalize_fingerprint(request.confirm_fingerprint);
    if confirmed != agency_cas[0].sha256 {
        return Err(JoinError::Invalid(format!(
            "`confirm_fingerprint` ({}) is not the agency CA's SHA-256 fingerprint ({}): compare it again",
            request.confirm_fingerprint, agency_cas[0].sha256
        )));
    }
    if already_member_with(config, membership, &agency_cas) {
        return Err(JoinError::Conflict(
            "this box is already in the relay program with this agency CA".into(),
        ));
    }

    let agency_file = TempPem::write(&config.data_dir, "agency", request.agency_ca_pem)?;
    let registry_file = match registry_cas.is_empty() {
        true => None,
        false => Some(TempPem::write(
            &config.data_dir,
            "registry",
            request.registry_ca_pem.unwrap_or_default(),
        )?),
    };
    let (_, registration) = super::enrolment::enroll_with_registry(
        config,
        Some(&agency_file.0),
        registry_file.as_ref().map(|f| f.0.as_path()),
        None,
    )?;
    Ok(JoinReport {
        agency_cas,
        registry_cas,
        registry: registration.map(|r| r.registry_url),
        restarting: true,
    })
}

/// In the program now (not left), with exactly these agency CAs pinned.
fn already_member_with(config: &Config, membership: &Membership, cas: &[CaCertificate]) -> bool {
    if !membership.is_member() || super::registry::state::left_path(&config.data_dir).exists() {
        return false;
    }
    let Some(pinned) = &config.relay.agency_ca else {
        return false;
    };
    let Ok(pinned) = super::enrolment::read_cas(pinned) else {
        return false;
    };
    let pinned: Vec<&str> = pinned.iter().map(|c| c.sha256.as_str()).collect();
    let new: Vec<&str> = cas.iter().map(|c| c.sha256.as_str()).collect();
    pinned == new
}

/// A PEM the owner pasted, in the data dir until enrolment copied it.
struct TempPem(PathBuf);

impl TempPem {
    fn write(data_dir: &Path, name: &str, pem: &str) -> anyhow::Result<TempPem> {
        use anyhow::Context as _;
        let dir = data_dir.join("relay");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("join-{name}-{}.pem.tmp", crate::time::now_utc_us()));
        std::fs::write(&path, pem).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(TempPem(path))
    }
}

impl Drop for TempPem {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_of(params: rcgen::CertificateParams) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").pem()
    }

    fn ca_params() -> rcgen::CertificateParams {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Dallas PD");
        params
    }

    #[test]
    fn a_ca_is_described_with_subject_validity_and_fingerprint() {
        let pem = pem_of(ca_params());
        let cas = describe(&pem, "agency_ca_pem", crate::time::now_utc_us()).expect("a CA");
        assert_eq!(cas.len(), 1);
        assert_eq!(cas[0].agency, "Dallas PD");
        assert!(cas[0].subject.contains("O=Dallas PD"), "{}", cas[0].subject);
        assert_eq!(cas[0].sha256.len(), 64);
        assert_eq!(
            normalize_fingerprint(&cas[0].sha256.to_uppercase()),
            cas[0].sha256
        );
    }

    #[test]
    fn wrong_inputs_are_named() {
        let now = crate::time::now_utc_us();
        let err = describe("hello", "agency_ca_pem", now).expect_err("garbage");
        assert!(err.to_string().contains("not a PEM certificate"), "{err}");

        let mut leaf = ca_params();
        leaf.is_ca = rcgen::IsCa::ExplicitNoCa;
        let err = describe(&pem_of(leaf), "agency_ca_pem", now).expect_err("leaf");
        assert!(err.to_string().contains("not a CA certificate"), "{err}");

        let mut old = ca_params();
        old.not_before = rcgen::date_time_ymd(2001, 1, 1);
        old.not_after = rcgen::date_time_ymd(2002, 1, 1);
        let err = describe(&pem_of(old), "agency_ca_pem", now).expect_err("expired");
        assert!(err.to_string().contains("expired on 2002-01-01"), "{err}");

        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = describe(broken, "registry_ca_pem", now).expect_err("broken");
        assert!(err.to_string().contains("registry_ca_pem"), "{err}");
    }
}
