//! Messages to the registry, signed with the device key (ECDSA P-256,
//! SHA-256) so the relay can tell they come from the box it enrolled, and
//! keep the proof: a deletion request in particular must be provable.
//!
//! The signature covers the exact payload bytes, carried base64url-encoded
//! next to it, so no JSON canonicalisation is needed on either side.

use base64::Engine as _;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature};
use serde::{Deserialize, Serialize};

use crate::evidence::DeviceKey;

/// The only algorithm: ECDSA P-256 with SHA-256 (JOSE's name for it).
pub const ALG: &str = "ES256";

/// A signed message as it travels (the HTTP body).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedMessage {
    pub alg: String,
    /// SHA-256 of the signing device certificate (DER), lowercase hex.
    pub cert_sha256: String,
    /// The message JSON, base64url without padding.
    pub payload: String,
    /// DER ECDSA signature over the decoded payload bytes, base64url.
    pub signature: String,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl SignedMessage {
    /// Signs `payload` (serialized once, as sent) with the device key.
    pub fn sign(device: &DeviceKey, payload: &serde_json::Value) -> SignedMessage {
        let bytes = serde_json::to_vec(payload).unwrap_or_default();
        let signature: Signature = device.signing_key().sign(&bytes);
        let der: DerSignature = signature.to_der();
        SignedMessage {
            alg: ALG.to_string(),
            cert_sha256: device.fingerprint().to_string(),
            payload: B64.encode(&bytes),
            signature: B64.encode(der.as_bytes()),
        }
    }

    /// The payload, if the signature verifies with `certificate_der`.
    pub fn verify(&self, certificate_der: &[u8]) -> Result<serde_json::Value, String> {
        if self.alg != ALG {
            return Err(format!("unknown algorithm `{}`", self.alg));
        }
        let key = crate::evidence::certificate_verifying_key(certificate_der)?;
        let bytes = B64
            .decode(&self.payload)
            .map_err(|e| format!("payload is not base64url: {e}"))?;
        let der = B64
            .decode(&self.signature)
            .map_err(|e| format!("signature is not base64url: {e}"))?;
        let signature =
            Signature::from_der(&der).map_err(|e| format!("not a DER ECDSA signature: {e}"))?;
        key.verify(&bytes, &signature)
            .map_err(|_| "the signature does not verify with this certificate".to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| format!("payload is not JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_message_verifies_and_a_changed_one_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let device = DeviceKey::load_or_create(dir.path(), "test").expect("key");
        let message = SignedMessage::sign(&device, &serde_json::json!({"type": "deletion"}));
        assert_eq!(message.cert_sha256, device.fingerprint());
        let payload = message.verify(device.certificate_der()).expect("verifies");
        assert_eq!(payload["type"], "deletion");

        let mut changed = message.clone();
        changed.payload = B64.encode(br#"{"type":"registration"}"#);
        assert!(changed.verify(device.certificate_der()).is_err());

        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = DeviceKey::load_or_create(other_dir.path(), "other").expect("key");
        assert!(message.verify(other.certificate_der()).is_err());
    }
}
