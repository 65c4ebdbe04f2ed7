//! What discovery has seen on the LAN, by endpoint reference: the list
//! behind `GET /api/discovery`. Kept in memory (a restart re-probes at once).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::onvif::discovery::parse_scopes;
use crate::onvif::DeviceInformation;

/// Most devices remembered (a LAN full of WS-Discovery printers must not
/// grow this without bound); the least recently seen goes first.
const MAX_DEVICES: usize = 256;

/// One discovered device.
#[derive(Clone, Debug, Serialize)]
pub struct SeenDevice {
    pub endpoint: String,
    pub name: Option<String>,
    pub hardware: Option<String>,
    pub location: Option<String>,
    pub xaddrs: Vec<String>,
    pub types: Vec<String>,
    /// UTC µs.
    #[serde(skip)]
    pub first_seen_us: i64,
    #[serde(skip)]
    pub last_seen_us: i64,
    /// Said Bye since it was last seen.
    pub gone: bool,
    /// From GetDeviceInformation when the device answered it (without a
    /// login, or with the camera's after it was added).
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
}

impl SeenDevice {
    pub fn set_information(&mut self, info: &DeviceInformation) {
        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        self.manufacturer = some(&info.manufacturer);
        self.model = some(&info.model);
        self.serial = some(&info.serial_number);
        self.firmware = some(&info.firmware_version);
    }
}

/// The registry.
#[derive(Default)]
pub struct Seen {
    devices: BTreeMap<String, SeenDevice>,
}

/// What changed with a Discovered event.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    New,
    /// Seen before at other addresses.
    Moved,
    Same,
}

impl Seen {
    /// Records a Hello or probe answer.
    pub fn discovered(
        &mut self,
        endpoint: &str,
        xaddrs: &[String],
        scopes: &[String],
        types: &[String],
        now_us: i64,
    ) -> Change {
        let parsed = parse_scopes(scopes);
        let change = match self.devices.get_mut(endpoint) {
            Some(device) => {
                let change = if !xaddrs.is_empty() && device.xaddrs != xaddrs {
                    device.xaddrs = xaddrs.to_vec();
                    Change::Moved
                } else {
                    Change::Same
                };
                device.last_seen_us = now_us;
                device.gone = false;
                if !scopes.is_empty() {
                    device.name = parsed.name;
                    device.hardware = parsed.hardware;
                    device.location = parsed.location;
                }
                if !types.is_empty() {
                    device.types = types.to_vec();
                }
                change
            }
            None => {
                self.devices.insert(
                    endpoint.to_string(),
                    SeenDevice {
                        endpoint: endpoint.to_string(),
                        name: parsed.name,
                        hardware: parsed.hardware,
                        location: parsed.location,
                        xaddrs: xaddrs.to_vec(),
                        types: types.to_vec(),
                        first_seen_us: now_us,
                        last_seen_us: now_us,
                        gone: false,
                        manufacturer: None,
                        model: None,
                        serial: None,
                        firmware: None,
                    },
                );
                Change::New
            }
        };
        self.evict();
        change
    }

    pub fn gone(&mut self, endpoint: &str) {
        if let Some(device) = self.devices.get_mut(endpoint) {
            device.gone = true;
        }
    }

    pub fn get(&self, endpoint: &str) -> Option<&SeenDevice> {
        self.devices.get(endpoint)
    }

    pub fn get_mut(&mut self, endpoint: &str) -> Option<&mut SeenDevice> {
        self.devices.get_mut(endpoint)
    }

    pub fn all(&self) -> impl Iterator<Item = &SeenDevice> {
        self.devices.values()
    }

    fn evict(&mut self) {
        while self.devices.len() > MAX_DEVICES {
            let Some(oldest) = self
                .devices
                .values()
                .min_by_key(|d| d.last_seen_us)
                .map(|d| d.endpoint.clone())
            else {
                return;
            };
            self.devices.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_at_new_addresses_has_moved_and_keeps_its_first_sighting() {
        let mut seen = Seen::default();
        let scopes = vec!["onvif://www.onvif.org/name/Porch%20Cam".to_string()];
        let a = vec!["http://10.0.0.5/onvif/device_service".to_string()];
        let b = vec!["http://10.0.0.9/onvif/device_service".to_string()];
        assert_eq!(
            seen.discovered("urn:uuid:1", &a, &scopes, &[], 1),
            Change::New
        );
        assert_eq!(seen.discovered("urn:uuid:1", &a, &[], &[], 2), Change::Same);
        assert_eq!(
            seen.discovered("urn:uuid:1", &[], &[], &[], 3),
            Change::Same
        );
        seen.gone("urn:uuid:1");
        assert!(seen.get("urn:uuid:1").unwrap().gone);
        assert_eq!(
            seen.discovered("urn:uuid:1", &b, &[], &[], 4),
            Change::Moved
        );
        let d = seen.get("urn:uuid:1").unwrap();
        assert_eq!((d.first_seen_us, d.last_seen_us), (1, 4));
        assert_eq!(d.name.as_deref(), Some("Porch Cam"));
        assert!(!d.gone);
        assert_eq!(d.xaddrs, b);
    }

    #[test]
    fn the_registry_is_bounded() {
        let mut seen = Seen::default();
        for i in 0..(MAX_DEVICES as i64 + 10) {
            seen.discovered(&format!("urn:uuid:{i}"), &[], &[], &[], i);
        }
        assert_eq!(seen.all().count(), MAX_DEVICES);
        assert!(seen.get("urn:uuid:0").is_none());
    }
}
