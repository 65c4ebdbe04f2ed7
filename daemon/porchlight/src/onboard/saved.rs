//! Cameras the owner added from discovery, kept in
//! `<data_dir>/onboarded-cameras.json` (mode 0600: it holds their
//! passwords). The config file is never rewritten: it stays the owner's.
//!
//! At start the daemon adds these to the configured cameras; a name the
//! config file also uses is the config's (the saved one is skipped, loudly).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{
    CameraConfig, CameraSharing, Config, PasswordSource, Secret, StreamKind, Transport,
};

/// The file's name in the data dir.
pub const FILE_NAME: &str = "onboarded-cameras.json";

#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: String },
    #[error(
        "{path} is damaged ({error}); fix or remove it (it lists the cameras added from discovery)"
    )]
    Damaged { path: String, error: String },
    #[error("cannot save {path}: {error}")]
    Save { path: String, error: String },
}

/// One camera added from discovery: how it was found, how to reach it now.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SavedCamera {
    pub name: String,
    /// The device's WS-Discovery endpoint reference (`urn:uuid:…`): what it
    /// is matched by when its address changes.
    pub endpoint: String,
    /// From GetDeviceInformation; also matched on.
    #[serde(default)]
    pub serial: String,
    #[serde(default)]
    pub manufacturer: String,
    #[serde(default)]
    pub model: String,
    /// The device service it answered on last.
    pub onvif: String,
    pub main_profile: String,
    #[serde(default)]
    pub sub_profile: Option<String>,
    /// Stream URIs from GetStreamUri (no credentials in them).
    pub url: String,
    #[serde(default)]
    pub sub_url: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Camera clock minus ours when added (or last moved), ms.
    #[serde(default)]
    pub clock_skew_ms: i64,
    /// UTC µs.
    pub added_at: i64,
    /// UTC µs of the last address change, if any.
    #[serde(default)]
    pub moved_at: Option<i64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SavedFile {
    version: u32,
    cameras: Vec<SavedCamera>,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The saved cameras (none if the file does not exist yet).
pub fn load(data_dir: &Path) -> Result<Vec<SavedCamera>, SavedError> {
    let path = path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(SavedError::Read {
                path: path.display().to_string(),
                error: e.to_string(),
            })
        }
    };
    let file: SavedFile = serde_json::from_str(&text).map_err(|e| SavedError::Damaged {
        path: path.display().to_string(),
        error: e.to_string(),
    })?;
    Ok(file.cameras)
}

/// Durably replaces the file (0600 temp file, fsync, rename, fsync dir).
pub fn save(data_dir: &Path, cameras: &[SavedCamera]) -> Result<(), SavedError> {
    let path = path(data_dir);
    let error = |e: String| SavedError::Save {
        path: path.display().to_string(),
        error: e,
    };
    let text = serde_json::to_string_pretty(&SavedFile {
        version: 1,
        cameras: cameras.to_vec(),
    })
    .map_err(|e| error(e.to_string()))?;
    let result = crate::durable::replace_private(&path, text.as_bytes());
    result.map_err(|e| error(e.to_string()))
}

impl SavedCamera {
    /// As a camera of the config, recorded like one from the file: TCP,
    /// main (and sub when chosen), audio on, the global retention, not
    /// shared with police until the owner says so.
    pub fn to_camera_config(&self, config: &Config) -> Result<CameraConfig, String> {
        let url = crate::config::parse_rtsp_url(&self.url)?;
        let sub_url = self
            .sub_url
            .as_deref()
            .map(crate::config::parse_rtsp_url)
            .transpose()?;
        let onvif = url::Url::parse(&self.onvif)
            .map_err(|e| format!("onvif address `{}`: {e}", self.onvif))?;
        let mut streams = vec![StreamKind::Main];
        if sub_url.is_some() {
            streams.push(StreamKind::Sub);
        }
        Ok(CameraConfig {
            name: self.name.clone(),
            url,
            sub_url,
            onvif: Some(onvif),
            username: self.username.clone(),
            password: self.password.clone().map(Secret::new),
            password_source: match self.password {
                Some(_) => PasswordSource::File(path(&config.data_dir)),
                None => PasswordSource::None,
            },
            transport: Transport::Tcp,
            streams,
            audio: true,
            enabled: true,
            retention: config.retention.defaults,
            sharing: CameraSharing {
                level: Default::default(),
                location: None,
                audio_to_police: false,
                schedule: None,
                outside_schedule: Default::default(),
                max_clip: None,
                direction: None,
                field_of_view: None,
            },
        })
    }
}

/// `config` with the saved cameras added after the configured ones.
pub fn merge_into(mut config: Config) -> Result<Config, SavedError> {
    for saved in load(&config.data_dir)? {
        if config.cameras.iter().any(|c| c.name == saved.name) {
            tracing::warn!(camera = %saved.name, file = FILE_NAME, "a camera added from discovery has the name of one in the config file; the config file's is used");
            continue;
        }
        match saved.to_camera_config(&config) {
            Ok(camera) => config.cameras.push(camera),
            Err(e) => {
                return Err(SavedError::Damaged {
                    path: path(&config.data_dir).display().to_string(),
                    error: format!("camera `{}`: {e}", saved.name),
                })
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn camera(name: &str) -> SavedCamera {
        SavedCamera {
            name: name.into(),
            endpoint: "urn:uuid:6e0c8f2a-1d3b-4c5e-9f70-00a1b2c3d4e5".into(),
            serial: "00000000".into(),
            manufacturer: "M".into(),
            model: "X".into(),
            onvif: "http://192.168.1.20/onvif/device_service".into(),
            main_profile: "main".into(),
            sub_profile: Some("sub".into()),
            url: "rtsp://192.168.1.20/main".into(),
            sub_url: Some("rtsp://192.168.1.20/sub".into()),
            username: Some("admin".into()),
            password: Some("secret".into()),
            clock_skew_ms: 7_200_000,
            added_at: 1,
            moved_at: None,
        }
    }

    #[test]
    fn saved_cameras_round_trip_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        let cams = vec![camera("porch"), camera("yard")];
        save(dir.path(), &cams).unwrap();
        assert_eq!(load(dir.path()).unwrap(), cams);
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn merged_cameras_record_both_streams_and_config_names_win() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "data_dir = \"{}\"\n[[cameras]]\nname = \"porch\"\nurl = \"rtsp://10.0.0.9/x\"\n",
            dir.path().display()
        );
        let config = Config::parse(&text, None).unwrap();
        save(dir.path(), &[camera("porch"), camera("yard")]).unwrap();
        let merged = merge_into(config).unwrap();
        let names: Vec<&str> = merged.cameras.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["porch", "yard"]);
        assert_eq!(merged.cameras[0].url.as_str(), "rtsp://10.0.0.9/x");
        let yard = &merged.cameras[1];
        assert_eq!(yard.streams, [StreamKind::Main, StreamKind::Sub]);
        assert_eq!(yard.password.as_ref().map(|p| p.expose()), Some("secret"));
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "{ not json").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains(FILE_NAME), "{e}");
    }
}
