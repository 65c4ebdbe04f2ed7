//! Validation of the police-sharing keys: `[policy]`, `[relay]` and each
//! camera's `sharing`, `location`, `schedule`, ... The policy module turns
//! the result into a [`crate::policy::Policy`].

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;
use toml::Spanned;

use super::raw::{RawCamera, RawPolicy, RawRelay};
use super::units::HumanDuration;
use super::ConfigError;
use crate::policy::{GeoPoint, Schedule, ScheduleWindow, SharingLevel, TimeOfDay, Weekdays};

/// Builds a located error: key path, span of the offending value, message.
pub(super) type ErrorAt<'a> = &'a dyn Fn(String, Option<Range<usize>>, String) -> ConfigError;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// `policy.max_clip`'s range (further capped by `export.max_clip`).
pub const MAX_CLIP_RANGE: (Duration, Duration) = (MINUTE, Duration::from_secs(12 * 3600));
/// `policy.min_window` / `policy.max_window`: owners may tighten the request
/// window limits, never loosen them beyond these.
pub const WINDOW_RANGE: (Duration, Duration) =
    (Duration::from_secs(15 * 60), Duration::from_secs(12 * 3600));
/// Largest `policy.max_radius_m`.
pub const MAX_RADIUS_M: u32 = 400;
/// Largest `policy.requests_per_case`.
pub const MAX_REQUESTS_PER_CASE: u32 = 10;
/// Largest `policy.requests_per_agency_per_day`.
pub const MAX_REQUESTS_PER_AGENCY_PER_DAY: u32 = 1000;
/// Shortest `max_clip_to_police` of a camera.
pub const MIN_CAMERA_CLIP: Duration = MINUTE;

/// The range check of every duration key: the problem, without the key.
pub fn check_duration(value: Duration, range: (Duration, Duration)) -> Result<(), String> {
    if value < range.0 || value > range.1 {
        return Err(format!(
            "must be between {} and {}",
            HumanDuration(range.0),
            HumanDuration(range.1)
        ));
    }
    Ok(())
}

/// The range check of every count key (1 to `max`).
pub fn check_count(value: i64, max: u32) -> Result<u32, String> {
    match u32::try_from(value) {
        Ok(v) if (1..=max).contains(&v) => Ok(v),
        _ => Err(format!("must be between 1 and {max}")),
    }
}

/// `max_window` may not be shorter than `min_window`.
pub fn check_window_order(min_window: Duration, max_window: Duration) -> Result<(), String> {
    if min_window > max_window {
        return Err(format!(
            "is shorter than policy.min_window ({})",
            HumanDuration(min_window)
        ));
    }
    Ok(())
}

/// A camera's `max_clip_to_police`: at least a minute.
pub fn check_camera_clip(value: Duration) -> Result<(), String> {
    if value < MIN_CAMERA_CLIP {
        return Err(format!(
            "must be at least {}",
            HumanDuration(MIN_CAMERA_CLIP)
        ));
    }
    Ok(())
}

/// `outside_schedule`: only with a schedule, and lower than the level
/// (unless the level is `off`, where nothing is shared anyway).
pub fn check_outside_schedule(
    level: SharingLevel,
    fallback: SharingLevel,
    has_schedule: bool,
) -> Result<(), String> {
    if !has_schedule {
        return Err("only applies together with a `schedule`".into());
    }
    if fallback >= level && level != SharingLevel::Off {
        return Err(format!(
            "\"{fallback}\" must be lower than `sharing` (\"{level}\"): outside the schedule the camera shares less"
        ));
    }
    Ok(())
}

/// One schedule window from its text parts (`days` entries as
/// [`Weekdays::parse`], `from`/`to` as [`TimeOfDay::parse`]); errors name
/// the part (`days`, `from`, `to`) that is wrong.
pub fn schedule_window_from_text(
    days: &[String],
    from: &str,
    to: &str,
) -> Result<ScheduleWindow, (&'static str, String)> {
    let mut set = Weekdays::from_days([]);
    for entry in days {
        let parsed = Weekdays::parse(entry).map_err(|m| ("days", m))?;
        set = Weekdays::from_days(set.iter().chain(parsed.iter()));
    }
    if days.is_empty() {
        set = Weekdays::EVERY_DAY;
    }
    let from = TimeOfDay::parse(from).map_err(|m| ("from", m))?;
    let to = TimeOfDay::parse(to).map_err(|m| ("to", m))?;
    ScheduleWindow::new(set, from, to).map_err(|m| ("to", m))
}

/// `[policy]`, validated.
#[derive(Clone, Debug)]
pub struct PolicyConfig {
    /// The privacy switch: while true, nothing goes to police.
    pub privacy: bool,
    pub timezone: TimeZone,
    /// The `timezone` key as written, if it was.
    pub timezone_name: Option<String>,
    pub max_clip: Duration,
    pub min_window: Duration,
    pub max_window: Duration,
    pub max_radius_m: u32,
    pub requests_per_case: u32,
    pub requests_per_agency_per_day: u32,
    pub approval_expiry: Duration,
    pub download_expiry: Duration,
    /// Longest a live share to the relay lasts before it ends by itself.
    pub live_share_max: Duration,
}

/// `[relay]`, validated. `listen = None` means the relay is disabled.
#[derive(Clone, Debug, Default)]
pub struct RelayConfig {
    pub listen: Option<SocketAddr>,
    /// PEM file of the CA that signs agency client certificates (existence
    /// is checked when the listener starts).
    pub agency_ca: Option<PathBuf>,
    /// Calls one agency certificate may make per minute (60 by default).
    pub calls_per_minute: u32,
    /// The relay's registry (absent: this box is not listed anywhere).
    pub registry: Option<RegistryConfig>,
    /// The relay this box dials out to (`uplink`), serving the relay API
    /// over that connection: no inbound port needed.
    pub uplink: Option<UplinkTarget>,
    /// The longest wait between two uplink attempts (30 s by default).
    pub uplink_retry_max: Duration,
}

/// `[relay] registry_url` and friends: where this box lists its cameras.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// `https://…`, the registry's base URL.
    pub url: url::Url,
    /// PEM of the CA the registry's server certificate chains to (pinned;
    /// defaults to `agency_ca`).
    pub ca: PathBuf,
    /// Decimals the cameras' coordinates are rounded to before they leave
    /// the box (0–3; 2 by default, about 1.1 km).
    pub location_decimals: u8,
    /// How the agency may address the owner (an alias, never a name).
    pub contact_alias: Option<String>,
}

/// Longest `direction`, `field_of_view` and `contact_alias`, in characters.
pub const MAX_REGISTRY_TEXT: usize = 200;

/// Free text that goes to the registry: one line, bounded, nothing that
/// would read differently on another screen.
pub(super) fn registry_text(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("must not be empty (leave the key out instead)".into());
    }
    if value.chars().count() > MAX_REGISTRY_TEXT {
        return Err(format!("is longer than {MAX_REGISTRY_TEXT} characters"));
    }
    if value.chars().any(|c| {
        c.is_control()
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}')
    }) {
        return Err("must be one line without control or text-direction characters".into());
    }
    Ok(value.to_string())
}

/// Where the uplink dials: an `https` URL, checked when the config loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UplinkTarget {
    pub url: url::Url,
    /// The name the relay's certificate must carry (DNS name or IP address).
    pub host: String,
    pub port: u16,
    /// Path and query of the upgrade request.
    pub path: String,
}

/// Parses `[relay] uplink`: `https://host[:port]/path`, nothing else.
pub fn parse_uplink_url(text: &str) -> Result<UplinkTarget, String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "must be an https URL (the uplink is always TLS), not `{}`",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".into());
    }
    let host = match url.host() {
        Some(url::Host::Domain(name)) => name.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err("names no host".into()),
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    Ok(UplinkTarget {
        url,
        host,
        port,
        path,
    })
}

/// One camera's police-sharing settings.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraSharing {
    pub level: SharingLevel,
    pub location: Option<GeoPoint>,
    pub audio_to_police: bool,
    pub schedule: Option<Schedule>,
    /// The level outside the schedule.
    pub outside_schedule: SharingLevel,
    pub max_clip: Option<Duration>,
    /// Which way the camera looks, as the owner describes it (registry).
    pub direction: Option<String>,
    /// What it sees, as the owner describes it (registry).
    pub field_of_view: Option<String>,
}

fn duration_key(
    key: &str,
    value: Option<Spanned<HumanDuration>>,
    default: Duration,
    range: (Duration, Duration),
    error: ErrorAt,
) -> Result<(Duration, Range<usize>), ConfigError> {
    let Some(value) = value else {
        return Ok((default, 0..0));
    };
    let (d, span) = (value.get_ref().0, value.span());
    check_duration(d, range).map_err(|m| error(key.into(), Some(span.clone()), m))?;
    Ok((d, span))
}

fn count_key(
    key: &str,
    value: Option<Spanned<u32>>,
    default: u32,
    max: u32,
    error: ErrorAt,
) -> Result<u32, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => check_count(i64::from(*v.get_ref()), max)
            .map_err(|m| error(key.into(), Some(v.span()), m)),
    }
}

pub(super) fn validate_policy(raw: RawPolicy, error: ErrorAt) -> Result<PolicyConfig, ConfigError> {
    let (timezone, timezone_name) = match raw.timezone {
        Some(name) => {
            let tz = TimeZone::get(name.get_ref()).map_err(|e| {
                error(
                    "policy.timezone".into(),
                    Some(name.span()),
                    format!(
                        "unknown time zone `{}` (use an IANA name such as \"America/Chicago\" or \"UTC\"): {e}",
                        name.get_ref()
                    ),
                )
            })?;
            (tz, Some(name.into_inner()))
        }
        // The box sits in the owner's home: its clock's zone is theirs.
        None => (TimeZone::try_system().unwrap_or(TimeZone::UTC), None),
    };
    // Owners may tighten the request window limits, never loosen them.
    let window_range = WINDOW_RANGE;
    let (min_window, _) = duration_key(
        "policy.min_window",
        raw.min_window,
        window_range.0,
        window_range,
        error,
    )?;
    let (max_window, max_span) = duration_key(
        "policy.max_window",
        raw.max_window,
        window_range.1,
        window_range,
        error,
    )?;
    check_window_order(min_window, max_window)
        .map_err(|m| error("policy.max_window".into(), Some(max_span), m))?;
    let max_radius_m = count_key(
        "policy.max_radius_m",
        raw.max_radius_m,
        MAX_RADIUS_M,
        MAX_RADIUS_M,
        error,
    )?;
    Ok(PolicyConfig {
        privacy: raw.privacy.unwrap_or(false),
        timezone,
        timezone_name,
        max_clip: duration_key(
            "policy.max_clip",
            raw.max_clip,
            MAX_CLIP_RANGE.1,
            MAX_CLIP_RANGE,
            error,
        )?
        .0,
        min_window,
        max_window,
        max_radius_m,
        requests_per_case: count_key(
            "policy.requests_per_case",
            raw.requests_per_case,
            2,
            MAX_REQUESTS_PER_CASE,
            error,
        )?,
        requests_per_agency_per_day: count_key(
            "policy.requests_per_agency_per_day",
            raw.requests_per_agency_per_day,
            20,
            MAX_REQUESTS_PER_AGENCY_PER_DAY,
            error,
        )?,
        approval_expiry: duration_key(
            "policy.approval_expiry",
            raw.approval_expiry,
            DAY,
            (MINUTE, 30 * DAY),
            error,
        )?
        .0,
        download_expiry: duration_key(
            "policy.download_expiry",
            raw.download_expiry,
            3 * DAY,
            (MINUTE, 30 * DAY),
            error,
        )?
        .0,
        // Seconds are allowed so tests and demos can watch a share expire;
        // an hour is the most any owner may grant.
        live_share_max: duration_key(
            "policy.live_share_max",
            raw.live_share_max,
            15 * MINUTE,
            (Duration::from_secs(5), HOUR),
            error,
        )?
        .0,
    })
}

pub(super) fn validate_relay(
    raw: RawRelay,
    http_bind: SocketAddr,
    base_dir: Option<&Path>,
    error: ErrorAt,
) -> Result<RelayConfig, ConfigError> {
    let agency_ca = match raw.agency_ca {
        Some(path) if path.get_ref().trim().is_empty() => {
            return Err(error(
                "relay.agency_ca".into(),
                Some(path.span()),
                "must not be empty".into(),
            ))
        }
        Some(path) => {
            let mut resolved = PathBuf::from(path.into_inner());
            if resolved.is_relative() {
                if let Some(base) = base_dir {
                    resolved = base.join(resolved);
                }
            }
            Some(resolved)
        }
        None => None,
    };
    let uplink = match raw.uplink {
        Some(text) => {
            if agency_ca.is_none() {
                return Err(error(
                    "relay.agency_ca".into(),
                    Some(text.span()),
                    "is required when `relay.uplink` is set: the box only dials a relay whose certificate the pinned agency CA signed".into(),
                ));
            }
            Some(
                parse_uplink_url(text.get_ref())
                    .map_err(|e| error("relay.uplink".into(), Some(text.span()), e))?,
            )
        }
        None => None,
    };
    let (uplink_retry_max, _) = duration_key(
        "relay.uplink_retry_max",
        raw.uplink_retry_max,
        Duration::from_secs(30),
        (Duration::from_secs(1), 10 * MINUTE),
        error,
    )?;
    let listen = match raw.listen {
        Some(listen) => {
            if agency_ca.is_none() {
                return Err(error(
                    "relay.agency_ca".into(),
                    Some(listen.span()),
                    "is required when `relay.listen` is set: the relay only talks to agencies with a client certificate".into(),
                ));
            }
            if *listen.get_ref() == http_bind {
                return Err(error(
                    "relay.listen".into(),
                    Some(listen.span()),
                    format!(
                        "{} is already the owner API's `http.bind`",
                        listen.get_ref()
                    ),
                ));
            }
            Some(listen.into_inner())
        }
        None => None,
    };
    let calls_per_minute = match raw.calls_per_minute {
        Some(n) if !(1..=100_000).contains(n.get_ref()) => {
            return Err(error(
                "relay.calls_per_minute".into(),
                Some(n.span()),
                format!("{} is not between 1 and 100000", n.get_ref()),
            ))
        }
        Some(n) => *n.get_ref() as u32,
        None => 60,
    };
    let resolve = |path: String| {
        let mut resolved = PathBuf::from(path);
        if resolved.is_relative() {
            if let Some(base) = base_dir {
                resolved = base.join(resolved);
            }
        }
        resolved
    };
    let registry = match raw.registry_url {
        None => {
            for (key, present) in [
                (
                    "relay.registry_ca",
                    raw.registry_ca.as_ref().map(|v| v.span()),
                ),
                (
                    "relay.contact_alias",
                    raw.contact_alias.as_ref().map(|v| v.span()),
                ),
                (
                    "relay.location_decimals",
                    raw.location_decimals.as_ref().map(|v| v.span()),
                ),
            ] {
                if let Some(span) = present {
                    return Err(error(
                        key.into(),
                        Some(span),
                        "only applies together with `relay.registry_url`".into(),
                    ));
                }
            }
            None
        }
        Some(url) => {
            let span = url.span();
            let parsed = url::Url::parse(url.get_ref()).map_err(|e| {
                error(
                    "relay.registry_url".into(),
                    Some(span.clone()),
                    format!("`{}` is not a URL: {e}", url.get_ref()),
                )
            })?;
            if parsed.scheme() != "https" || parsed.host_str().is_none() {
                return Err(error(
                    "relay.registry_url".into(),
                    Some(span),
                    format!("must be an https URL with a host, not `{}`", url.get_ref()),
                ));
            }
            let ca = match raw.registry_ca {
                Some(path) if path.get_ref().trim().is_empty() => {
                    return Err(error(
                        "relay.registry_ca".into(),
                        Some(path.span()),
                        "must not be empty".into(),
                    ))
                }
                Some(path) => resolve(path.into_inner()),
                None => agency_ca.clone().ok_or_else(|| {
                    error(
                        "relay.registry_ca".into(),
                        Some(span.clone()),
                        "is required with `relay.registry_url` (or set `relay.agency_ca`): the registry's CA is pinned".into(),
                    )
                })?,
            };
            let location_decimals = match raw.location_decimals {
                Some(d) if !(0..=3).contains(d.get_ref()) => {
                    return Err(error(
                        "relay.location_decimals".into(),
                        Some(d.span()),
                        format!(
                            "{} is not between 0 and 3 (3 decimals is about 110 m, the finest the registry gets)",
                            d.get_ref()
                        ),
                    ))
                }
                Some(d) => *d.get_ref() as u8,
                None => 2,
            };
            let contact_alias = match raw.contact_alias {
                Some(alias) => Some(
                    registry_text(alias.get_ref())
                        .map_err(|m| error("relay.contact_alias".into(), Some(alias.span()), m))?,
                ),
                None => None,
            };
            Some(RegistryConfig {
                url: parsed,
                ca,
                location_decimals,
                contact_alias,
            })
        }
    };
    Ok(RelayConfig {
        listen,
        agency_ca,
        calls_per_minute,
        registry,
        uplink,
        uplink_retry_max,
    })
}

/// Takes the sharing keys out of one `[[cameras]]` table.
pub(super) fn validate_camera_sharing(
    i: usize,
    cam: &mut RawCamera,
    error: ErrorAt,
) -> Result<CameraSharing, ConfigError> {
    let key = |field: &str| format!("cameras[{i}].{field}");
    let (level, level_span) = match cam.sharing.take() {
        Some(level) => (*level.get_ref(), Some(level.span())),
        None => (SharingLevel::Off, None),
    };

    let location = match cam.location.take() {
        Some(location) => {
            let span = location.span();
            let point = location.into_inner();
            Some(
                GeoPoint::new(point.lat, point.lon)
                    .map_err(|m| error(key("location"), Some(span), m))?,
            )
        }
        None => None,
    };
    if level != SharingLevel::Off && location.is_none() {
        return Err(error(
            key("location"),
            level_span,
            format!("sharing = \"{level}\" needs the camera's `location = {{ lat = .., lon = .. }}` (requests are matched by distance)"),
        ));
    }

    let schedule = match cam.schedule.take() {
        Some(list) => {
            let list_span = list.span();
            let mut windows = Vec::new();
            for (j, w) in list.into_inner().into_iter().enumerate() {
                let from_span = w.from.span();
                let window = ScheduleWindow::new(
                    w.days.unwrap_or(Weekdays::EVERY_DAY),
                    w.from.into_inner(),
                    w.to,
                )
                .map_err(|m| error(key(&format!("schedule[{j}]")), Some(from_span), m))?;
                windows.push(window);
            }
            Some(Schedule::new(windows).map_err(|m| error(key("schedule"), Some(list_span), m))?)
        }
        None => None,
    };

    let outside_schedule = match cam.outside_schedule.take() {
        Some(fallback) => {
            check_outside_schedule(level, *fallback.get_ref(), schedule.is_some())
                .map_err(|m| error(key("outside_schedule"), Some(fallback.span()), m))?;
            *fallback.get_ref()
        }
        None => SharingLevel::Off,
    };

    let max_clip = match cam.max_clip_to_police.take() {
        Some(max) => {
            check_camera_clip(max.get_ref().0)
                .map_err(|m| error(key("max_clip_to_police"), Some(max.span()), m))?;
            Some(max.get_ref().0)
        }
        None => None,
    };

    let text_key = |field: &str, value: Option<Spanned<String>>| match value {
        Some(v) => registry_text(v.get_ref())
            .map(Some)
            .map_err(|m| error(key(field), Some(v.span()), m)),
        None => Ok(None),
    };
    let direction = text_key("direction", cam.direction.take())?;
    let field_of_view = text_key("field_of_view", cam.field_of_view.take())?;

    Ok(CameraSharing {
        direction,
        field_of_view,
        level,
        location,
        audio_to_police: cam.audio_to_police.unwrap_or(false),
        schedule,
        outside_schedule: outside_schedule.min(level),
        max_clip,
    })
}
