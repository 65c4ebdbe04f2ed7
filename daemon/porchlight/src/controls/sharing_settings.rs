//! The police-sharing settings the owner may change at run time beyond a
//! camera's level: its schedule, the level outside it, its longest clip and
//! its audio; and the device-wide clip and request limits.
//!
//! Input is checked with the config's own rules (`config::check_*`, the
//! schedule parsers), so a value the config file would refuse is refused
//! here too, with the field named. Schedules use the config's text form:
//! `{"days": "mon-fri", "from": "22:00", "to": "06:00"}`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::ControlError;
use crate::config::units::{parse_duration, HumanDuration};
use crate::config::{self, Config};
use crate::policy::{CameraPolicy, Policy, Schedule, SharingLevel};

/// Most windows one camera's schedule may have (bounds the input).
pub const MAX_SCHEDULE_WINDOWS: usize = 32;

/// One schedule window in the config's text form. `days` is one entry
/// (`"mon-fri"`, `"daily"`) or a list (`["sat", "sun"]`); absent: every day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowText {
    #[serde(default, deserialize_with = "one_or_many")]
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(d).map_err(|_| {
        serde::de::Error::custom("expected days such as \"mon-fri\" or [\"sat\", \"sun\"]")
    })? {
        OneOrMany::One(day) => Ok(vec![day]),
        OneOrMany::Many(days) => Ok(days),
    }
}

/// What the owner set for one camera (absent: the config's value).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSettings {
    /// The owner's schedule, normalised; empty: shared at all times (the
    /// config's schedule cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Vec<WindowText>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside_schedule: Option<SharingLevel>,
    /// The camera's own clip limit in seconds; 0: none (the device's applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_clip_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_to_police: Option<bool>,
}

impl CameraSettings {
    pub fn is_empty(&self) -> bool {
        *self == CameraSettings::default()
    }
}

/// What the owner set for the whole device (absent: the config's value).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_clip_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_case: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_agency_per_day: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_window_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_radius_m: Option<u32>,
}

impl LimitSettings {
    pub fn is_empty(&self) -> bool {
        *self == LimitSettings::default()
    }
}

/// A change to one camera's sharing settings; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSharingUpdate {
    pub level: Option<SharingLevel>,
    /// `[]`: share at all times (no schedule).
    pub schedule: Option<Vec<WindowText>>,
    pub outside_schedule: Option<SharingLevel>,
    /// `"1h"`, a number of seconds, or `"none"` (the device's limit applies).
    pub max_clip: Option<serde_json::Value>,
    pub audio_to_police: Option<bool>,
}

/// A change to the device-wide limits; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsUpdate {
    /// `"2h"` or a number of seconds.
    pub max_clip: Option<serde_json::Value>,
    pub requests_per_case: Option<i64>,
    pub requests_per_agency_per_day: Option<i64>,
    pub max_window: Option<serde_json::Value>,
    pub max_radius_m: Option<i64>,
}

/// What the config says that bounds the owner's choices.
#[derive(Clone, Debug)]
pub struct Facts {
    /// `export.max_clip`: no clip is longer, whatever the policy says.
    pub export_max_clip: Duration,
    /// `policy.min_window` (`max_window` may not go below it).
    pub min_window: Duration,
    /// Whether each camera records audio (`audio` in its table).
    pub audio: BTreeMap<String, bool>,
}

impl Facts {
    pub fn of(config: &Config) -> Facts {
        Facts {
            export_max_clip: config.export.max_clip,
            min_window: config.policy.min_window,
            audio: config
                .cameras
                .iter()
                .map(|c| (c.name.clone(), c.audio))
                .collect(),
        }
    }

    fn has_audio(&self, camera: &str) -> bool {
        self.audio.get(camera).copied().unwrap_or(false)
    }
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ControlError {
    ControlError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A duration given as `"90m"` or a number of seconds.
fn duration_input(field: &str, value: &serde_json::Value) -> Result<Duration, ControlError> {
    match value {
        serde_json::Value::String(text) => parse_duration(text).map_err(|m| invalid(field, m)),
        serde_json::Value::Number(n) => n
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| invalid(field, format!("{n} is not a whole number of seconds"))),
        other => Err(invalid(
            field,
            format!("expected a duration such as \"1h\" or a number of seconds, not {other}"),
        )),
    }
}

/// A clip limit no longer than what export can produce.
fn within_export(field: &str, value: Duration, facts: &Facts) -> Result<(), ControlError> {
    if value > facts.export_max_clip {
        return Err(invalid(
            field,
            format!(
                "must be at most {} (`export.max_clip`: no clip is longer)",
                HumanDuration(facts.export_max_clip)
            ),
        ));
    }
    Ok(())
}

/// Checks a schedule given as text; returns its normalised text form.
pub fn normalise_schedule(windows: &[WindowText]) -> Result<Vec<WindowText>, ControlError> {
    if windows.len() > MAX_SCHEDULE_WINDOWS {
        return Err(invalid(
            "schedule",
            format!("has more than {MAX_SCHEDULE_WINDOWS} windows"),
        ));
    }
    windows
        .iter()
        .enumerate()
        .map(|(j, w)| {
            config::schedule_window_from_text(&w.days, &w.from, &w.to)
                .map(|parsed| window_text(&parsed))
                .map_err(|(part, m)| invalid(format!("schedule[{j}].{part}"), m))
        })
        .collect()
}

fn window_text(w: &crate::policy::ScheduleWindow) -> WindowText {
    WindowText {
        days: w.days().to_string().split(',').map(String::from).collect(),
        from: w.start().to_string(),
        to: w.end().to_string(),
    }
}

/// The schedule of checked text (empty: none, shared at all times).
fn schedule_of(windows: &[WindowText]) -> Result<Option<Schedule>, ControlError> {
    if windows.is_empty() {
        return Ok(None);
    }
    let parsed = windows
        .iter()
        .enumerate()
        .map(|(j, w)| {
            config::schedule_window_from_text(&w.days, &w.from, &w.to)
                .map_err(|(part, m)| invalid(format!("schedule[{j}].{part}"), m))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Schedule::new(parsed)
        .map(Some)
        .map_err(|m| invalid("schedule", m))
}

/// Applies `update` to `settings` for `camera`, checked as the config
/// checks a camera table. `config_policy` is the config's own policy.
pub fn update_camera(
    settings: &mut super::OwnerSettings,
    camera: &str,
    update: &CameraSharingUpdate,
    config_policy: &Policy,
    facts: &Facts,
) -> Result<(), ControlError> {
    let mut own = settings
        .camera_settings
        .get(camera)
        .cloned()
        .unwrap_or_default();
    if let Some(windows) = &update.schedule {
        own.schedule = Some(normalise_schedule(windows)?);
    }
    if let Some(value) = &update.max_clip {
        let none = value
            .as_str()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("none"));
        own.max_clip_s = Some(if none {
            0
        } else {
            let clip = duration_input("max_clip", value)?;
            config::check_camera_clip(clip).map_err(|m| invalid("max_clip", m))?;
            within_export("max_clip", clip, facts)?;
            clip.as_secs()
        });
    }
    if let Some(audio) = update.audio_to_police {
        if audio && !facts.has_audio(camera) {
            return Err(invalid(
                "audio_to_police",
                format!("camera `{camera}` records no audio (`audio = false` in its config), so there is none to share"),
            ));
        }
        own.audio_to_police = Some(audio);
    }
    if let Some(level) = update.outside_schedule {
        own.outside_schedule = Some(level);
    }
    let mut next = settings.clone();
    if let Some(level) = update.level {
        next.sharing.insert(camera.to_string(), level);
    }
    if own.is_empty() {
        next.camera_settings.remove(camera);
    } else {
        next.camera_settings.insert(camera.to_string(), own);
    }
    if let Some(fallback) = update.outside_schedule {
        let policy = apply(config_policy, facts, &next);
        let camera_policy = policy
            .cameras
            .iter()
            .find(|c| c.name == camera)
            .ok_or_else(|| ControlError::UnknownCamera(camera.to_string()))?;
        config::check_outside_schedule(
            camera_policy.level,
            fallback,
            camera_policy.schedule.is_some(),
        )
        .map_err(|m| invalid("outside_schedule", m))?;
    }
    *settings = next;
    Ok(())
}

/// Applies `update` to the device-wide limits, checked as the config's
/// `[policy]` is.
pub fn update_limits(
    settings: &mut super::OwnerSettings,
    update: &LimitsUpdate,
    facts: &Facts,
) -> Result<(), ControlError> {
    let mut limits = settings.limits.clone();
    if let Some(value) = &update.max_clip {
        let clip = duration_input("max_clip", value)?;
        config::check_duration(clip, config::MAX_CLIP_RANGE).map_err(|m| invalid("max_clip", m))?;
        within_export("max_clip", clip, facts)?;
        limits.max_clip_s = Some(clip.as_secs());
    }
    if let Some(n) = update.requests_per_case {
        let n = config::check_count(n, config::MAX_REQUESTS_PER_CASE)
            .map_err(|m| invalid("requests_per_case", m))?;
        limits.requests_per_case = Some(n);
    }
    if let Some(n) = update.requests_per_agency_per_day {
        let n = config::check_count(n, config::MAX_REQUESTS_PER_AGENCY_PER_DAY)
            .map_err(|m| invalid("requests_per_agency_per_day", m))?;
        limits.requests_per_agency_per_day = Some(n);
    }
    if let Some(value) = &update.max_window {
        let window = duration_input("max_window", value)?;
        config::check_duration(window, config::WINDOW_RANGE)
            .and_then(|()| config::check_window_order(facts.min_window, window))
            .map_err(|m| invalid("max_window", m))?;
        limits.max_window_s = Some(window.as_secs());
    }
    if let Some(n) = update.max_radius_m {
        let n =
            config::check_count(n, config::MAX_RADIUS_M).map_err(|m| invalid("max_radius_m", m))?;
        limits.max_radius_m = Some(n);
    }
    settings.limits = limits;
    Ok(())
}

/// The config's policy with the owner's run-time settings applied.
pub fn apply(config_policy: &Policy, facts: &Facts, settings: &super::OwnerSettings) -> Policy {
    let mut policy = config_policy.clone();
    if let Some(privacy) = settings.privacy {
        policy.privacy = privacy;
    }
    let limits = &settings.limits;
    if let Some(s) = limits.max_clip_s {
        policy.max_clip = Duration::from_secs(s).min(facts.export_max_clip);
    }
    if let Some(n) = limits.requests_per_case {
        policy.limits.requests_per_case = n;
    }
    if let Some(n) = limits.requests_per_agency_per_day {
        policy.limits.requests_per_agency_per_day = n;
    }
    if let Some(s) = limits.max_window_s {
        policy.limits.max_window = Duration::from_secs(s).max(policy.limits.min_window);
    }
    if let Some(n) = limits.max_radius_m {
        policy.limits.max_radius_m = n;
    }
    for camera in &mut policy.cameras {
        if let Some(level) = settings.sharing.get(&camera.name) {
            camera.level = *level;
        }
        if let Some(own) = settings.camera_settings.get(&camera.name) {
            apply_camera(camera, own, facts);
        }
        // A schedule's off-hours level may not exceed the level itself.
        camera.outside_schedule = camera.outside_schedule.min(camera.level);
    }
    policy
}

fn apply_camera(camera: &mut CameraPolicy, own: &CameraSettings, facts: &Facts) {
    if let Some(windows) = &own.schedule {
        match schedule_of(windows) {
            Ok(schedule) => camera.schedule = schedule,
            // Checked when set and when loaded; should it ever not parse,
            // the camera shares nothing rather than at all times.
            Err(_) => camera.level = SharingLevel::Off,
        }
    }
    if let Some(level) = own.outside_schedule {
        camera.outside_schedule = level;
    }
    match own.max_clip_s {
        Some(0) => camera.max_clip = None,
        Some(s) => camera.max_clip = Some(Duration::from_secs(s)),
        None => {}
    }
    if let Some(audio) = own.audio_to_police {
        camera.audio_allowed = audio && facts.has_audio(&camera.name);
    }
}

/// Checks saved settings as if they were set now; names the first bad one.
pub fn check_saved(settings: &super::OwnerSettings) -> Result<(), String> {
    for (camera, own) in &settings.camera_settings {
        if let Some(windows) = &own.schedule {
            schedule_of(windows).map_err(|e| format!("camera `{camera}`: {e}"))?;
        }
    }
    Ok(())
}

/// Where a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Config,
    Owner,
}

fn source(owner: bool) -> Source {
    if owner {
        Source::Owner
    } else {
        Source::Config
    }
}

/// One camera's sharing settings as they stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CameraSharingView {
    pub camera: String,
    pub level: SharingLevel,
    /// `[]`: shared at all times.
    pub schedule: Vec<WindowText>,
    /// The schedule as one line per window (`mon,tue 22:00-06:00`).
    pub schedule_text: Vec<String>,
    pub outside_schedule: SharingLevel,
    /// Whether the schedule is open now (always true without one).
    pub schedule_open: bool,
    /// The level in force now.
    pub effective_level: SharingLevel,
    /// The camera's own clip limit (`None`: the device's applies).
    pub max_clip: Option<String>,
    pub max_clip_s: Option<u64>,
    /// The longest clip this camera gives out (its own and the device's).
    pub effective_max_clip_s: u64,
    pub audio_to_police: bool,
    /// Whether the camera records audio at all.
    pub audio_available: bool,
    pub sources: BTreeMap<&'static str, Source>,
}

/// The device-wide limits as they stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitsView {
    pub max_clip: String,
    pub max_clip_s: u64,
    pub requests_per_case: u32,
    pub requests_per_agency_per_day: u32,
    pub min_window: String,
    pub max_window: String,
    pub max_window_s: u64,
    pub max_radius_m: u32,
    pub sources: BTreeMap<&'static str, Source>,
}

/// The ranges the owner may choose from (for forms).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ranges {
    pub max_clip_s: (u64, u64),
    pub max_window_s: (u64, u64),
    pub max_radius_m: (u32, u32),
    pub requests_per_case: (u32, u32),
    pub requests_per_agency_per_day: (u32, u32),
}

/// `GET /api/sharing`: everything that decides what police may get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SharingView {
    pub privacy: bool,
    /// The owner's time zone (schedules are read in it).
    pub timezone: String,
    pub cameras: Vec<CameraSharingView>,
    pub limits: LimitsView,
    pub ranges: Ranges,
}

pub fn camera_view(
    camera: &CameraPolicy,
    policy: &Policy,
    settings: &super::OwnerSettings,
    facts: &Facts,
    now_us: i64,
) -> CameraSharingView {
    let own = settings.camera_settings.get(&camera.name);
    let owner = |f: fn(&CameraSettings) -> bool| own.is_some_and(f);
    let schedule = camera.schedule.as_ref();
    let schedule_open = schedule.is_none_or(|s| s.is_active(&policy.timezone, now_us));
    let effective_max_clip = camera
        .max_clip
        .map_or(policy.max_clip, |m| m.min(policy.max_clip));
    CameraSharingView {
        camera: camera.name.clone(),
        level: camera.level,
        schedule: schedule.map_or_else(Vec::new, |s| s.windows().iter().map(window_text).collect()),
        schedule_text: schedule.map_or_else(Vec::new, |s| {
            s.windows().iter().map(|w| w.to_string()).collect()
        }),
        outside_schedule: camera.outside_schedule,
        schedule_open,
        effective_level: camera.effective_level(&policy.timezone, now_us),
        max_clip: camera.max_clip.map(|d| HumanDuration(d).to_string()),
        max_clip_s: camera.max_clip.map(|d| d.as_secs()),
        effective_max_clip_s: effective_max_clip.as_secs(),
        audio_to_police: camera.audio_allowed,
        audio_available: facts.has_audio(&camera.name),
        sources: BTreeMap::from([
            ("level", source(settings.sharing.contains_key(&camera.name))),
            ("schedule", source(owner(|o| o.schedule.is_some()))),
            (
                "outside_schedule",
                source(owner(|o| o.outside_schedule.is_some())),
            ),
            ("max_clip", source(owner(|o| o.max_clip_s.is_some()))),
            (
                "audio_to_police",
                source(owner(|o| o.audio_to_police.is_some())),
            ),
        ]),
    }
}

pub fn limits_view(policy: &Policy, settings: &super::OwnerSettings) -> LimitsView {
    let l = &policy.limits;
    let own = &settings.limits;
    LimitsView {
        max_clip: HumanDuration(policy.max_clip).to_string(),
        max_clip_s: policy.max_clip.as_secs(),
        requests_per_case: l.requests_per_case,
        requests_per_agency_per_day: l.requests_per_agency_per_day,
        min_window: HumanDuration(l.min_window).to_string(),
        max_window: HumanDuration(l.max_window).to_string(),
        max_window_s: l.max_window.as_secs(),
        max_radius_m: l.max_radius_m,
        sources: BTreeMap::from([
            ("max_clip", source(own.max_clip_s.is_some())),
            ("requests_per_case", source(own.requests_per_case.is_some())),
            (
                "requests_per_agency_per_day",
                source(own.requests_per_agency_per_day.is_some()),
            ),
            ("max_window", source(own.max_window_s.is_some())),
            ("max_radius_m", source(own.max_radius_m.is_some())),
        ]),
    }
}

pub fn view(
    policy: &Policy,
    settings: &super::OwnerSettings,
    facts: &Facts,
    timezone: &str,
    now_us: i64,
) -> SharingView {
    SharingView {
        privacy: policy.privacy,
        timezone: timezone.to_string(),
        cameras: policy
            .cameras
            .iter()
            .map(|c| camera_view(c, policy, settings, facts, now_us))
            .collect(),
        limits: limits_view(policy, settings),
        ranges: Ranges {
            max_clip_s: (
                config::MAX_CLIP_RANGE.0.as_secs(),
                config::MAX_CLIP_RANGE
                    .1
                    .min(facts.export_max_clip)
                    .as_secs(),
            ),
            max_window_s: (
                facts.min_window.max(config::WINDOW_RANGE.0).as_secs(),
                config::WINDOW_RANGE.1.as_secs(),
            ),
            max_radius_m: (1, config::MAX_RADIUS_M),
            requests_per_case: (1, config::MAX_REQUESTS_PER_CASE),
            requests_per_agency_per_day: (1, config::MAX_REQUESTS_PER_AGENCY_PER_DAY),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::OwnerSettings;

    const CONFIG: &str = r#"
data_dir = "/tmp/porchlight-settings-test"
[policy]
timezone = "UTC"
[export]
max_clip = "2h"
[[cameras]]
name = "porch"
url = "rtsp://192.168.1.20:554/stream1"
sharing = "emergency_auto"
location = { lat = 32.7767, lon = -96.7970 }
audio_to_police = true
schedule = [{ days = "mon-fri", from = "22:00", to = "06:00" }]
outside_schedule = "registered"
[[cameras]]
name = "garage"
url = "rtsp://192.168.1.21:554/stream1"
audio = false
"#;

    fn setup() -> (Config, Policy, Facts) {
        let config = Config::parse(CONFIG, None).expect("valid config");
        let policy = Policy::from_config(&config);
        let facts = Facts::of(&config);
        (config, policy, facts)
    }

    fn camera<'a>(policy: &'a Policy, name: &str) -> &'a CameraPolicy {
        policy
            .cameras
            .iter()
            .find(|c| c.name == name)
            .expect("camera")
    }

    fn update(json: serde_json::Value) -> CameraSharingUpdate {
        serde_json::from_value(json).expect("update")
    }

    fn field_of(e: ControlError) -> String {
        match e {
            ControlError::Invalid { field, .. } => field,
            other => panic!("not an input error: {other}"),
        }
    }

    #[test]
    fn an_old_settings_file_loads_and_keeps_its_meaning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = CONFIG.replace(
            "/tmp/porchlight-settings-test",
            &dir.path().display().to_string(),
        );
        let config = Config::parse(&text, None).expect("config");
        // Written by the daemon before the sharing settings existed.
        std::fs::write(
            dir.path().join("owner-settings.json"),
            r#"{"privacy": true, "sharing": {"porch": "on_request"}, "recording_off": ["garage"]}"#,
        )
        .expect("write");
        let settings = crate::controls::read_settings(&config).expect("old file loads");
        assert!(settings.camera_settings.is_empty() && settings.limits.is_empty());
        let policy = apply(
            &Policy::from_config(&config),
            &Facts::of(&config),
            &settings,
        );
        assert!(policy.privacy);
        let porch = camera(&policy, "porch");
        assert_eq!(porch.level, SharingLevel::OnRequest);
        assert!(porch.schedule.is_some(), "the config's schedule stays");
        assert_eq!(porch.outside_schedule, SharingLevel::Registered);
        // And a file with a schedule that does not parse is refused by name.
        std::fs::write(
            dir.path().join("owner-settings.json"),
            r#"{"camera_settings": {"porch": {"schedule": [{"days": ["funday"], "from": "08:00", "to": "09:00"}]}}}"#,
        )
        .expect("write");
        let error = crate::controls::read_settings(&config).expect_err("bad schedule");
        assert!(error.to_string().contains("owner-settings.json"), "{error}");
        assert!(error.to_string().contains("funday"), "{error}");
    }

    #[test]
    fn a_schedule_is_set_in_the_configs_text_form_and_cleared() {
        let (_, config_policy, facts) = setup();
        let mut settings = OwnerSettings::default();
        update_camera(
            &mut settings,
            "porch",
            &update(serde_json::json!({
                "schedule": [{"days": ["sat", "sun"], "from": "00:00", "to": "24:00"},
                             {"days": "mon-fri", "from": "18:00", "to": "07:00"}],
                "outside_schedule": "off",
            })),
            &config_policy,
            &facts,
        )
        .expect("valid");
        let policy = apply(&config_policy, &facts, &settings);
        let porch = camera(&policy, "porch");
        let schedule = porch.schedule.as_ref().expect("a schedule");
        assert_eq!(schedule.windows().len(), 2);
        assert_eq!(schedule.windows()[0].to_string(), "sat,sun 00:00-24:00");
        assert_eq!(porch.outside_schedule, SharingLevel::Off);
        // 2026-11-25 is a Wednesday: noon is outside, 20:00 inside.
        let noon = crate::time::parse_utc_us("2026-11-25T12:00:00Z").expect("time");
        let evening = crate::time::parse_utc_us("2026-11-25T20:00:00Z").expect("time");
        assert_eq!(
            porch.effective_level(&policy.timezone, noon),
            SharingLevel::Off
        );
        assert_eq!(
            porch.effective_level(&policy.timezone, evening),
            SharingLevel::EmergencyAuto
        );

        // Clearing: shared at all times, even where the config had a schedule.
        update_camera(
            &mut settings,
            "porch",
            &update(serde_json::json!({ "schedule": [] })),
            &config_policy,
            &facts,
        )
        .expect("valid");
        let policy = apply(&config_policy, &facts, &settings);
        assert!(camera(&policy, "porch").schedule.is_none());
        assert_eq!(
            camera(&policy, "porch").effective_level(&policy.timezone, noon),
            SharingLevel::EmergencyAuto
        );
        let view = view(&policy, &settings, &facts, "UTC", noon);
        assert!(view.cameras[0].schedule.is_empty() && view.cameras[0].schedule_open);
        assert_eq!(view.cameras[0].sources["schedule"], Source::Owner);
        assert_eq!(view.cameras[0].sources["level"], Source::Config);
    }

    #[test]
    fn lowering_the_level_below_the_off_hours_level_clamps_it() {
        let (_, config_policy, facts) = setup();
        let mut settings = OwnerSettings::default();
        settings
            .sharing
            .insert("porch".into(), SharingLevel::Registered);
        let policy = apply(&config_policy, &facts, &settings);
        let porch = camera(&policy, "porch");
        assert_eq!(porch.level, SharingLevel::Registered);
        assert_eq!(porch.outside_schedule, SharingLevel::Registered);
        settings.sharing.insert("porch".into(), SharingLevel::Off);
        let policy = apply(&config_policy, &facts, &settings);
        assert_eq!(camera(&policy, "porch").outside_schedule, SharingLevel::Off);
    }

    #[test]
    fn clip_limits_and_audio_apply_to_the_gate() {
        let (_, config_policy, facts) = setup();
        let mut settings = OwnerSettings::default();
        update_camera(
            &mut settings,
            "porch",
            &update(serde_json::json!({ "max_clip": "20m", "audio_to_police": false })),
            &config_policy,
            &facts,
        )
        .expect("valid");
        update_limits(
            &mut settings,
            &serde_json::from_value(serde_json::json!({
                "max_clip": 3600, "requests_per_agency_per_day": 1, "max_window": "1h",
                "max_radius_m": 100, "requests_per_case": 1,
            }))
            .expect("limits"),
            &facts,
        )
        .expect("valid");
        let policy = apply(&config_policy, &facts, &settings);
        let porch = camera(&policy, "porch");
        assert_eq!(porch.max_clip, Some(Duration::from_secs(1200)));
        assert!(!porch.audio_allowed);
        assert_eq!(policy.max_clip, Duration::from_secs(3600));
        assert_eq!(policy.limits.requests_per_agency_per_day, 1);
        assert_eq!(policy.limits.requests_per_case, 1);
        assert_eq!(policy.limits.max_window, Duration::from_secs(3600));
        assert_eq!(policy.limits.max_radius_m, 100);
        // "none": the camera's own limit goes, the device's applies.
        update_camera(
            &mut settings,
            "porch",
            &update(serde_json::json!({ "max_clip": "none" })),
            &config_policy,
            &facts,
        )
        .expect("valid");
        let policy = apply(&config_policy, &facts, &settings);
        assert_eq!(camera(&policy, "porch").max_clip, None);
        let round_trip: OwnerSettings =
            serde_json::from_str(&serde_json::to_string(&settings).expect("json")).expect("back");
        assert_eq!(round_trip, settings);
    }

    #[test]
    fn bad_input_is_refused_with_the_field_named() {
        let (_, config_policy, facts) = setup();
        let camera_cases = [
            (
                serde_json::json!({"schedule": [{"days": "funday", "from": "08:00", "to": "09:00"}]}),
                "schedule[0].days",
            ),
            (
                serde_json::json!({"schedule": [{"days": "mon", "from": "8:00", "to": "09:00"}]}),
                "schedule[0].from",
            ),
            (
                serde_json::json!({"schedule": [{"from": "08:00", "to": "24:30"}]}),
                "schedule[0].to",
            ),
            (
                serde_json::json!({"schedule": [{"from": "08:00", "to": "09:00"}, {"from": "08:00", "to": "08:00"}]}),
                "schedule[1].to",
            ),
            (serde_json::json!({"max_clip": "30s"}), "max_clip"),
            (serde_json::json!({"max_clip": "3h"}), "max_clip"),
            (serde_json::json!({"max_clip": "soon"}), "max_clip"),
            (serde_json::json!({"max_clip": true}), "max_clip"),
            (
                serde_json::json!({"outside_schedule": "emergency_live"}),
                "outside_schedule",
            ),
        ];
        for (json, field) in camera_cases {
            let mut settings = OwnerSettings::default();
            let e = update_camera(
                &mut settings,
                "porch",
                &update(json.clone()),
                &config_policy,
                &facts,
            )
            .expect_err("refused");
            assert_eq!(field_of(e), field, "{json}");
            assert_eq!(
                settings,
                OwnerSettings::default(),
                "nothing changed: {json}"
            );
        }
        // The garage records no audio, and has no schedule for an off-hours level.
        let mut settings = OwnerSettings::default();
        let e = update_camera(
            &mut settings,
            "garage",
            &update(serde_json::json!({"audio_to_police": true})),
            &config_policy,
            &facts,
        )
        .expect_err("no audio");
        assert!(e.to_string().contains("records no audio"), "{e}");
        assert_eq!(field_of(e), "audio_to_police");
        let e = update_camera(
            &mut settings,
            "garage",
            &update(serde_json::json!({"outside_schedule": "off"})),
            &config_policy,
            &facts,
        )
        .expect_err("no schedule");
        assert!(e.to_string().contains("schedule"), "{e}");

        let limit_cases = [
            (serde_json::json!({"max_clip": "13h"}), "max_clip"),
            (serde_json::json!({"max_clip": "30s"}), "max_clip"),
            (
                serde_json::json!({"requests_per_case": 0}),
                "requests_per_case",
            ),
            (
                serde_json::json!({"requests_per_case": 11}),
                "requests_per_case",
            ),
            (
                serde_json::json!({"requests_per_agency_per_day": 1001}),
                "requests_per_agency_per_day",
            ),
            (serde_json::json!({"max_window": "10m"}), "max_window"),
            (serde_json::json!({"max_window": "13h"}), "max_window"),
            (serde_json::json!({"max_radius_m": 401}), "max_radius_m"),
            (serde_json::json!({"max_radius_m": -5}), "max_radius_m"),
        ];
        for (json, field) in limit_cases {
            let mut settings = OwnerSettings::default();
            let update: LimitsUpdate = serde_json::from_value(json.clone()).expect("shape");
            let e = update_limits(&mut settings, &update, &facts).expect_err("refused");
            assert_eq!(field_of(e), field, "{json}");
        }
        // A window past midnight is the config's night window, not an error.
        let mut settings = OwnerSettings::default();
        update_camera(
            &mut settings,
            "porch",
            &update(
                serde_json::json!({"schedule": [{"days": "fri", "from": "22:00", "to": "06:00"}]}),
            ),
            &config_policy,
            &facts,
        )
        .expect("night window");
    }
}
