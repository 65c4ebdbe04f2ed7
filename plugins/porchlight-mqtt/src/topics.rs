//! Every topic the plugin publishes or listens on, in one place (the table in
//! `docs/mqtt.md` follows this file).

/// Topics for one base topic and discovery prefix.
#[derive(Clone, Debug)]
pub struct Topics {
    /// `porchlight` (no trailing `/`).
    pub base: String,
    /// `homeassistant` (no trailing `/`).
    pub discovery_prefix: String,
    /// `base` made safe for ids and the discovery `node_id`
    /// (`[A-Za-z0-9_-]`).
    pub node_id: String,
}

/// The camera entities' topic leaves (also the object ids' last part).
#[cfg(test)]
pub(crate) const CAMERA_LEAVES: [&str; 10] = [
    "snapshot",
    "online",
    "motion",
    "fps",
    "bitrate",
    "storage",
    "oldest_footage_age",
    "recording",
    "sharing",
    "live_share",
];

impl Topics {
    pub fn new(base: &str, discovery_prefix: &str) -> Self {
        let base = base.trim_end_matches('/').to_string();
        let discovery_prefix = discovery_prefix.trim_end_matches('/').to_string();
        let node_id = sanitize(&base);
        Topics {
            base,
            discovery_prefix,
            node_id,
        }
    }

    /// `<base>/status`: `online` / `offline`, retained, the Last Will.
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }

    /// `<discovery_prefix>/status`: Home Assistant's birth and will.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }

    /// `<base>/<camera>/<leaf>`: a camera's state (or snapshot) topic.
    pub fn camera(&self, camera: &str, leaf: &str) -> String {
        format!("{}/{camera}/{leaf}", self.base)
    }

    /// `<base>/<camera>/<leaf>/set`.
    pub fn camera_set(&self, camera: &str, leaf: &str) -> String {
        format!("{}/{camera}/{leaf}/set", self.base)
    }

    /// `<base>/hub/<leaf>`: the hub's state topics.
    pub fn hub(&self, leaf: &str) -> String {
        format!("{}/hub/{leaf}", self.base)
    }

    /// `<base>/privacy/set`.
    pub fn privacy_set(&self) -> String {
        format!("{}/privacy/set", self.base)
    }

    /// `<base>/requests/approve/set` and `<base>/requests/deny/set`.
    pub fn approve_set(&self) -> String {
        format!("{}/requests/approve/set", self.base)
    }

    pub fn deny_set(&self) -> String {
        format!("{}/requests/deny/set", self.base)
    }

    /// `<base>/live_shares/end/set`: `PRESS` ends every live share, a
    /// camera name ends that camera's.
    pub fn end_live_shares_set(&self) -> String {
        format!("{}/live_shares/end/set", self.base)
    }

    /// `<base>/requests/event`: one (non-retained) message per new request.
    pub fn request_event(&self) -> String {
        format!("{}/requests/event", self.base)
    }

    /// What the plugin subscribes to.
    pub fn subscriptions(&self) -> Vec<String> {
        vec![
            format!("{}/+/sharing/set", self.base),
            format!("{}/+/recording/set", self.base),
            self.privacy_set(),
            self.approve_set(),
            self.deny_set(),
            self.end_live_shares_set(),
            self.ha_status(),
        ]
    }

    /// `<discovery_prefix>/<component>/<node_id>/<object_id>/config`.
    pub fn discovery(&self, component: &str, object_id: &str) -> String {
        format!(
            "{}/{component}/{}/{object_id}/config",
            self.discovery_prefix, self.node_id
        )
    }

    /// The hub device's identifier.
    pub fn hub_device_id(&self) -> String {
        format!("{}_hub", self.node_id)
    }

    /// A camera device's identifier.
    pub fn camera_device_id(&self, camera: &str) -> String {
        format!("{}_camera_{}", self.node_id, sanitize(camera))
    }

    /// Object id (and unique id suffix) of a camera entity.
    pub fn camera_object_id(camera: &str, leaf: &str) -> String {
        format!("camera_{}_{leaf}", sanitize(camera))
    }

    /// Unique id: `<node_id>_<object_id>`; stable as long as the base topic
    /// and the camera's name are.
    pub fn unique_id(&self, object_id: &str) -> String {
        format!("{}_{object_id}", self.node_id)
    }
}

/// Keeps `[A-Za-z0-9_-]`, maps anything else to `_`.
pub(crate) fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "porchlight".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_safe_and_stable() {
        let t = Topics::new("home/porchlight/", "homeassistant");
        assert_eq!(t.base, "home/porchlight");
        assert_eq!(t.node_id, "home_porchlight");
        assert_eq!(
            t.discovery("switch", &Topics::camera_object_id("porch", "recording")),
            "homeassistant/switch/home_porchlight/camera_porch_recording/config"
        );
        assert_eq!(
            t.unique_id(&Topics::camera_object_id("porch", "recording")),
            "home_porchlight_camera_porch_recording"
        );
        assert_ne!(t.hub_device_id(), t.camera_device_id("hub"));
    }
}
