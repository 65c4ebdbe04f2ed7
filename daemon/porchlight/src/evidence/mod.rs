//! Evidence packages: footage that can be shown, years later and offline,
//! to be exactly what this box recorded. The MP4 inside follows the ONVIF
//! Export File Format (its own seal signs the whole file); the package adds
//! a signed manifest with hashes, times, gaps and the clock's accuracy.
//! See docs/evidence.md.

mod certificate;
pub mod clock;
mod device_key;
pub mod manifest;
mod package;
mod tar;
mod verify;

use std::path::PathBuf;

pub use certificate::verifying_key as certificate_verifying_key;
pub use device_key::{fingerprint as certificate_fingerprint, hex, DeviceKey};
pub use package::{package_name, write_package, EvidenceRequest, Exporter, PackageSummary};
pub use verify::{verify_path, Check, VerifyReport};

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error("device key {path}: {error}")]
    DeviceKey { path: PathBuf, error: String },
    #[error("signing: {0}")]
    Signing(String),
    #[error("writing the package: {0}")]
    Io(#[from] std::io::Error),
}

/// This machine's name, for the certificate and the export seal.
pub fn device_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "porchlight".into())
}

/// What every export from this box shares: its key and how to describe it.
pub struct EvidenceSettings {
    pub device: DeviceKey,
    pub device_name: String,
    /// Where the owner reaches this box (goes into the export seal).
    pub device_url: String,
    /// An NTP server to measure the clock against at each export.
    pub time_server: Option<String>,
    /// Each camera's main stream URL (credentials are stripped on use).
    pub camera_sources: std::collections::HashMap<String, String>,
    /// Camera clock minus ours, ms, for cameras that report their time
    /// (ONVIF); filled in while the daemon runs.
    pub camera_clock_skews: CameraClockSkews,
}

/// Shared record of each camera's clock skew (ms), by camera name.
pub type CameraClockSkews =
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>;

impl EvidenceSettings {
    /// Loads (or makes, on first start) the device key in `data_dir`.
    pub fn load(config: &crate::config::Config) -> Result<EvidenceSettings, EvidenceError> {
        let device_name = device_name();
        Ok(EvidenceSettings {
            device: DeviceKey::load_or_create(&config.data_dir, &device_name)?,
            device_name,
            device_url: format!("http://{}", config.http.bind),
            time_server: config.export.time_server.clone(),
            camera_sources: config
                .cameras
                .iter()
                .map(|c| (c.name.clone(), c.url.to_string()))
                .collect(),
            camera_clock_skews: CameraClockSkews::default(),
        })
    }

    /// The request for `clip`, with this box's view of the camera.
    pub fn request(
        &self,
        clip: &crate::export::ClipRequest,
        operator: Option<String>,
        case_id: Option<String>,
        request_id: Option<String>,
    ) -> EvidenceRequest {
        EvidenceRequest {
            camera: clip.camera.clone(),
            camera_source: self
                .camera_sources
                .get(&clip.camera)
                .cloned()
                .unwrap_or_default(),
            stream: clip.stream.as_str().to_string(),
            from_us: clip.from_us,
            to_us: clip.to_us,
            audio: clip.audio,
            operator,
            case_id,
            request_id,
            camera_clock_skew_ms: self
                .camera_clock_skews
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&clip.camera)
                .copied(),
        }
    }

    /// Measures the clock (a network round trip when a time server is set:
    /// call from blocking code) and returns the exporter.
    pub fn exporter(&self) -> Exporter<'_> {
        Exporter {
            device: &self.device,
            device_name: self.device_name.clone(),
            device_url: self.device_url.clone(),
            clock: clock::measure(self.time_server.as_deref()),
        }
    }
}

/// Writes the package for `clip` to `path` (via a temporary name, renamed
/// when complete, so a failed export never leaves a package that looks whole).
pub fn export_to_file(
    settings: &EvidenceSettings,
    conn: &rusqlite::Connection,
    data_dir: &std::path::Path,
    clip: &crate::export::ClipRequest,
    request: &EvidenceRequest,
    path: &std::path::Path,
) -> Result<PackageSummary, EvidenceError> {
    let plan = crate::export::plan_footage(conn, data_dir, clip)?;
    let temp = path.with_extension("partial");
    let result = (|| {
        let file = std::fs::File::create(&temp)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let summary = write_package(plan, request, &settings.exporter(), &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temp, path)?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
