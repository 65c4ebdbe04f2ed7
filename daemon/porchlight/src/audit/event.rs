//! What one audit entry says: who did what to which footage, and how it went.
//!
//! Callers build an [`AuditEvent`]; the log adds the sequence number, the
//! time and the hashes and hands back an [`AuditEntry`].

use std::fmt;

use serde::{Serialize, Serializer};

use crate::time::format_utc_us;

/// An enum stored as snake_case text. Values this build does not know (from
/// a newer Porchlight, or typed into the database by hand) read back as
/// `Unknown` instead of failing, so the owner can still see them.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// Not a value this build writes.
            Unknown(String),
        }

        impl $name {
            /// Every value this build writes, for docs and tests.
            pub const KNOWN: &'static [$name] = &[$($name::$variant,)*];

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Unknown(text) => text,
                }
            }

            pub fn parse(text: &str) -> $name {
                match text {
                    $($text => $name::$variant,)*
                    other => $name::Unknown(other.to_string()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// The part of Porchlight that wrote the entry.
    Component {
        Daemon => "daemon",
        Relay => "relay",
        OwnerApi => "owner_api",
        Cli => "cli",
        Mqtt => "mqtt",
        Policy => "policy",
        Audit => "audit",
    }
}

text_enum! {
    /// What happened.
    EventType {
        /// A footage or live-view request arrived from an agency.
        RequestReceived => "request_received",
        /// A request was refused before it reached the owner (limits, bad fields).
        RequestRefused => "request_refused",
        /// The policy or the owner decided a request (automatic decisions too).
        Decision => "decision",
        Approval => "approval",
        Denial => "denial",
        /// A grant or request ran out of time.
        Expiry => "expiry",
        Download => "download",
        /// An agency read something that is not footage (a request's status,
        /// the device's registry entry).
        Access => "access",
        /// One minute of live view served (one entry per minute watched).
        LiveViewMinute => "live_view_minute",
        PolicyChange => "policy_change",
        AuthFailure => "auth_failure",
        /// The owner logged in to the owner API / web UI.
        OwnerLogin => "owner_login",
        /// The owner logged out (the session ended).
        OwnerLogout => "owner_logout",
        /// An owner account was made (with the one-time setup token).
        OwnerAccount => "owner_account",
        Enrolment => "enrolment",
        /// The box's outbound tunnel to a relay came up (relay certificate
        /// verified against the pinned agency CA).
        UplinkConnected => "uplink_connected",
        /// The tunnel ended (relay closed it, went silent, or the box stopped).
        UplinkDisconnected => "uplink_disconnected",
        /// The owner left a program: grants revoked, deletion requested.
        Leave => "leave",
        Revocation => "revocation",
        /// The owner exported footage themselves.
        Export => "export",
        /// A camera was added, or followed to a new address (or a device
        /// claiming to be one was refused).
        CameraChange => "camera_change",
        DaemonStart => "daemon_start",
        DaemonStop => "daemon_stop",
        /// Old entries were pruned; details hold the checkpoint.
        AuditPruned => "audit_pruned",
        /// The log found evidence of tampering when it opened.
        IntegrityAlert => "integrity_alert",
    }
}

text_enum! {
    /// Whose action an entry records.
    IdentityKind {
        Agency => "agency",
        Owner => "owner",
        /// Porchlight itself (start-up, expiry, pruning).
        System => "system",
        /// Someone who did not prove who they are (a failed login).
        Anonymous => "anonymous",
    }
}

text_enum! {
    /// How it ended.
    OutcomeKind {
        Ok => "ok",
        Refused => "refused",
        Error => "error",
    }
}

/// Who: an officer of an agency (with their certificate), the owner, or
/// Porchlight itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub kind: IdentityKind,
    pub agency: Option<String>,
    pub officer: Option<String>,
    /// SHA-256 fingerprint of the client certificate, as presented.
    pub cert_fingerprint: Option<String>,
    pub owner_user: Option<String>,
}

impl Identity {
    pub fn system() -> Identity {
        Identity::of_kind(IdentityKind::System)
    }

    pub fn anonymous() -> Identity {
        Identity::of_kind(IdentityKind::Anonymous)
    }

    /// The owner (`user` is the local account, when there is a login).
    pub fn owner(user: Option<&str>) -> Identity {
        Identity {
            owner_user: user.map(str::to_string),
            ..Identity::of_kind(IdentityKind::Owner)
        }
    }

    pub fn agency(agency: &str, officer: Option<&str>, cert_fingerprint: Option<&str>) -> Identity {
        Identity {
            agency: Some(agency.to_string()),
            officer: officer.map(str::to_string),
            cert_fingerprint: cert_fingerprint.map(str::to_string),
            ..Identity::of_kind(IdentityKind::Agency)
        }
    }

    fn of_kind(kind: IdentityKind) -> Identity {
        Identity {
            kind,
            agency: None,
            officer: None,
            cert_fingerprint: None,
            owner_user: None,
        }
    }
}

/// What it was about: a request, a camera, a window of footage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditObject {
    pub request_id: Option<String>,
    pub camera: Option<String>,
    /// Start of the footage window, UTC µs (RFC 3339 in JSON).
    #[serde(rename = "window_from", serialize_with = "optional_time")]
    pub window_from_us: Option<i64>,
    /// End of the footage window, UTC µs (RFC 3339 in JSON).
    #[serde(rename = "window_to", serialize_with = "optional_time")]
    pub window_to_us: Option<i64>,
}

fn optional_time<S: Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(us) => s.serialize_str(&format_utc_us(*us)),
        None => s.serialize_none(),
    }
}

/// How it ended, and why when it was not `ok`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub result: OutcomeKind,
    pub reason: Option<String>,
}

impl Outcome {
    pub fn ok() -> Outcome {
        Outcome {
            result: OutcomeKind::Ok,
            reason: None,
        }
    }

    pub fn refused(reason: impl Into<String>) -> Outcome {
        Outcome {
            result: OutcomeKind::Refused,
            reason: Some(reason.into()),
        }
    }

    pub fn error(reason: impl Into<String>) -> Outcome {
        Outcome {
            result: OutcomeKind::Error,
            reason: Some(reason.into()),
        }
    }
}

/// One thing to record, as a component describes it.
///
/// ```
/// use porchlight::audit::{AuditEvent, Component, EventType, Identity, Outcome};
/// let event = AuditEvent::new(
///     Component::Relay,
///     EventType::Download,
///     Identity::agency("Dallas PD", Some("badge 4711"), Some("sha256:ab12…")),
/// )
/// .request("REQ-17")
/// .camera("porch")
/// .window(1_700_000_000_000_000, 1_700_000_420_000_000)
/// .bytes_served(18_000_000)
/// .outcome(Outcome::ok());
/// # let _ = event;
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEvent {
    pub component: Component,
    pub event: EventType,
    pub identity: Identity,
    pub object: AuditObject,
    pub outcome: Outcome,
    pub bytes_served: u64,
    /// Anything else worth keeping (policy diff, reason codes), as JSON.
    pub details: Option<serde_json::Value>,
}

impl AuditEvent {
    /// An event with no object, outcome `ok`, nothing served.
    pub fn new(component: Component, event: EventType, identity: Identity) -> AuditEvent {
        AuditEvent {
            component,
            event,
            identity,
            object: AuditObject::default(),
            outcome: Outcome::ok(),
            bytes_served: 0,
            details: None,
        }
    }

    pub fn request(mut self, request_id: impl Into<String>) -> AuditEvent {
        self.object.request_id = Some(request_id.into());
        self
    }

    pub fn camera(mut self, camera: impl Into<String>) -> AuditEvent {
        self.object.camera = Some(camera.into());
        self
    }

    /// The footage window, UTC µs.
    pub fn window(mut self, from_us: i64, to_us: i64) -> AuditEvent {
        self.object.window_from_us = Some(from_us);
        self.object.window_to_us = Some(to_us);
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> AuditEvent {
        self.outcome = outcome;
        self
    }

    pub fn bytes_served(mut self, bytes: u64) -> AuditEvent {
        self.bytes_served = bytes;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> AuditEvent {
        self.details = Some(details);
        self
    }
}

/// An event as the log stored it: numbered, timed and chained.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// 1, 2, 3, … with no gaps, for the life of the log.
    pub seq: i64,
    /// When it was recorded, UTC µs (RFC 3339 in JSON).
    #[serde(rename = "time", serialize_with = "time")]
    pub time_us: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    /// `entry_hash` of the entry before (the genesis value for entry 1).
    pub prev_hash: String,
    /// SHA-256 over this entry's canonical encoding, lowercase hex.
    pub entry_hash: String,
}

fn time<S: Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_utc_us(*us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_as_snake_case_text() {
        for event in EventType::KNOWN {
            assert_eq!(&EventType::parse(event.as_str()), event);
        }
        assert_eq!(EventType::LiveViewMinute.as_str(), "live_view_minute");
        assert_eq!(
            EventType::parse("teleport"),
            EventType::Unknown("teleport".into())
        );
        assert_eq!(
            serde_json::to_string(&Component::OwnerApi).expect("json"),
            "\"owner_api\""
        );
    }

    #[test]
    fn entries_serialize_flat_with_rfc3339_times() {
        let entry = AuditEntry {
            seq: 7,
            time_us: 1_700_000_000_000_000,
            event: AuditEvent::new(
                Component::Relay,
                EventType::Download,
                Identity::agency("Dallas PD", Some("4711"), None),
            )
            .camera("porch")
            .window(1_700_000_000_000_000, 1_700_000_060_000_000),
            prev_hash: "00".into(),
            entry_hash: "ff".into(),
        };
        let json = serde_json::to_value(&entry).expect("json");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["time"], "2023-11-14T22:13:20Z");
        assert_eq!(json["event"], "download");
        assert_eq!(json["identity"]["agency"], "Dallas PD");
        assert_eq!(json["object"]["window_to"], "2023-11-14T22:14:20Z");
        assert_eq!(json["outcome"]["result"], "ok");
    }
}
