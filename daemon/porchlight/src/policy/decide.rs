//! The owner's gate: one pure function that every relay path goes through.
//!
//! [`decide`] reads the sharing level only from the owner's [`Policy`];
//! nothing in the request can raise it. It does no I/O and keeps no state:
//! the request history (for rate limits) and the clock come in as arguments,
//! so the same inputs always give the same answer and the tests can try
//! thousands of them.
//!
//! # Truth table
//!
//! Rules apply in this order; the first that matches decides. "Level" is the
//! camera's configured level, "effective level" the level after its schedule
//! (outside every window: `outside_schedule`, never more than the level).
//!
//! | # | condition | outcome for the camera |
//! |---|---|---|
//! | 1 | privacy switch on | `Refuse(privacy_mode)` (every camera) |
//! | 2 | earlier requests for this case ≥ `requests_per_case` | `Refuse(case_limit_reached)` (every camera) |
//! | 3 | agency's requests in the last 24 h ≥ `requests_per_agency_per_day` | `Refuse(agency_daily_limit_reached)` (every camera) |
//! | 4 | window or radius beyond the current limits | `Refuse(outside_limits)` (every camera) |
//! | 5 | camera named by the request but not configured | `Refuse(unknown_camera)` |
//! | 6 | request names cameras and not this one | `Refuse(not_named)` |
//! | 7 | level `off` | `Refuse(sharing_off)` |
//! | 8 | no registered location | `Refuse(no_location)` |
//! | 9 | camera farther than the radius from the incident | `Refuse(outside_radius)` |
//! | 10 | effective level `off` | `Refuse(outside_schedule)` |
//! | 11 | effective level `registered` | `ShowToOwnerOnly` |
//! | 12 | effective level `on_request` | `AwaitOwner` |
//! | 13 | effective level `emergency_*`, basis not `emergency` | `AwaitOwner` |
//! | 14 | effective level `emergency_*`, basis `emergency` | `Serve` |
//!
//! `Serve` and `AwaitOwner` carry the request window cut to the camera's
//! max clip length (keeping its start) and `audio = audio_to_police`. The
//! owner is told of every decision; of a `Serve` at once.

use std::time::Duration;

use jiff::tz::TimeZone;
use serde::Serialize;

use super::geo::GeoPoint;
use super::level::SharingLevel;
use super::request::{RequestLimits, ValidatedRequest};
use super::schedule::Schedule;
use super::window::{duration_us, TimeWindow};

/// What the owner allows, for the whole device.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The privacy switch: while on, nothing is shared, whatever else says.
    pub privacy: bool,
    /// The owner's time zone, for schedules.
    pub timezone: TimeZone,
    /// Longest clip any camera gives out.
    pub max_clip: Duration,
    pub limits: RequestLimits,
    /// How long a request waits for the owner before it counts as denied.
    pub approval_expiry: Duration,
    /// How long a download link stays valid.
    pub download_expiry: Duration,
    /// Longest a live share lasts (`[policy] live_share_max`).
    pub live_share_max: Duration,
    pub cameras: Vec<CameraPolicy>,
}

/// What the owner allows for one camera.
#[derive(Clone, Debug)]
pub struct CameraPolicy {
    pub name: String,
    pub level: SharingLevel,
    /// Where the camera is; required to share anything (the radius check).
    pub location: Option<GeoPoint>,
    /// When `level` applies; `None` means at all times.
    pub schedule: Option<Schedule>,
    /// The level outside the schedule (capped at `level`).
    pub outside_schedule: SharingLevel,
    /// Whether the camera's audio may go to police.
    pub audio_allowed: bool,
    /// A tighter clip limit for this camera than the policy's.
    pub max_clip: Option<Duration>,
}

impl CameraPolicy {
    /// A camera with the given level, everything else at its safe default.
    pub fn new(name: impl Into<String>, level: SharingLevel) -> CameraPolicy {
        CameraPolicy {
            name: name.into(),
            level,
            location: None,
            schedule: None,
            outside_schedule: SharingLevel::Off,
            audio_allowed: false,
            max_clip: None,
        }
    }

    /// The level in force at `now_us`: the configured one inside the
    /// schedule, the fallback outside it, and never more than the configured one.
    pub fn effective_level(&self, timezone: &TimeZone, now_us: i64) -> SharingLevel {
        match &self.schedule {
            Some(schedule) if !schedule.is_active(timezone, now_us) => {
                self.outside_schedule.min(self.level)
            }
            _ => self.level,
        }
    }
}

/// How many requests came before this one; counted by the caller so that
/// [`decide`] stays pure. Count the requests that were recorded (passed
/// validation and were not refused by a rate limit, rules 2 and 3), whatever
/// the owner made of them; not the one being decided. Refusing for a rate
/// limit then never extends the limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestHistory {
    /// Earlier requests from the same agency with the same case id.
    pub earlier_requests_for_case: u32,
    /// Requests from the same agency in the 24 hours before now.
    pub agency_requests_last_24h: u32,
}

/// Why a camera is not shared. Rules 1 to 4 apply to the whole request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    PrivacyMode,
    CaseLimitReached,
    AgencyDailyLimitReached,
    OutsideLimits,
    UnknownCamera,
    NotNamed,
    SharingOff,
    NoLocation,
    OutsideRadius,
    OutsideSchedule,
}

impl Refusal {
    /// The owner-side reason code (audit log, owner UI).
    pub fn code(self) -> &'static str {
        match self {
            Refusal::PrivacyMode => "privacy_mode",
            Refusal::CaseLimitReached => "case_limit_reached",
            Refusal::AgencyDailyLimitReached => "agency_daily_limit_reached",
            Refusal::OutsideLimits => "outside_limits",
            Refusal::UnknownCamera => "unknown_camera",
            Refusal::NotNamed => "not_named",
            Refusal::SharingOff => "sharing_off",
            Refusal::NoLocation => "no_location",
            Refusal::OutsideRadius => "outside_radius",
            Refusal::OutsideSchedule => "outside_schedule",
        }
    }

    /// The code the agency sees. Reasons that would reveal the owner's
    /// settings or habits (privacy switch, schedule) all read `not_available`.
    pub fn agency_code(self) -> &'static str {
        match self {
            Refusal::CaseLimitReached => "case_limit_reached",
            Refusal::AgencyDailyLimitReached => "agency_daily_limit_reached",
            Refusal::OutsideLimits => "outside_limits",
            Refusal::OutsideRadius => "outside_radius",
            Refusal::PrivacyMode
            | Refusal::UnknownCamera
            | Refusal::NotNamed
            | Refusal::SharingOff
            | Refusal::NoLocation
            | Refusal::OutsideSchedule => "not_available",
        }
    }

    /// Whether this refusal covers the whole request (rules 1 to 4).
    pub fn is_whole_request(self) -> bool {
        matches!(
            self,
            Refusal::PrivacyMode
                | Refusal::CaseLimitReached
                | Refusal::AgencyDailyLimitReached
                | Refusal::OutsideLimits
        )
    }
}

/// What happens to one camera's footage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// Hand out this window now; tell the owner at once.
    Serve {
        window: TimeWindow,
        audio: bool,
    },
    /// Ask the owner; this is the most they can approve without trimming.
    AwaitOwner {
        window: TimeWindow,
        audio: bool,
    },
    /// Show the request to the owner; never serve it from this camera.
    ShowToOwnerOnly,
    Refuse {
        reason: Refusal,
    },
}

impl Outcome {
    /// The per-camera status of the relay protocol.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Serve { .. } => "approved",
            Outcome::AwaitOwner { .. } | Outcome::ShowToOwnerOnly => "pending",
            Outcome::Refuse { .. } => "denied",
        }
    }
}

/// The outcome for one camera.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CameraDecision {
    pub camera: String,
    /// The camera's configured level (`off` for unknown cameras).
    pub level: SharingLevel,
    pub outcome: Outcome,
}

impl CameraDecision {
    /// Whether the agency's answer may mention this camera. Cameras kept
    /// `off` (and names that match no camera, so the two look alike) are
    /// never mentioned, nor cameras it did not ask about.
    pub fn visible_to_agency(&self) -> bool {
        self.level != SharingLevel::Off
            && !matches!(
                self.outcome,
                Outcome::Refuse {
                    reason: Refusal::NotNamed | Refusal::UnknownCamera
                }
            )
    }
}

/// The gate's answer: one entry per configured camera, in policy order,
/// then one per unknown camera the request named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Set when a rule refused the whole request (privacy, rate limits,
    /// limits); every camera then carries the same refusal.
    pub whole_request: Option<Refusal>,
    pub cameras: Vec<CameraDecision>,
}

impl Decision {
    /// Whether any footage goes out without the owner's say (the owner must
    /// then be notified immediately).
    pub fn serves_any(&self) -> bool {
        self.cameras
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Serve { .. }))
    }

    /// Whether the owner has anything to approve.
    pub fn awaits_owner(&self) -> bool {
        self.cameras
            .iter()
            .any(|c| matches!(c.outcome, Outcome::AwaitOwner { .. }))
    }
}

/// The gate. Pure: same inputs, same decision. See the module docs for the
/// truth table.
pub fn decide(
    policy: &Policy,
    request: &ValidatedRequest,
    history: &RequestHistory,
    now_us: i64,
) -> Decision {
    let named = request.cameras();
    let unknown: Vec<&String> = named
        .unwrap_or_default()
        .iter()
        .filter(|name| !policy.cameras.iter().any(|c| &c.name == *name))
        .collect();

    if let Some(reason) = whole_request_refusal(policy, request, history) {
        let cameras = policy
            .cameras
            .iter()
            .map(|c| (c.name.clone(), c.level))
            .chain(
                unknown
                    .iter()
                    .map(|name| (name.to_string(), SharingLevel::Off)),
            )
            .map(|(camera, level)| CameraDecision {
                camera,
                level,
                outcome: Outcome::Refuse { reason },
            })
            .collect();
        return Decision {
            whole_request: Some(reason),
            cameras,
        };
    }

    let mut cameras: Vec<CameraDecision> = policy
        .cameras
        .iter()
        .map(|camera| CameraDecision {
            camera: camera.name.clone(),
            level: camera.level,
            outcome: camera_outcome(policy, camera, request, now_us),
        })
        .collect();
    cameras.extend(unknown.into_iter().map(|name| CameraDecision {
        camera: name.clone(),
        level: SharingLevel::Off,
        outcome: Outcome::Refuse {
            reason: Refusal::UnknownCamera,
        },
    }));
    Decision {
        whole_request: None,
        cameras,
    }
}

/// Rules 1 to 4.
fn whole_request_refusal(
    policy: &Policy,
    request: &ValidatedRequest,
    history: &RequestHistory,
) -> Option<Refusal> {
    let limits = &policy.limits;
    if policy.privacy {
        return Some(Refusal::PrivacyMode);
    }
    if history.earlier_requests_for_case >= limits.requests_per_case {
        return Some(Refusal::CaseLimitReached);
    }
    if history.agency_requests_last_24h >= limits.requests_per_agency_per_day {
        return Some(Refusal::AgencyDailyLimitReached);
    }
    // The request was validated, but perhaps against looser limits than the
    // ones in force now (the owner may have tightened them since).
    let window = request.window().len_us();
    let window_ok =
        window >= duration_us(limits.min_window) && window <= duration_us(limits.max_window);
    let radius_ok = request.radius_m() <= f64::from(limits.max_radius_m);
    if !window_ok || !radius_ok {
        return Some(Refusal::OutsideLimits);
    }
    None
}

/// Rules 6 to 14 for one configured camera.
fn camera_outcome(
    policy: &Policy,
    camera: &CameraPolicy,
    request: &ValidatedRequest,
    now_us: i64,
) -> Outcome {
    let refuse = |reason| Outcome::Refuse { reason };
    if let Some(named) = request.cameras() {
        if !named.contains(&camera.name) {
            return refuse(Refusal::NotNamed);
        }
    }
    if camera.level == SharingLevel::Off {
        return refuse(Refusal::SharingOff);
    }
    let Some(location) = camera.location else {
        return refuse(Refusal::NoLocation);
    };
    // A NaN distance (impossible for validated points) must not pass either.
    let distance = location.distance_m(request.location());
    if distance.is_nan() || distance > request.radius_m() {
        return refuse(Refusal::OutsideRadius);
    }

    let max_clip = camera
        .max_clip
        .map_or(policy.max_clip, |m| m.min(policy.max_clip));
    let window = request.window().clipped_to(max_clip);
    let audio = camera.audio_allowed;
    match camera.effective_level(&policy.timezone, now_us) {
        SharingLevel::Off => refuse(Refusal::OutsideSchedule),
        SharingLevel::Registered => Outcome::ShowToOwnerOnly,
        SharingLevel::OnRequest => Outcome::AwaitOwner { window, audio },
        SharingLevel::EmergencyAuto | SharingLevel::EmergencyLive => {
            if request.legal_basis().is_emergency() {
                Outcome::Serve { window, audio }
            } else {
                Outcome::AwaitOwner { window, audio }
            }
        }
    }
}

#[cfg(test)]
mod tests;
