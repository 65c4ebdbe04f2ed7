//! In-process notifications: who wants to know that something changed
//! (the owner UI's live updates, notifiers, the relay answering a waiting
//! agency) subscribes here instead of polling the databases.
//!
//! Delivery is best effort: a subscriber that falls behind loses the oldest
//! events (`broadcast` semantics) and should re-read the state it cares
//! about. The databases and the audit log stay the record; events only say
//! "look again".

use serde::Serialize;
use tokio::sync::broadcast;

use crate::requests::RequestState;

/// How many events a slow subscriber may lag behind before it loses some.
const CAPACITY: usize = 256;

/// Something the daemon did that others may want to react to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DaemonEvent {
    /// A footage request changed state (approved, denied, expired, ...).
    RequestChanged { id: String, state: RequestState },
    /// A police request arrived (the owner is told at once).
    RequestCreated { id: String },
    /// An agency reached this box through the relay (request, status poll,
    /// download); `summary` is one line for the owner.
    RelayAccess {
        time: String,
        agency: String,
        summary: String,
    },
    /// The owner left the relay program: every live share to the relay
    /// must end now (see `relay::membership`).
    RelayLeft,
    /// A live share to the relay started (`active`) or ended.
    LiveShareChanged {
        id: String,
        camera: String,
        active: bool,
    },
    /// The owner flipped a switch (privacy, sharing level, recording).
    SettingsChanged,
    /// A camera reported motion or tampering starting (`active`) or
    /// stopping, over ONVIF events; `kind` is `motion` or `tamper`.
    CameraEvent {
        camera: String,
        kind: String,
        active: bool,
    },
}

/// A cheap-to-clone handle: publish from anywhere, subscribe from anywhere.
#[derive(Clone, Debug)]
pub struct EventBus {
    sender: broadcast::Sender<DaemonEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    pub fn new() -> EventBus {
        let (sender, _) = broadcast::channel(CAPACITY);
        EventBus { sender }
    }

    /// Sends `event` to every current subscriber. Having none is normal
    /// (nobody is watching), not an error; returns how many got it.
    pub fn publish(&self, event: DaemonEvent) -> usize {
        self.sender.send(event).unwrap_or(0)
    }

    /// Events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DaemonEvent> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_what_is_published_after_they_subscribe() {
        let bus = EventBus::new();
        assert_eq!(
            bus.publish(DaemonEvent::RequestChanged {
                id: "req_early".into(),
                state: RequestState::Pending,
            }),
            0
        );
        let mut receiver = bus.subscribe();
        let event = DaemonEvent::RequestChanged {
            id: "req_1".into(),
            state: RequestState::Denied,
        };
        assert_eq!(bus.clone().publish(event.clone()), 1);
        assert_eq!(receiver.recv().await.expect("event"), event);
        let json = serde_json::to_value(&event).expect("json");
        assert_eq!(json["type"], "request_changed");
        assert_eq!(json["state"], "denied");
    }

    #[test]
    fn camera_events_serialize_with_their_kind() {
        let event = DaemonEvent::CameraEvent {
            camera: "porch".into(),
            kind: "motion".into(),
            active: true,
        };
        let json = serde_json::to_value(&event).expect("json");
        assert_eq!(json["type"], "camera_event");
        assert_eq!(json["camera"], "porch");
        assert_eq!(json["kind"], "motion");
        assert_eq!(json["active"], true);
    }
}
