//! The owner's sharing level for one camera.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How much of one camera the owner shares with police, from least to most.
///
/// The order matters: `Ord` follows the list, so "at least `on_request`" is a
/// plain comparison. Only the owner's configuration sets a level; nothing a
/// request carries can raise it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SharingLevel {
    /// Not shared, not even its existence (the default).
    #[default]
    Off,
    /// Location known to the relay; requests are shown to the owner, never served.
    Registered,
    /// Requests are served only after the owner approves them.
    OnRequest,
    /// Emergency requests are served at once and the owner is told at once;
    /// other requests wait for the owner.
    EmergencyAuto,
    /// As `emergency_auto`; an emergency request may also get a live share
    /// (see `policy::decide_live`).
    EmergencyLive,
}

impl SharingLevel {
    /// Every level, least to most shared.
    pub const ALL: [SharingLevel; 5] = [
        SharingLevel::Off,
        SharingLevel::Registered,
        SharingLevel::OnRequest,
        SharingLevel::EmergencyAuto,
        SharingLevel::EmergencyLive,
    ];

    /// The name used in the config file and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SharingLevel::Off => "off",
            SharingLevel::Registered => "registered",
            SharingLevel::OnRequest => "on_request",
            SharingLevel::EmergencyAuto => "emergency_auto",
            SharingLevel::EmergencyLive => "emergency_live",
        }
    }

    /// Whether an emergency request may be served without waiting for the owner.
    pub fn serves_emergencies_at_once(self) -> bool {
        matches!(
            self,
            SharingLevel::EmergencyAuto | SharingLevel::EmergencyLive
        )
    }
}

impl fmt::Display for SharingLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown sharing level name; the message lists the allowed ones.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown sharing level `{0}` (expected one of \"off\", \"registered\", \"on_request\", \"emergency_auto\", \"emergency_live\")")]
pub struct UnknownSharingLevel(pub String);

impl FromStr for SharingLevel {
    type Err = UnknownSharingLevel;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SharingLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == text)
            .ok_or_else(|| UnknownSharingLevel(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_follows_generosity() {
        for level in SharingLevel::ALL {
            assert_eq!(level.to_string().parse::<SharingLevel>(), Ok(level));
            let json = serde_json::to_string(&level).expect("serializes");
            assert_eq!(json, format!("\"{level}\""));
        }
        assert!(SharingLevel::Off < SharingLevel::Registered);
        assert!(SharingLevel::OnRequest < SharingLevel::EmergencyAuto);
        assert_eq!(SharingLevel::default(), SharingLevel::Off);
    }

    #[test]
    fn unknown_level_lists_the_allowed_ones() {
        let e = "always".parse::<SharingLevel>().expect_err("unknown");
        let shown = e.to_string();
        assert!(
            shown.contains("always") && shown.contains("on_request"),
            "{shown}"
        );
        assert!(
            "Off".parse::<SharingLevel>().is_err(),
            "names are case-sensitive"
        );
    }
}
