//! The gate for live shares: whether one camera of a request may be
//! streamed live to the relay, now.
//!
//! Asked when the agency asks for a live URL, when it opens the stream, and
//! again whenever the owner's switches change or a second passes while a
//! share runs: a share lasts only while every rule still holds. Pure, like
//! [`super::decide`]: the request's facts and the clock come in as arguments.
//!
//! | # | condition | refusal |
//! |---|---|---|
//! | 1 | privacy switch on | `privacy_mode` |
//! | 2 | camera not configured | `unknown_camera` |
//! | 3 | camera not served to this request (never named, outside the radius, refused, revoked) | `not_in_request` |
//! | 4 | legal basis is not `emergency` | `not_emergency` |
//! | 5 | level `off` | `sharing_off` |
//! | 6 | level below `emergency_live` | `live_not_shared` |
//! | 7 | effective level (after the schedule) below `emergency_live` | `outside_schedule` |
//! | — | otherwise | allowed |

use serde::Serialize;

use super::decide::Policy;
use super::level::SharingLevel;

/// What a live share is asked for: one camera of a recorded request.
#[derive(Clone, Copy, Debug)]
pub struct LiveAsk<'a> {
    pub camera: &'a str,
    /// The request's legal basis is `emergency`.
    pub emergency: bool,
    /// The policy (or the owner) made this camera's footage servable for
    /// the request, and it was not taken back.
    pub in_request: bool,
}

/// Why a camera may not be shared live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveRefusal {
    PrivacyMode,
    UnknownCamera,
    NotInRequest,
    NotEmergency,
    SharingOff,
    LiveNotShared,
    OutsideSchedule,
}

impl LiveRefusal {
    /// The owner-side reason (audit log, owner API).
    pub fn code(self) -> &'static str {
        match self {
            LiveRefusal::PrivacyMode => "privacy_mode",
            LiveRefusal::UnknownCamera => "unknown_camera",
            LiveRefusal::NotInRequest => "not_in_request",
            LiveRefusal::NotEmergency => "not_emergency",
            LiveRefusal::SharingOff => "sharing_off",
            LiveRefusal::LiveNotShared => "live_not_shared",
            LiveRefusal::OutsideSchedule => "outside_schedule",
        }
    }

    /// The code the agency sees. As for footage, reasons that would reveal
    /// the owner's habits (privacy switch, schedule) or cameras the agency
    /// may not know of read `not_available`; the level is no secret (the
    /// relay's `GET /v1/device` lists it), nor is the request's own basis.
    pub fn agency_code(self) -> &'static str {
        match self {
            LiveRefusal::NotInRequest => "not_in_request",
            LiveRefusal::NotEmergency => "emergency_required",
            LiveRefusal::LiveNotShared => "live_not_shared",
            LiveRefusal::PrivacyMode
            | LiveRefusal::UnknownCamera
            | LiveRefusal::SharingOff
            | LiveRefusal::OutsideSchedule => "not_available",
        }
    }

    /// A sentence for the agency, naming what is missing without the
    /// owner's secrets.
    pub fn agency_message(self) -> &'static str {
        match self {
            LiveRefusal::NotInRequest => "this camera's footage was not granted to this request",
            LiveRefusal::NotEmergency => {
                "live video is only shared for requests whose legal basis is an emergency"
            }
            LiveRefusal::LiveNotShared => "the owner does not share this camera live",
            _ => "live video from this camera is not available",
        }
    }
}

/// The live-share gate. `Ok` only for an emergency request on a camera
/// served to it, set to `emergency_live` and inside its schedule (or with an
/// `outside_schedule` level of `emergency_live`), with privacy off.
pub fn decide_live(policy: &Policy, ask: LiveAsk<'_>, now_us: i64) -> Result<(), LiveRefusal> {
    if policy.privacy {
        return Err(LiveRefusal::PrivacyMode);
    }
    let Some(camera) = policy.cameras.iter().find(|c| c.name == ask.camera) else {
        return Err(LiveRefusal::UnknownCamera);
    };
    if !ask.in_request {
        return Err(LiveRefusal::NotInRequest);
    }
    if !ask.emergency {
        return Err(LiveRefusal::NotEmergency);
    }
    match camera.level {
        SharingLevel::Off => return Err(LiveRefusal::SharingOff),
        SharingLevel::EmergencyLive => {}
        _ => return Err(LiveRefusal::LiveNotShared),
    }
    if camera.effective_level(&policy.timezone, now_us) != SharingLevel::EmergencyLive {
        return Err(LiveRefusal::OutsideSchedule);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jiff::tz::TimeZone;

    use super::*;
    use crate::policy::{
        CameraPolicy, RequestLimits, Schedule, ScheduleWindow, TimeOfDay, Weekdays,
    };

    fn at(text: &str) -> i64 {
        crate::time::parse_utc_us(text).expect("time")
    }

    /// The schedule situations a camera can be in at the moment of asking.
    #[derive(Clone, Copy, Debug)]
    enum ScheduleCase {
        None,
        Inside,
        /// Outside the schedule, with this `outside_schedule` level.
        Outside(SharingLevel),
    }

    fn policy(privacy: bool, level: SharingLevel, schedule: ScheduleCase) -> Policy {
        let mut camera = CameraPolicy::new("porch", level);
        match schedule {
            ScheduleCase::None => {}
            ScheduleCase::Inside | ScheduleCase::Outside(_) => {
                // Every day 20:00-06:00; asked at 22:00 (inside) or 12:00 (outside).
                let window = ScheduleWindow::new(
                    Weekdays::parse("daily").expect("days"),
                    TimeOfDay::parse("20:00").expect("from"),
                    TimeOfDay::parse("06:00").expect("to"),
                )
                .expect("window");
                camera.schedule = Some(Schedule::new(vec![window]).expect("schedule"));
            }
        }
        if let ScheduleCase::Outside(fallback) = schedule {
            camera.outside_schedule = fallback.min(level);
        }
        Policy {
            privacy,
            timezone: TimeZone::UTC,
            max_clip: Duration::from_secs(3600),
            limits: RequestLimits::default(),
            approval_expiry: Duration::from_secs(86_400),
            download_expiry: Duration::from_secs(86_400),
            live_share_max: Duration::from_secs(900),
            cameras: vec![camera],
        }
    }

    fn now(schedule: ScheduleCase) -> i64 {
        match schedule {
            ScheduleCase::Inside => at("2026-11-24T22:00:00Z"),
            _ => at("2026-11-24T12:00:00Z"),
        }
    }

    /// Every combination of privacy, level, schedule, legal basis and scope:
    /// allowed exactly when the four conditions and the scope hold,
    /// refused otherwise, with the first failing rule as the reason.
    #[test]
    fn every_combination_against_the_table() {
        let mut schedules = vec![ScheduleCase::None, ScheduleCase::Inside];
        schedules.extend(SharingLevel::ALL.map(ScheduleCase::Outside));
        let mut allowed = 0;
        let mut checked = 0;
        for privacy in [false, true] {
            for level in SharingLevel::ALL {
                for &schedule in &schedules {
                    for emergency in [false, true] {
                        for in_request in [false, true] {
                            let policy = policy(privacy, level, schedule);
                            let ask = LiveAsk {
                                camera: "porch",
                                emergency,
                                in_request,
                            };
                            let got = decide_live(&policy, ask, now(schedule));
                            let in_force = match schedule {
                                ScheduleCase::None | ScheduleCase::Inside => level,
                                ScheduleCase::Outside(fallback) => fallback.min(level),
                            };
                            let expected = if privacy {
                                Err(LiveRefusal::PrivacyMode)
                            } else if !in_request {
                                Err(LiveRefusal::NotInRequest)
                            } else if !emergency {
                                Err(LiveRefusal::NotEmergency)
                            } else if level == SharingLevel::Off {
                                Err(LiveRefusal::SharingOff)
                            } else if level != SharingLevel::EmergencyLive {
                                Err(LiveRefusal::LiveNotShared)
                            } else if in_force != SharingLevel::EmergencyLive {
                                Err(LiveRefusal::OutsideSchedule)
                            } else {
                                Ok(())
                            };
                            assert_eq!(
                                got, expected,
                                "privacy {privacy}, level {level}, {schedule:?}, emergency {emergency}, in request {in_request}"
                            );
                            checked += 1;
                            allowed += usize::from(got.is_ok());
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 5 * 7 * 2 * 2);
        // No schedule, inside it, or outside with `emergency_live` as the
        // off-hours level: three situations, privacy off, emergency, in scope.
        assert_eq!(allowed, 3);
    }

    #[test]
    fn unknown_cameras_and_secrets_read_not_available() {
        let policy = policy(false, SharingLevel::EmergencyLive, ScheduleCase::None);
        let ask = LiveAsk {
            camera: "garage",
            emergency: true,
            in_request: true,
        };
        assert_eq!(
            decide_live(&policy, ask, 0),
            Err(LiveRefusal::UnknownCamera)
        );
        for refusal in [
            LiveRefusal::PrivacyMode,
            LiveRefusal::UnknownCamera,
            LiveRefusal::SharingOff,
            LiveRefusal::OutsideSchedule,
        ] {
            assert_eq!(refusal.agency_code(), "not_available");
        }
        assert_eq!(
            LiveRefusal::NotEmergency.agency_code(),
            "emergency_required"
        );
    }
}
