//! The owner's live switches: the privacy switch, each camera's sharing
//! level, each camera's recording. The config file gives the defaults; a
//! switch flipped at run time (owner API, CLI, Home Assistant) is kept in
//! `<data_dir>/owner-settings.json` and wins over the config until changed
//! again. Every change is in the audit log and on the event bus.
//!
//! Only the owner's channels hold a `Controls`; the relay never does, so
//! nothing an agency sends can raise a sharing level.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::audit::{AuditEvent, AuditLog, Component, EventType, Identity, Outcome};
use crate::config::Config;
use crate::events::{DaemonEvent, EventBus};
use crate::policy::{Policy, SharingLevel};

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
        let policy = SharedPolicy::new(apply(&config_policy, &settings));
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

    pub fn set_privacy(&self, channel: impl Into<Actor>, on: bool) -> Result<(), ControlError> {
        self.change(
            channel,
            "privacy",
            serde_json::json!({ "privacy": on }),
            |s| s.privacy = Some(on),
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
            |s| {
                s.sharing.insert(camera.to_string(), level);
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
            |s| {
                if on {
                    s.recording_off.remove(camera);
                } else {
                    s.recording_off.insert(camera.to_string());
                }
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

    /// Applies `edit`, saves, updates the live policy, logs and announces.
    fn change(
        &self,
        actor: impl Into<Actor>,
        what: &str,
        details: serde_json::Value,
        edit: impl FnOnce(&mut OwnerSettings),
    ) -> Result<(), ControlError> {
        let before = self.switches();
        {
            let mut settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            let mut next = settings.clone();
            edit(&mut next);
            save(&self.path, &next)?;
            self.policy.replace(apply(&self.config_policy, &next));
            *settings = next;
        }
        let after = self.switches();
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

/// The config's policy with the owner's run-time switches applied.
fn apply(config_policy: &Policy, settings: &OwnerSettings) -> Policy {
    let mut policy = config_policy.clone();
    if let Some(privacy) = settings.privacy {
        policy.privacy = privacy;
    }
    for camera in &mut policy.cameras {
        if let Some(level) = settings.sharing.get(&camera.name) {
            camera.level = *level;
            // A schedule's off-hours level may not exceed the level itself.
            camera.outside_schedule = camera.outside_schedule.min(*level);
        }
    }
    policy
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
        .recording_off
        .retain(|c| known.contains(c.as_str()));
    Ok(settings)
}

/// The switches as the daemon would start with them (config plus the
/// owner's saved changes), read without the daemon: for `porchlight status`.
pub fn saved_switches(config: &Config) -> anyhow::Result<Switches> {
    let settings = read_settings(config)?;
    let policy = apply(&Policy::from_config(config), &settings);
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
