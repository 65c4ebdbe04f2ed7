//! The owner's live switches: the privacy switch, each camera's sharing
//! level, each camera's recording. The config file gives the defaults; a
//! switch flipped at run time (owner API, CLI, Home Assistant) is kept in
//! `<data_dir>/owner-settings.json` and wins over the config until changed
//! again. Every change is in the audit log and on the event bus.
//!
//! Beyond the switches, the owner may change each camera's schedule,
//! off-hours level, clip limit and audio, and the device's clip and request
//! limits ([`sharing_settings`]), checked with the config's own rules.
//!
//! Only the owner's channels hold a `Controls`; the relay never does, so
//! nothing an agency sends can raise a sharing level.

pub mod cli;
pub mod sharing_settings;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::audit::{AuditEvent, AuditLog, Component, EventType, Identity, Outcome};
use crate::config::Config;
use crate::events::{DaemonEvent, EventBus};
use crate::policy::{Policy, SharingLevel};
use sharing_settings::{
    CameraSettings, CameraSharingUpdate, Facts, LimitSettings, LimitsUpdate, SharingView,
};

/// What the owner changed at run time (absent: the config's value).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sharing: BTreeMap<String, SharingLevel>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub recording_off: BTreeSet<String>,
    /// Schedules, off-hours levels, clip limits and audio, per camera.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub camera_settings: BTreeMap<String, CameraSettings>,
    /// The device-wide clip and request limits.
    #[serde(default, skip_serializing_if = "LimitSettings::is_empty")]
    pub limits: LimitSettings,
}

/// The policy in force, shared with the relay (read per request).
#[derive(Clone)]
pub struct SharedPolicy(Arc<RwLock<Policy>>);

impl SharedPolicy {
    pub fn new(policy: Policy) -> SharedPolicy {
        SharedPolicy(Arc::new(RwLock::new(policy)))
    }

    pub fn current(&self) -> Policy {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn replace(&self, policy: Policy) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown camera `{0}`")]
    UnknownCamera(String),
    #[error("`{field}`: {problem}")]
    Invalid { field: String, problem: String },
    #[error("cannot save the owner's settings in {path}: {error}")]
    Save { path: String, error: String },
    #[error("the change was made but could not be written to the audit log: {0}")]
    Audit(String),
}

/// Who flipped a switch, for the audit log.
#[derive(Clone, Copy, Debug)]
pub enum Channel {
    OwnerApi,
    Cli,
    Mqtt,
}

impl Channel {
    fn component(self) -> Component {
        match self {
            Channel::OwnerApi => Component::OwnerApi,
            Channel::Cli => Component::Cli,
            Channel::Mqtt => Component::Mqtt,
        }
    }
}

/// Who flipped a switch: the channel, and the owner account when logged in.
#[derive(Clone, Debug)]
pub struct Actor {
    pub channel: Channel,
    pub user: Option<String>,
}

impl From<Channel> for Actor {
    fn from(channel: Channel) -> Actor {
        Actor {
            channel,
            user: None,
        }
    }
}

/// One camera's switches as they stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CameraSwitches {
    pub camera: String,
    pub sharing: SharingLevel,
    pub recording: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Switches {
    pub privacy: bool,
    pub cameras: Vec<CameraSwitches>,
}

pub struct Controls {
    config_policy: Policy,
    facts: Facts,
    timezone: String,
    settings: Mutex<OwnerSettings>,
    path: PathBuf,
    policy: SharedPolicy,
    recording: BTreeMap<String, watch::Sender<bool>>,
    audit: AuditLog,
    bus: EventBus,
}

impl Controls {
    /// Loads the owner's saved switches over the config's defaults. A
    /// settings file that does not parse is an error naming it (the owner's
    /// choices are never silently dropped).
    pub fn load(config: &Config, audit: AuditLog, bus: EventBus) -> anyhow::Result<Controls> {
        let path = settings_path(config);
        let settings = read_settings(config)?;
        let config_policy = Policy::from_config(config);
        let facts = Facts::of(config);
        let policy = SharedPolicy::new(sharing_settings::apply(&config_policy, &facts, &settings));
        let recording = config
            .cameras
            .iter()
            .map(|c| {
                let on = !settings.recording_off.contains(&c.name);
                (c.name.clone(), watch::channel(on).0)
            })
            .collect();
        Ok(Controls {
            config_policy,
            facts,
            timezone: timezone_name(config),
            settings: Mutex::new(settings),
            path,
            policy,
            recording,
            audit,
            bus,
        })
    }

    pub fn policy(&self) -> SharedPolicy {
        self.policy.clone()
    }

    /// Follows a camera's recording switch (true: record).
    pub fn recording_watch(&self, camera: &str) -> Option<watch::Receiver<bool>> {
        self.recording.get(camera).map(|s| s.subscribe())
    }

    pub fn switches(&self) -> Switches {
        let policy = self.policy.current();
        Switches {
            privacy: policy.privacy,
            cameras: policy
                .cameras
                .iter()
                .map(|c| CameraSwitches {
                    camera: c.name.clone(),
                    sharing: c.level,
                    recording: self.recording.get(&c.name).is_some_and(|s| *s.borrow()),
                })
                .collect(),
        }
    }

    /// Everything that decides what police may get, as it stands now.
    pub fn sharing(&self) -> SharingView {
        let settings = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        sharing_settings::view(
            &self.policy.current(),
            &settings,
            &self.facts,
            &self.timezone,
            crate::time::now_utc_us(),
        )
    }

    /// One camera's sharing settings as they stand.
    pub fn camera_sharing(&self, camera: &str) -> Option<sharing_settings::CameraSharingView> {
        self.sharing()
            .cameras
            .into_iter()
            .find(|c| c.camera == camera)
    }

    pub fn set_privacy(&self, channel: impl Into<Actor>, on: bool) -> Result<(), ControlError> {
        self.change(
            channel,
            "privacy",
            serde_json::json!({ "privacy": on }),
            |c| serde_json::json!(c.switches()),
            |s| {
                s.privacy = Some(on);
                Ok(())
            },
        )
    }

    /// Changes a camera's schedule, off-hours level, clip limit, audio
    /// (and level), checked as the config checks a camera table.
    pub fn set_camera_sharing(
        &self,
        channel: impl Into<Actor>,
        camera: &str,
        update: &CameraSharingUpdate,
    ) -> Result<(), ControlError> {
        self.known(camera)?;
        let name = camera.to_string();
        self.change(
            channel,
            "camera_sharing",
            serde_json::json!({
                "camera": camera,
                "level": update.level,
                "schedule": update.schedule,
                "outside_schedule": update.outside_schedule,
                "max_clip": update.max_clip,
                "audio_to_police": update.audio_to_police,
            }),
            move |c| serde_json::json!(c.camera_sharing(&name)),
            |s| {
                sharing_settings::update_camera(s, camera, update, &self.config_policy, &self.facts)
            },
        )
    }

    /// Changes the device-wide clip and request limits, checked as the
    /// config's `[policy]` is.
    pub fn set_limits(
        &self,
        channel: impl Into<Actor>,
        update: &LimitsUpdate,
    ) -> Result<(), ControlError> {
        self.change(
            channel,
            "limits",
            serde_json::json!({
                "max_clip": update.max_clip,
                "requests_per_case": update.requests_per_case,
                "requests_per_agency_per_day": update.requests_per_agency_per_day,
                "max_window": update.max_window,
                "max_radius_m": update.max_radius_m,
            }),
            |c| serde_json::json!(c.sharing().limits),
            |s| sharing_settings::update_limits(s, update, &self.facts),
        )
    }

    pub fn set_sharing(
        &self,
        channel: impl Into<Actor>,
        camera: &str,
        level: SharingLevel,
    ) -> Result<(), ControlError> {
        self.known(camera)?;
        self.change(
            channel,
            "sharing",
            serde_json::json!({ "camera": camera, "sharing": level }),
            |c| serde_json::json!(c.switches()),
            |s| {
                s.sharing.insert(camera.to_string(), level);
                Ok(())
            },
        )
    }

    pub fn set_recording(
        &self,
        channel: impl Into<Actor>,
        camera: &str,
        on: bool,
    ) -> Result<(), ControlError> {
        self.known(camera)?;
        self.change(
            channel,
            "recording",
            serde_json::json!({ "camera": camera, "recording": on }),
            |c| serde_json::json!(c.switches()),
            |s| {
                if on {
                    s.recording_off.remove(camera);
                } else {
                    s.recording_off.insert(camera.to_string());
                }
                Ok(())
            },
        )?;
        if let Some(sender) = self.recording.get(camera) {
            sender.send_replace(on);
        }
        Ok(())
    }

    fn known(&self, camera: &str) -> Result<(), ControlError> {
        if self.recording.contains_key(camera) {
            Ok(())
        } else {
            Err(ControlError::UnknownCamera(camera.to_string()))
        }
    }

    /// Applies `edit` (which may refuse the change), saves, updates the
    /// live policy, logs what `snapshot` shows before and after, announces.
    fn change(
        &self,
        actor: impl Into<Actor>,
        what: &str,
        details: serde_json::Value,
        snapshot: impl Fn(&Controls) -> serde_json::Value,
        edit: impl FnOnce(&mut OwnerSettings) -> Result<(), ControlError>,
    ) -> Result<(), ControlError> {
        let before = snapshot(self);
        {
            let mut settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            let mut next = settings.clone();
            edit(&mut next)?;
            save(&self.path, &next)?;
            self.policy.replace(sharing_settings::apply(
                &self.config_policy,
                &self.facts,
                &next,
            ));
            *settings = next;
        }
        let after = snapshot(self);
        // The snapshot the start-up check compares with follows too.
        let _ = crate::relay::enrolment::remember_policy(&self.path_dir(), &self.policy.current());
        let actor = actor.into();
        let event = AuditEvent::new(
            actor.channel.component(),
            EventType::PolicyChange,
            Identity::owner(actor.user.as_deref()),
        )
        .outcome(Outcome::ok())
        .details(
            serde_json::json!({ "set": what, "change": details, "before": before, "after": after }),
        );
        self.bus.publish(DaemonEvent::SettingsChanged);
        self.audit
            .append_blocking(event)
            .map(|_| ())
            .map_err(|e| ControlError::Audit(e.to_string()))
    }

    fn path_dir(&self) -> PathBuf {
        self.path.parent().map(PathBuf::from).unwrap_or_default()
    }
}

/// The owner's time zone as people read it.
fn timezone_name(config: &Config) -> String {
    config
        .policy
        .timezone_name
        .clone()
        .or_else(|| config.policy.timezone.iana_name().map(String::from))
        .unwrap_or_else(|| "the system's".into())
}

fn settings_path(config: &Config) -> PathBuf {
    config.data_dir.join("owner-settings.json")
}

/// The owner's saved switches for the cameras still in the config.
fn read_settings(config: &Config) -> anyhow::Result<OwnerSettings> {
    let path = settings_path(config);
    let mut settings: OwnerSettings = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not valid owner settings: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => OwnerSettings::default(),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    // Cameras removed from the config take their settings with them.
    let known: BTreeSet<&str> = config.cameras.iter().map(|c| c.name.as_str()).collect();
    settings.sharing.retain(|c, _| known.contains(c.as_str()));
    settings
        .camera_settings
        .retain(|c, _| known.contains(c.as_str()));
    sharing_settings::check_saved(&settings)
        .map_err(|e| anyhow::anyhow!("{}: not valid owner settings: {e}", path.display()))?;
    settings
        .recording_off
        .retain(|c| known.contains(c.as_str()));
    Ok(settings)
}

/// The switches as the daemon would start with them (config plus the
/// owner's saved changes), read without the daemon: for `porchlight status`.
pub fn saved_switches(config: &Config) -> anyhow::Result<Switches> {
    let settings = read_settings(config)?;
    let policy =
        sharing_settings::apply(&Policy::from_config(config), &Facts::of(config), &settings);
    Ok(Switches {
        privacy: policy.privacy,
        cameras: policy
            .cameras
            .iter()
            .map(|c| CameraSwitches {
                camera: c.name.clone(),
                sharing: c.level,
                recording: !settings.recording_off.contains(&c.name),
            })
            .collect(),
    })
}

/// Durably replaces the settings file (temp file, fsync, rename).
fn save(path: &std::path::Path, settings: &OwnerSettings) -> Result<(), ControlError> {
    let error = |e: std::io::Error| ControlError::Save {
        path: path.display().to_string(),
        error: e.to_string(),
    };
    let text = serde_json::to_string_pretty(settings).map_err(|e| ControlError::Save {
        path: path.display().to_string(),
        error: e.to_string(),
    })?;
    let temp = path.with_extension("json.partial");
    let result = (|| {
        use std::io::Write;
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        if let Some(dir) = path.parent() {
            crate::store::segment_file::sync_dir(dir)?;
        }
        Ok(())
    })();
    result.map_err(error)
}
