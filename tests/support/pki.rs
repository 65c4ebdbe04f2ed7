//! A throwaway agency PKI for the relay tests, made with rcgen (ring).
//!
//! The relay listener trusts one file, `[relay] agency_ca`, and names the
//! agency after the client certificate's subject Organization (falling back
//! to its Common Name). To test that from the outside, the tests need an
//! agency CA, an officer's certificate under it, and the certificates an
//! attacker or a confused client would bring: one from an unrelated CA (even
//! naming the same agency), one that has expired, and one of another agency
//! under the same CA. [`TestPki::generate`] writes all of them as PEM files
//! into a directory (the daemon reads files) and keeps the PEM text and the
//! fingerprints (what enrolment pins) at hand.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// The agency the officer's certificate belongs to.
pub const AGENCY: &str = "Dallas Police Department";
/// Another agency whose certificate comes from the same CA.
pub const OTHER_AGENCY: &str = "Other PD";

/// `agency-ca.pem`: what `[relay] agency_ca` points at.
pub const AGENCY_CA_FILE: &str = "agency-ca.pem";
/// `foreign-ca.pem`: a CA the daemon does not trust.
pub const FOREIGN_CA_FILE: &str = "foreign-ca.pem";

/// How long the valid certificates last; far enough for any test run.
const VALID_FOR: Duration = Duration::days(30);

/// When a certificate is valid, relative to now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// From yesterday until [`VALID_FOR`] from now.
    Current,
    /// Ended yesterday (so clock skew cannot make it valid again).
    Expired,
    /// Starts tomorrow.
    NotYetValid,
}

/// One client certificate and its key, as files and as text.
#[derive(Clone, Debug)]
pub struct ClientIdentity {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub cert_pem: String,
    /// PKCS#8 PEM.
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    /// SHA-256 of the DER certificate, lowercase hex: what the daemon pins
    /// at enrolment and writes into manifests (no `sha256:` prefix).
    pub fingerprint: String,
    /// The subject Organization, if the certificate has one.
    pub organization: Option<String>,
    pub common_name: String,
}

impl ClientIdentity {
    /// `(cert_pem, key_pem)`, the shape [`super::relay_client::RelayClient::new`] takes.
    pub fn pem_pair(&self) -> (&str, &str) {
        (&self.cert_pem, &self.key_pem)
    }

    /// The agency name the daemon should derive: Organization, else Common Name.
    pub fn agency(&self) -> &str {
        self.organization.as_deref().unwrap_or(&self.common_name)
    }
}

/// The whole test PKI, written into `dir`.
pub struct TestPki {
    pub dir: PathBuf,
    /// `agency-ca.pem`.
    pub agency_ca_path: PathBuf,
    pub agency_ca_pem: String,
    /// `foreign-ca.pem` (not trusted by the daemon; here to build other tests).
    pub foreign_ca_path: PathBuf,
    pub foreign_ca_pem: String,
    /// An officer of [`AGENCY`], signed by the agency CA: `client.pem`, `client-key.pem`.
    pub client: ClientIdentity,
    /// Claims [`AGENCY`] too, but is signed by the foreign CA:
    /// `foreign-client.pem`, `foreign-client-key.pem`. The name alone must
    /// never be enough.
    pub foreign_client: ClientIdentity,
    /// [`AGENCY`], agency CA, expired yesterday: `expired-client.pem`, `expired-client-key.pem`.
    pub expired_client: ClientIdentity,
    /// [`OTHER_AGENCY`], agency CA: `other-agency-client.pem`, `other-agency-client-key.pem`.
    pub other_agency_client: ClientIdentity,
    agency_ca: Issuer<'static, KeyPair>,
    foreign_ca: Issuer<'static, KeyPair>,
}

impl TestPki {
    /// Makes every key and certificate and writes them into `dir` (created
    /// if missing). Fresh keys each call: tests never share a PKI by accident.
    pub fn generate(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).expect("create the PKI directory");
        let (agency_ca_pem, agency_ca) = new_ca("Dallas Police Department Test Agency CA");
        let (foreign_ca_pem, foreign_ca) = new_ca("Unrelated Test CA");
        let agency_ca_path = write(dir, AGENCY_CA_FILE, &agency_ca_pem);
        let foreign_ca_path = write(dir, FOREIGN_CA_FILE, &foreign_ca_pem);

        let officer = "Sgt. A. Rivera (D-4471)";
        let client = issue(
            dir,
            "client",
            &agency_ca,
            Some(AGENCY),
            officer,
            Validity::Current,
        );
        let foreign_client = issue(
            dir,
            "foreign-client",
            &foreign_ca,
            Some(AGENCY),
            officer,
            Validity::Current,
        );
        let expired_client = issue(
            dir,
            "expired-client",
            &agency_ca,
            Some(AGENCY),
            officer,
            Validity::Expired,
        );
        let other_agency_client = issue(
            dir,
            "other-agency-client",
            &agency_ca,
            Some(OTHER_AGENCY),
            "Det. B. Okafor (O-118)",
            Validity::Current,
        );
        TestPki {
            dir: dir.to_path_buf(),
            agency_ca_path,
            agency_ca_pem,
            foreign_ca_path,
            foreign_ca_pem,
            client,
            foreign_client,
            expired_client,
            other_agency_client,
            agency_ca,
            foreign_ca,
        }
    }

    /// Another client certificate under the agency CA, written as
    /// `<file_stem>.pem` and `<file_stem>-key.pem`. With `organization =
    /// None` the subject has only a Common Name, for the fallback rule.
    pub fn issue_agency_client(
        &self,
        file_stem: &str,
        organization: Option<&str>,
        common_name: &str,
        validity: Validity,
    ) -> ClientIdentity {
        issue(
            &self.dir,
            file_stem,
            &self.agency_ca,
            organization,
            common_name,
            validity,
        )
    }

    /// A relay's TLS *server* certificate for the uplink, naming `host` (a
    /// DNS name or an IP address) and [`AGENCY`], signed by the agency CA or,
    /// with `foreign`, by the CA the daemon does not trust. Written as
    /// `<file_stem>.pem` and `<file_stem>-key.pem`.
    pub fn issue_relay_server(&self, file_stem: &str, host: &str, foreign: bool) -> ClientIdentity {
        let issuer = if foreign {
            &self.foreign_ca
        } else {
            &self.agency_ca
        };
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("relay key");
        let mut params = CertificateParams::new(vec![host.to_string()]).expect("relay host name");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, AGENCY);
        params
            .distinguished_name
            .push(DnType::CommonName, "relay.dallas.example");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, Validity::Current, VALID_FOR);
        params.serial_number = Some(random_serial());
        let cert = params.signed_by(&key, issuer).expect("sign the relay");
        let (cert_pem, key_pem, cert_der) = (cert.pem(), key.serialize_pem(), cert.der().to_vec());
        ClientIdentity {
            cert_path: write(&self.dir, &format!("{file_stem}.pem"), &cert_pem),
            key_path: write(&self.dir, &format!("{file_stem}-key.pem"), &key_pem),
            fingerprint: fingerprint(&cert_der),
            cert_pem,
            key_pem,
            cert_der,
            organization: Some(AGENCY.to_string()),
            common_name: "relay.dallas.example".into(),
        }
    }

    /// Every client identity the PKI made, labelled, for table-driven tests.
    pub fn all_clients(&self) -> [(&'static str, &ClientIdentity); 4] {
        [
            ("agency client", &self.client),
            ("foreign-CA client", &self.foreign_client),
            ("expired client", &self.expired_client),
            ("other-agency client", &self.other_agency_client),
        ]
    }
}

/// SHA-256 of a DER certificate, lowercase hex (the daemon's fingerprint).
pub fn fingerprint(cert_der: &[u8]) -> String {
    Sha256::digest(cert_der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A self-signed CA that may sign end-entity certificates only.
fn new_ca(common_name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, Validity::Current, Duration::days(365));
    params.serial_number = Some(random_serial());
    let pem = params.self_signed(&key).expect("self-sign the CA").pem();
    (pem, Issuer::new(params, key))
}

/// An end-entity certificate for TLS client authentication.
fn issue(
    dir: &Path,
    file_stem: &str,
    issuer: &Issuer<'_, KeyPair>,
    organization: Option<&str>,
    common_name: &str,
    validity: Validity,
) -> ClientIdentity {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("client key");
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if let Some(organization) = organization {
        params
            .distinguished_name
            .push(DnType::OrganizationName, organization);
    }
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, validity, VALID_FOR);
    params.serial_number = Some(random_serial());
    let cert = params.signed_by(&key, issuer).expect("sign the client");
    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    let cert_der = cert.der().to_vec();
    ClientIdentity {
        cert_path: write(dir, &format!("{file_stem}.pem"), &cert_pem),
        key_path: write(dir, &format!("{file_stem}-key.pem"), &key_pem),
        fingerprint: fingerprint(&cert_der),
        cert_pem,
        key_pem,
        cert_der,
        organization: organization.map(str::to_string),
        common_name: common_name.to_string(),
    }
}

fn set_validity(params: &mut CertificateParams, validity: Validity, length: Duration) {
    let now = OffsetDateTime::now_utc();
    let day = Duration::days(1);
    (params.not_before, params.not_after) = match validity {
        Validity::Current => (now - day, now + length),
        Validity::Expired => (now - length - day, now - day),
        Validity::NotYetValid => (now + day, now + day + length),
    };
}

/// A random positive 16-byte serial: top bit clear (DER integers are
/// signed) and first byte non-zero (so the encoding is exactly 16 bytes).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}
