//! The device key: an ECDSA P-256 key made at first start and kept in the
//! data dir (mode 0600), with a self-signed certificate. Evidence is signed
//! with it; the certificate's SHA-256 fingerprint is what a relay or court
//! pins to know the footage came from this box.

use std::path::{Path, PathBuf};

use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256};

use super::EvidenceError;

const KEY_FILE: &str = "device-key.pem";
const CERT_FILE: &str = "device-cert.pem";

/// The device's signing identity.
pub struct DeviceKey {
    signing_key: SigningKey,
    certificate_der: Vec<u8>,
    certificate_pem: String,
    /// PKCS#8 PEM, for the relay listener's TLS (never logged).
    key_pem: String,
    fingerprint: String,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// Loads the key from `data_dir`, creating key and certificate on first
    /// use. `device_name` goes into a new certificate's subject.
    pub fn load_or_create(data_dir: &Path, device_name: &str) -> Result<DeviceKey, EvidenceError> {
        let key_path = data_dir.join(KEY_FILE);
        let cert_path = data_dir.join(CERT_FILE);
        if !key_path.exists() {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|e| key_error(&key_path, format!("cannot generate a key: {e}")))?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            tracing::info!(path = %key_path.display(), "generated the device key");
            let _ = std::fs::remove_file(&cert_path);
        }
        let key_pem =
            std::fs::read_to_string(&key_path).map_err(|e| key_error(&key_path, e.to_string()))?;
        check_private_mode(&key_path)?;
        if !cert_path.exists() {
            let key = rcgen::KeyPair::from_pem(&key_pem)
                .map_err(|e| key_error(&key_path, format!("not a usable key: {e}")))?;
            let pem = self_signed_certificate(&key, device_name)
                .map_err(|e| key_error(&cert_path, format!("cannot make the certificate: {e}")))?;
            write_private(&cert_path, pem.as_bytes())?;
        }
        let certificate_pem = std::fs::read_to_string(&cert_path)
            .map_err(|e| key_error(&cert_path, e.to_string()))?;
        let signing_key = SigningKey::from_pkcs8_pem(&key_pem)
            .map_err(|e| key_error(&key_path, format!("not an ECDSA P-256 key: {e}")))?;
        let certificate_der = super::certificate::der_from_pem(&certificate_pem)
            .map_err(|e| key_error(&cert_path, e))?;
        let public = super::certificate::verifying_key(&certificate_der)
            .map_err(|e| key_error(&cert_path, e))?;
        if &public != signing_key.verifying_key() {
            return Err(key_error(
                &cert_path,
                "the certificate is for another key (delete it to have it made again)".into(),
            ));
        }
        Ok(DeviceKey {
            signing_key,
            key_pem,
            fingerprint: fingerprint(&certificate_der),
            certificate_der,
            certificate_pem,
        })
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The private key (PKCS#8 PEM), for TLS with the device certificate.
    pub fn private_key_pem(&self) -> &str {
        &self.key_pem
    }

    /// SHA-256 of the certificate (DER), lowercase hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// SHA-256 of a DER certificate, lowercase hex.
pub fn fingerprint(certificate_der: &[u8]) -> String {
    hex(&Sha256::digest(certificate_der))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn self_signed_certificate(
    key: &rcgen::KeyPair,
    device_name: &str,
) -> Result<String, rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("Porchlight device {device_name}"),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Porchlight");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365 * 20);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    Ok(params.self_signed(key)?.pem())
}

/// Writes a file only the owner can read, durably.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), EvidenceError> {
    crate::durable::replace_private(path, bytes).map_err(|e| key_error(path, e.to_string()))
}

/// A key others can read is refused rather than used.
fn check_private_mode(path: &Path) -> Result<(), EvidenceError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| key_error(path, e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(key_error(
            path,
            format!(
                "mode is {:o}; the device key must be readable by its owner only (chmod 600)",
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

fn key_error(path: &Path, error: String) -> EvidenceError {
    EvidenceError::DeviceKey {
        path: PathBuf::from(path),
        error,
    }
}
