//! Reading the public key out of a certificate, for verification.

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;
use x509_cert::der::{Decode, DecodePem, Encode};

/// DER AlgorithmIdentifier of ecdsa-with-SHA256 (OID 1.2.840.10045.4.3.2),
/// as the export seal's `sigC` box names it.
pub const ECDSA_WITH_SHA256_DER: [u8; 12] = [
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

/// The first certificate of a PEM text, as DER.
pub fn der_from_pem(pem: &str) -> Result<Vec<u8>, String> {
    let cert = x509_cert::Certificate::from_pem(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    cert.to_der().map_err(|e| e.to_string())
}

/// The ECDSA P-256 key a DER certificate holds.
pub fn verifying_key(certificate_der: &[u8]) -> Result<VerifyingKey, String> {
    let cert = x509_cert::Certificate::from_der(certificate_der)
        .map_err(|e| format!("not a DER certificate: {e}"))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    VerifyingKey::from_public_key_der(&spki)
        .map_err(|e| format!("the certificate's key is not ECDSA P-256: {e}"))
}
