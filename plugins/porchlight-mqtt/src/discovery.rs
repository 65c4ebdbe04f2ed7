//! Home Assistant MQTT discovery: one device per camera, one for the hub,
//! and the entities listed in `docs/mqtt.md`.

use porchlight_plugin_api::{HubState, SHARING_LEVELS};
use serde_json::{json, Map, Value};

use crate::topics::Topics;

/// One discovery message: its config topic and JSON payload.
#[derive(Clone, Debug)]
pub(crate) struct Discovery {
    pub topic: String,
    pub payload: Value,
}

/// What every entity carries: availability, device, unique id, name, origin.
fn entity(
    topics: &Topics,
    device: &Value,
    component: &str,
    object_id: &str,
    name: &str,
    extra: Value,
) -> Discovery {
    let mut map = Map::new();
    map.insert("name".into(), json!(name));
    map.insert("unique_id".into(), json!(topics.unique_id(object_id)));
    map.insert("availability_topic".into(), json!(topics.status()));
    map.insert("payload_available".into(), json!("online"));
    map.insert("payload_not_available".into(), json!("offline"));
    map.insert("device".into(), device.clone());
    map.insert(
        "origin".into(),
        json!({"name": "Porchlight", "sw_version": env!("CARGO_PKG_VERSION")}),
    );
    if let Value::Object(extra) = extra {
        map.extend(extra);
    }
    Discovery {
        topic: topics.discovery(component, object_id),
        payload: Value::Object(map),
    }
}

fn hub_device(topics: &Topics, hub: &HubState) -> Value {
    json!({
        "identifiers": [topics.hub_device_id()],
        "name": "Porchlight",
        "manufacturer": "Porchlight",
        "model": "Porchlight hub",
        "sw_version": hub.version,
    })
}

/// The hub's entities.
pub(crate) fn hub(topics: &Topics, hub: &HubState) -> Vec<Discovery> {
    let device = hub_device(topics, hub);
    let d = |component: &str, object: &str, name: &str, extra: Value| {
        entity(topics, &device, component, object, name, extra)
    };
    vec![
        d(
            "switch",
            "hub_privacy",
            "Privacy mode",
            json!({
                "state_topic": topics.hub("privacy"),
                "command_topic": topics.privacy_set(),
                "payload_on": "ON",
                "payload_off": "OFF",
                "icon": "mdi:shield-lock",
            }),
        ),
        d(
            "sensor",
            "hub_pending_requests",
            "Pending police requests",
            json!({
                "state_topic": topics.hub("pending_requests"),
                "json_attributes_topic": topics.hub("pending_requests/attributes"),
                "state_class": "measurement",
                "icon": "mdi:police-badge",
            }),
        ),
        d(
            "event",
            "hub_police_request",
            "Police request",
            json!({
                "state_topic": topics.request_event(),
                "event_types": ["police_request"],
                "icon": "mdi:police-badge-outline",
            }),
        ),
        d(
            "sensor",
            "hub_last_relay_access",
            "Last relay access",
            json!({
                "state_topic": topics.hub("last_relay_access"),
                "icon": "mdi:account-eye",
            }),
        ),
        d(
            "sensor",
            "hub_disk_free",
            "Disk free",
            json!({
                "state_topic": topics.hub("disk_free"),
                "device_class": "data_size",
                "unit_of_measurement": "B",
                "state_class": "measurement",
                "entity_category": "diagnostic",
            }),
        ),
        // Ends every live share to the police relay at once.
        d(
            "button",
            "hub_end_live_shares",
            "End live shares",
            json!({
                "command_topic": topics.end_live_shares_set(),
                "payload_press": "PRESS",
                "icon": "mdi:video-off",
            }),
        ),
        // Typing a request id here answers it: the plain HA way to approve
        // or deny without an automation (text entities publish what is typed).
        d(
            "text",
            "hub_approve_request",
            "Approve police request (id)",
            json!({
                "command_topic": topics.approve_set(),
                "min": 1,
                "max": crate::command::MAX_ID_CHARS,
                "pattern": "[A-Za-z0-9_.-]+",
                "icon": "mdi:check-decagram",
            }),
        ),
        d(
            "text",
            "hub_deny_request",
            "Deny police request (id)",
            json!({
                "command_topic": topics.deny_set(),
                "min": 1,
                "max": crate::command::MAX_ID_CHARS,
                "pattern": "[A-Za-z0-9_.-]+",
                "icon": "mdi:close-octagon",
            }),
        ),
    ]
}

/// One camera's entities.
pub(crate) fn camera(topics: &Topics, camera: &str) -> Vec<Discovery> {
    let device = json!({
        "identifiers": [topics.camera_device_id(camera)],
        "name": camera,
        "manufacturer": "Porchlight",
        "model": "Porchlight camera",
        "via_device": topics.hub_device_id(),
    });
    let d = |component: &str, leaf: &str, name: &str, extra: Value| {
        entity(
            topics,
            &device,
            component,
            &Topics::camera_object_id(camera, leaf),
            name,
            extra,
        )
    };
    let state = |leaf: &str| topics.camera(camera, leaf);
    vec![
        d(
            "image",
            "snapshot",
            "Snapshot",
            json!({"image_topic": state("snapshot"), "content_type": "image/jpeg"}),
        ),
        d(
            "binary_sensor",
            "online",
            "Online",
            json!({
                "state_topic": state("online"),
                "device_class": "connectivity",
                "payload_on": "ON",
                "payload_off": "OFF",
                "entity_category": "diagnostic",
            }),
        ),
        d(
            "binary_sensor",
            "live_share",
            "Live share active",
            json!({
                "state_topic": state("live_share"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "icon": "mdi:police-station",
            }),
        ),
        d(
            "binary_sensor",
            "motion",
            "Motion",
            json!({
                "state_topic": state("motion"),
                "device_class": "motion",
                "payload_on": "ON",
                "payload_off": "OFF",
            }),
        ),
        d(
            "sensor",
            "fps",
            "Frame rate",
            json!({
                "state_topic": state("fps"),
                "unit_of_measurement": "fps",
                "state_class": "measurement",
                "suggested_display_precision": 1,
                "entity_category": "diagnostic",
                "icon": "mdi:filmstrip",
            }),
        ),
        d(
            "sensor",
            "bitrate",
            "Bitrate",
            json!({
                "state_topic": state("bitrate"),
                "device_class": "data_rate",
                "unit_of_measurement": "bit/s",
                "state_class": "measurement",
                "entity_category": "diagnostic",
            }),
        ),
        d(
            "sensor",
            "storage",
            "Storage used",
            json!({
                "state_topic": state("storage"),
                "device_class": "data_size",
                "unit_of_measurement": "B",
                "state_class": "measurement",
                "entity_category": "diagnostic",
            }),
        ),
        d(
            "sensor",
            "oldest_footage_age",
            "Oldest footage age",
            json!({
                "state_topic": state("oldest_footage_age"),
                "device_class": "duration",
                "unit_of_measurement": "s",
                "state_class": "measurement",
                "entity_category": "diagnostic",
            }),
        ),
        d(
            "switch",
            "recording",
            "Recording",
            json!({
                "state_topic": state("recording"),
                "command_topic": topics.camera_set(camera, "recording"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "icon": "mdi:record-rec",
            }),
        ),
        d(
            "select",
            "sharing",
            "Sharing level",
            json!({
                "state_topic": state("sharing"),
                "command_topic": topics.camera_set(camera, "sharing"),
                "json_attributes_topic": state("sharing/attributes"),
                "options": SHARING_LEVELS,
                "icon": "mdi:share-variant",
            }),
        ),
    ]
}

/// The config topics of one camera (for removing a camera that is gone).
pub(crate) fn camera_config_topics(topics: &Topics, camera: &str) -> Vec<String> {
    self::camera(topics, camera)
        .into_iter()
        .map(|d| d.topic)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::CAMERA_LEAVES;

    #[test]
    fn every_camera_leaf_has_an_entity_and_ids_are_unique() {
        let topics = Topics::new("porchlight", "homeassistant");
        let hub_state = HubState {
            privacy: false,
            pending_requests: 0,
            last_relay_access: None,
            disk_free_bytes: 0,
            version: "0.1.0".into(),
        };
        let mut all = hub(&topics, &hub_state);
        all.extend(camera(&topics, "porch"));
        all.extend(camera(&topics, "hub"));
        let mut ids: Vec<_> = all
            .iter()
            .map(|d| d.payload["unique_id"].as_str().unwrap().to_string())
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "unique ids collide");
        for leaf in CAMERA_LEAVES {
            assert!(
                all.iter()
                    .any(|d| d.topic.ends_with(&format!("/camera_porch_{leaf}/config"))),
                "{leaf}"
            );
        }
    }
}
