//! The package manifest: what was exported, from where, when, how good the
//! clock was, and the SHA-256 of every file. It is signed as a whole.

use serde::{Deserialize, Serialize};

use super::clock::ClockReport;

pub const FORMAT: &str = "porchlight-evidence/1";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    /// Random id of this export; also inside each MP4's seal (`auib`).
    pub export_id: String,
    pub exported_at: String,
    pub software: Software,
    pub device: Device,
    pub camera: Camera,
    pub request: RequestInfo,
    pub footage: Footage,
    pub clock: Clock,
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Software {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Device {
    pub name: String,
    /// SHA-256 of the device certificate (DER), the identity to pin.
    pub certificate_sha256: String,
    pub signature_algorithm: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Camera {
    pub name: String,
    /// The camera's stream address, credentials removed.
    pub source: String,
    pub stream: String,
    /// Camera clock minus daemon clock, ms, when the camera reports its time.
    pub clock_skew_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RequestInfo {
    pub from: String,
    pub to: String,
    pub audio: bool,
    pub operator: Option<String>,
    pub case_id: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Footage {
    /// UTC where playback starts and ends.
    pub from: String,
    pub to: String,
    /// Recorded spans inside the range; the file plays them back to back.
    pub spans: Vec<Span>,
    pub gaps: Vec<Span>,
    pub tracks: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Span {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Clock {
    #[serde(flatten)]
    pub report: ClockReport,
    /// How footage times were made, for the reader of the manifest.
    pub timestamps: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Name inside the package.
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
    pub media_type: String,
    /// For MP4 files: the ONVIF Export File Format seal inside the file.
    pub embedded_signature: Option<String>,
}
