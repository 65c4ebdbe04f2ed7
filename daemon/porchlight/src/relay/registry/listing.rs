//! What the registry is told about this box: the cameras the owner shares
//! (level above `off`, privacy off), each with its location rounded to the
//! owner's precision, the owner's direction and field-of-view text and its
//! sharing level, plus the owner's contact alias. Nothing else leaves.

use serde::{Deserialize, Serialize};

use crate::config::{Config, RegistryConfig};
use crate::policy::{GeoPoint, Policy, SharingLevel};

/// One camera as the registry lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListedCamera {
    pub camera: String,
    /// Rounded to [`RegistryConfig::location_decimals`].
    pub location: Option<GeoPoint>,
    pub direction: Option<String>,
    pub field_of_view: Option<String>,
    pub level: SharingLevel,
}

/// The whole entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    pub contact_alias: Option<String>,
    /// How coarse the locations are (decimals of a degree).
    pub location_decimals: u8,
    pub cameras: Vec<ListedCamera>,
}

impl Listing {
    /// The entry for the policy in force now (the owner's run-time switches
    /// included). With the privacy switch on, no camera is listed.
    pub fn build(config: &Config, registry: &RegistryConfig, policy: &Policy) -> Listing {
        let cameras = if policy.privacy {
            Vec::new()
        } else {
            policy
                .cameras
                .iter()
                .filter(|c| c.level != SharingLevel::Off)
                .map(|c| {
                    let sharing = config
                        .cameras
                        .iter()
                        .find(|k| k.name == c.name)
                        .map(|k| &k.sharing);
                    ListedCamera {
                        camera: c.name.clone(),
                        location: c.location.map(|p| round(p, registry.location_decimals)),
                        direction: sharing.and_then(|s| s.direction.clone()),
                        field_of_view: sharing.and_then(|s| s.field_of_view.clone()),
                        level: c.level,
                    }
                })
                .collect()
        };
        Listing {
            contact_alias: registry.contact_alias.clone(),
            location_decimals: registry.location_decimals,
            cameras,
        }
    }

    /// SHA-256 of the entry's JSON: whether the registry has it already.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        // SHA-256, lowercase hex: the same sum as a certificate fingerprint.
        crate::evidence::certificate_fingerprint(&json)
    }
}

/// `point` rounded to `decimals` decimals of a degree (at most 3).
pub fn round(point: GeoPoint, decimals: u8) -> GeoPoint {
    let scale = 10f64.powi(i32::from(decimals.min(3)));
    let r = |v: f64| (v * scale).round() / scale;
    GeoPoint {
        lat: r(point.lat),
        lon: r(point.lon),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_rounded_to_the_owners_precision() {
        let p = GeoPoint::new(32.776_66, -96.797_04).expect("point");
        assert_eq!(
            round(p, 3),
            GeoPoint {
                lat: 32.777,
                lon: -96.797
            }
        );
        assert_eq!(
            round(p, 2),
            GeoPoint {
                lat: 32.78,
                lon: -96.8
            }
        );
        assert_eq!(
            round(p, 0),
            GeoPoint {
                lat: 33.0,
                lon: -97.0
            }
        );
        // Never finer than 3 decimals, whatever is asked.
        assert_eq!(round(p, 9), round(p, 3));
    }
}
