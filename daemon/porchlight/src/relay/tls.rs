//! TLS for the relay: on the listener the box presents its device
//! certificate and accepts only clients whose certificate chains to the
//! agency CA pinned at enrolment (a client without one fails the handshake;
//! no HTTP is spoken). On the uplink the roles of TLS swap: the box is the
//! client, presents the same device certificate, and accepts only a relay
//! whose *server* certificate chains to that pinned CA and names the host
//! it dialled.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use x509_cert::der::Decode;

/// Why the relay's TLS could not be set up; names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("agency CA file {path}: {error}")]
    AgencyCa { path: String, error: String },
    #[error("device key: {0}")]
    DeviceKey(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The rustls server config for the relay listener.
pub fn server_config(
    agency_ca: &Path,
    device_cert_der: &[u8],
    device_key_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_error = |error: String| TlsSetupError::AgencyCa {
        path: agency_ca.display().to_string(),
        error,
    };
    let roots = pinned_roots(agency_ca)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ca_error(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(device_key_pem.as_bytes())
        .map_err(|e| TlsSetupError::DeviceKey(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsSetupError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![CertificateDer::from(device_cert_der.to_vec())], key)
        .map_err(|e| TlsSetupError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The pinned agency CA file as a root store.
fn pinned_roots(agency_ca: &Path) -> Result<rustls::RootCertStore, TlsSetupError> {
    let ca_error = |error: String| TlsSetupError::AgencyCa {
        path: agency_ca.display().to_string(),
        error,
    };
    let ca_pem = std::fs::read(agency_ca).map_err(|e| ca_error(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        let cert = cert.map_err(|e| ca_error(format!("not PEM certificates: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| ca_error(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ca_error("holds no certificate".into()));
    }
    Ok(roots)
}

/// The rustls client config for the uplink: TLS 1.3, the relay's server
/// certificate verified (chain and name, RFC 6125) against the pinned agency
/// CA only (never the system roots), the device certificate as client
/// certificate, and ALPN `http/1.1` for the `h2c-reverse` upgrade that
/// follows (HTTP/2 starts only after it, with the roles reversed).
pub fn uplink_client_config(
    agency_ca: &Path,
    device_cert_der: &[u8],
    device_key_pem: &str,
) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = pinned_roots(agency_ca)?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsSetupError::AgencyCa {
        path: agency_ca.display().to_string(),
        error: e.to_string(),
    })?;
    let key = PrivateKeyDer::from_pem_slice(device_key_pem.as_bytes())
        .map_err(|e| TlsSetupError::DeviceKey(e.to_string()))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsSetupError::Config(e.to_string()))?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(vec![CertificateDer::from(device_cert_der.to_vec())], key)
        .map_err(|e| TlsSetupError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The pinned agency CAs, by subject, with the Organization each vouches
/// for (when it names one).
#[derive(Clone, Debug, Default)]
pub struct PinnedCas(Vec<(Vec<u8>, Option<String>)>);

impl PinnedCas {
    pub fn load(agency_ca: &Path) -> Result<PinnedCas, TlsSetupError> {
        let pem = std::fs::read(agency_ca).map_err(|e| TlsSetupError::AgencyCa {
            path: agency_ca.display().to_string(),
            error: e.to_string(),
        })?;
        let mut cas = Vec::new();
        for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
            if let Ok(parsed) = x509_cert::Certificate::from_der(cert.as_ref()) {
                use x509_cert::der::Encode;
                let subject = parsed.tbs_certificate.subject.to_der().unwrap_or_default();
                cas.push((subject, organization(&parsed)));
            }
        }
        Ok(PinnedCas(cas))
    }

    /// The agency a verified client certificate speaks for: its subject's
    /// Organization (O), else its Common Name (CN). When the CA that issued
    /// it names an Organization, the certificate must name the same one:
    /// one agency's CA cannot vouch for another agency.
    pub fn agency_of(&self, certificate_der: &[u8]) -> Option<String> {
        use x509_cert::der::Encode;
        let name = agency_name(certificate_der)?;
        let cert = x509_cert::Certificate::from_der(certificate_der).ok()?;
        let issuer = cert.tbs_certificate.issuer.to_der().ok()?;
        match self.0.iter().find(|(subject, _)| *subject == issuer) {
            Some((_, Some(ca_org))) if *ca_org != name => None,
            _ => Some(name),
        }
    }
}

const ORGANIZATION: x509_cert::der::oid::ObjectIdentifier =
    x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.4.10");
const COMMON_NAME: x509_cert::der::oid::ObjectIdentifier =
    x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");

/// The first `oid` attribute of `name` (UTF8String or PrintableString),
/// trimmed; `None` when it is missing or blank.
fn subject_attr(
    name: &x509_cert::name::Name,
    oid: x509_cert::der::oid::ObjectIdentifier,
) -> Option<String> {
    use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
    name.0
        .iter()
        .find_map(|rdn| {
            rdn.0.iter().find(|atv| atv.oid == oid).and_then(|atv| {
                Utf8StringRef::try_from(&atv.value)
                    .map(|s| s.as_str().to_string())
                    .or_else(|_| {
                        PrintableStringRef::try_from(&atv.value).map(|s| s.as_str().to_string())
                    })
                    .ok()
            })
        })
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// A CA's Organization (O): the agency it vouches for, if it names one.
fn organization(cert: &x509_cert::Certificate) -> Option<String> {
    subject_attr(&cert.tbs_certificate.subject, ORGANIZATION)
}

/// The agency a verified client certificate names: its subject's
/// Organization (O), else its Common Name (CN). See [`PinnedCas::agency_of`].
pub fn agency_name(certificate_der: &[u8]) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(certificate_der).ok()?;
    let subject = &cert.tbs_certificate.subject;
    subject_attr(subject, ORGANIZATION).or_else(|| subject_attr(subject, COMMON_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(org: Option<&str>) -> (rcgen::Issuer<'static, rcgen::KeyPair>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Agency CA");
        if let Some(org) = org {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, org);
        }
        let cert = params.self_signed(&key).expect("self-signed");
        let der = cert.der().to_vec();
        (rcgen::Issuer::new(params, key), der)
    }

    fn leaf(issuer: &rcgen::Issuer<'static, rcgen::KeyPair>, org: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, org);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Officer");
        params
            .signed_by(&key, issuer)
            .expect("signed")
            .der()
            .to_vec()
    }

    fn pinned(ca_der: &[u8]) -> PinnedCas {
        let cert = x509_cert::Certificate::from_der(ca_der).expect("ca");
        use x509_cert::der::Encode;
        PinnedCas(vec![(
            cert.tbs_certificate.subject.to_der().expect("subject"),
            organization(&cert),
        )])
    }

    #[test]
    fn an_agency_ca_vouches_only_for_its_own_agency() {
        let (issuer, der) = ca(Some("Dallas Police Department"));
        let cas = pinned(&der);
        assert_eq!(
            cas.agency_of(&leaf(&issuer, "Dallas Police Department"))
                .as_deref(),
            Some("Dallas Police Department")
        );
        assert_eq!(cas.agency_of(&leaf(&issuer, "Other PD")), None);
        // A relay CA that names no agency vouches for the names it signs.
        let (relay_issuer, relay_der) = ca(None);
        let relay = pinned(&relay_der);
        assert_eq!(
            relay.agency_of(&leaf(&relay_issuer, "Other PD")).as_deref(),
            Some("Other PD")
        );
    }

    #[test]
    fn a_stray_space_in_the_ca_organization_does_not_refuse_its_own_agency() {
        let (issuer, der) = ca(Some("Dallas Police Department "));
        let cas = pinned(&der);
        assert_eq!(
            cas.agency_of(&leaf(&issuer, " Dallas Police Department"))
                .as_deref(),
            Some("Dallas Police Department")
        );
        assert_eq!(cas.agency_of(&leaf(&issuer, "Other PD")), None);
        // A blank Organization names no agency: the CA vouches for any.
        let (blank_issuer, blank_der) = ca(Some("  "));
        assert_eq!(
            pinned(&blank_der)
                .agency_of(&leaf(&blank_issuer, "Other PD"))
                .as_deref(),
            Some("Other PD")
        );
    }
}
