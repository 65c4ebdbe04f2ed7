//! The owner's policy as the config file states it.

use std::time::Duration;

use super::decide::{CameraPolicy, Policy};
use super::request::RequestLimits;
use crate::config::Config;

/// How far in the future a request's window may end, for clock differences
/// between the agency and this device.
const CLOCK_SKEW: Duration = Duration::from_secs(120);

impl Policy {
    /// The policy of a validated config. Every camera is listed, `off` ones
    /// included, so a request naming one is answered like one naming a camera
    /// that does not exist.
    pub fn from_config(config: &Config) -> Policy {
        let p = &config.policy;
        Policy {
            privacy: p.privacy,
            timezone: p.timezone.clone(),
            // No clip can be longer than export produces anyway.
            max_clip: p.max_clip.min(config.export.max_clip),
            limits: RequestLimits {
                min_window: p.min_window,
                max_window: p.max_window,
                max_radius_m: p.max_radius_m,
                clock_skew: CLOCK_SKEW,
                requests_per_case: p.requests_per_case,
                requests_per_agency_per_day: p.requests_per_agency_per_day,
            },
            approval_expiry: p.approval_expiry,
            download_expiry: p.download_expiry,
            live_share_max: p.live_share_max,
            cameras: config
                .cameras
                .iter()
                .map(|camera| CameraPolicy {
                    name: camera.name.clone(),
                    level: camera.sharing.level,
                    location: camera.sharing.location,
                    schedule: camera.sharing.schedule.clone(),
                    outside_schedule: camera.sharing.outside_schedule,
                    // Audio the camera does not record cannot be shared.
                    audio_allowed: camera.sharing.audio_to_police && camera.audio,
                    max_clip: camera.sharing.max_clip,
                })
                .collect(),
        }
    }
}
