//! Live shares to the police relay: which are running, their tokens, and
//! ending them.
//!
//! A share is one camera of one emergency request, bound to the client
//! certificate that made the request, with a hard end (`[policy]
//! live_share_max` after it started). The token is 32 random bytes; only
//! its SHA-256 is kept, in memory: a restart ends every share. Once a share
//! of a request's camera has ended (owner, expiry, privacy, level, leaving
//! the relay), that request cannot start it again; asking again while it
//! runs gives a fresh token for the same share and the same end.
//!
//! Ending is a `watch` per share that every stream of it selects on, so a
//! stream stops as soon as the share ends. [`spawn_enforcer`] ends shares
//! the policy gate no longer allows (switch changes arrive on the bus at
//! once; expiry and schedules are checked four times a second) and all of
//! them when the owner leaves the relay program.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::audit::{AuditEvent, AuditLog, Component, EventType, Identity, Outcome};
use crate::controls::SharedPolicy;
use crate::events::{DaemonEvent, EventBus};
use crate::policy::{decide_live, LiveAsk};
use crate::relay::membership::Membership;
use crate::time::{format_utc_us, now_utc_us};

/// How often running shares are checked against their end and the schedule.
const ENFORCE_EVERY: Duration = Duration::from_millis(250);
/// Ended shares are remembered this long (so a request cannot restart one).
const KEEP_ENDED_US: i64 = 24 * 3600 * 1_000_000;

/// Why a share ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The owner ended it (API, CLI, MQTT).
    Owner,
    /// It reached its end time.
    Expired,
    /// The policy gate no longer allows it (privacy on, level lowered,
    /// schedule over); the gate's reason code.
    Policy(String),
    /// The owner left the relay program.
    RelayLeft,
}

impl EndReason {
    pub fn code(&self) -> String {
        match self {
            EndReason::Owner => "ended_by_owner".into(),
            EndReason::Expired => "expired".into(),
            EndReason::Policy(code) => code.clone(),
            EndReason::RelayLeft => "relay_left".into(),
        }
    }
}

/// A share as the owner sees it.
#[derive(Clone, Debug, Serialize)]
pub struct LiveShareInfo {
    pub id: String,
    pub request_id: String,
    pub camera: String,
    pub agency: String,
    pub started: String,
    pub expires: String,
    /// Audit entries written so far, one per started minute of each stream.
    pub minutes_audited: u64,
    /// Streams open right now.
    pub streams: usize,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_reason: Option<String>,
    #[serde(skip)]
    pub expires_us: i64,
    #[serde(skip)]
    pub cert_fingerprint: String,
}

struct Share {
    info: LiveShareInfo,
    token_sha256: [u8; 32],
    ended_us: Option<i64>,
    end: watch::Sender<Option<EndReason>>,
}

/// A share granted to the agency: its URL token (shown once).
#[derive(Debug)]
pub struct Granted {
    pub info: LiveShareInfo,
    pub token: String,
}

/// Why a share was not granted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("the live share of this camera for this request ended ({0}); make a new request")]
    Ended(String),
}

/// Why a stream was not opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the token is not valid for this request, camera and certificate")]
    Invalid,
    #[error("the live share has expired")]
    Expired,
    #[error("the live share was ended ({0})")]
    Ended(String),
}

/// What an opened stream holds: the share and its end signal.
pub struct StreamTicket {
    pub info: LiveShareInfo,
    pub end: watch::Receiver<Option<EndReason>>,
    _guard: StreamGuard,
}

struct StreamGuard {
    shares: LiveShares,
    id: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.shares.with(|shares| {
            if let Some(share) = shares.get_mut(&self.id) {
                share.info.streams = share.info.streams.saturating_sub(1);
            }
        });
    }
}

/// Every live share of this run. Cheap to clone.
#[derive(Clone)]
pub struct LiveShares {
    shares: Arc<Mutex<BTreeMap<String, Share>>>,
    audit: AuditLog,
    bus: EventBus,
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl LiveShares {
    pub fn new(audit: AuditLog, bus: EventBus) -> LiveShares {
        LiveShares {
            shares: Arc::new(Mutex::new(BTreeMap::new())),
            audit,
            bus,
        }
    }

    fn with<T>(&self, work: impl FnOnce(&mut BTreeMap<String, Share>) -> T) -> T {
        work(&mut self.shares.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Starts a share of `camera` for `request_id` (the caller asked the
    /// gate first), or gives the running one a fresh token.
    pub fn grant(
        &self,
        request_id: &str,
        camera: &str,
        agency: &str,
        cert_fingerprint: &str,
        max: Duration,
    ) -> Result<Granted, GrantError> {
        let now_us = now_utc_us();
        let token =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let (info, started) = self.with(|shares| {
            shares.retain(|_, s| s.ended_us.is_none_or(|t| now_us - t < KEEP_ENDED_US));
            if let Some(share) = shares.values_mut().find(|s| {
                s.info.request_id == request_id
                    && s.info.camera == camera
                    && s.info.cert_fingerprint == cert_fingerprint
            }) {
                if let Some(reason) = share.end.borrow().as_ref() {
                    return Err(GrantError::Ended(reason.code()));
                }
                share.token_sha256 = token_hash(&token);
                return Ok((share.info.clone(), false));
            }
            let expires_us = now_us + max.as_micros() as i64;
            let id = format!("ls_{}", crate::evidence::hex(&rand::random::<[u8; 8]>()));
            let info = LiveShareInfo {
                id: id.clone(),
                request_id: request_id.to_string(),
                camera: camera.to_string(),
                agency: agency.to_string(),
                started: format_utc_us(now_us),
                expires: format_utc_us(expires_us),
                minutes_audited: 0,
                streams: 0,
                active: true,
                ended_reason: None,
                expires_us,
                cert_fingerprint: cert_fingerprint.to_string(),
            };
            shares.insert(
                id,
                Share {
                    info: info.clone(),
                    token_sha256: token_hash(&token),
                    ended_us: None,
                    end: watch::channel(None).0,
                },
            );
            Ok((info, true))
        })?;
        if started {
            self.bus.publish(DaemonEvent::LiveShareChanged {
                id: info.id.clone(),
                camera: info.camera.clone(),
                active: true,
            });
        }
        Ok(Granted { info, token })
    }

    /// Opens a stream: the token must be the share's current one and match
    /// the request, camera and certificate of the call.
    pub fn open(
        &self,
        token: &str,
        request_id: &str,
        camera: &str,
        cert_fingerprint: &str,
    ) -> Result<StreamTicket, OpenError> {
        let hash = token_hash(token);
        let (info, end) = self.with(|shares| {
            let share = shares
                .values_mut()
                .find(|s| s.token_sha256 == hash)
                .ok_or(OpenError::Invalid)?;
            if share.info.request_id != request_id
                || share.info.camera != camera
                || share.info.cert_fingerprint != cert_fingerprint
            {
                return Err(OpenError::Invalid);
            }
            match share.end.borrow().as_ref() {
                Some(EndReason::Expired) => return Err(OpenError::Expired),
                Some(reason) => return Err(OpenError::Ended(reason.code())),
                None => {}
            }
            if now_utc_us() >= share.info.expires_us {
                return Err(OpenError::Expired);
            }
            share.info.streams += 1;
            Ok((share.info.clone(), share.end.subscribe()))
        })?;
        Ok(StreamTicket {
            _guard: StreamGuard {
                shares: self.clone(),
                id: info.id.clone(),
            },
            info,
            end,
        })
    }

    /// Counts one more audited minute; returns the share's total.
    pub fn count_minute(&self, id: &str) -> u64 {
        self.with(|shares| {
            shares.get_mut(id).map_or(0, |s| {
                s.info.minutes_audited += 1;
                s.info.minutes_audited
            })
        })
    }

    /// Running shares, oldest first.
    pub fn list(&self) -> Vec<LiveShareInfo> {
        let mut list: Vec<LiveShareInfo> = self.with(|shares| {
            shares
                .values()
                .filter(|s| s.ended_us.is_none())
                .map(|s| s.info.clone())
                .collect()
        });
        list.sort_by(|a, b| a.started.cmp(&b.started).then(a.id.cmp(&b.id)));
        list
    }

    /// Whether any share of `camera` is running (Home Assistant's sensor).
    pub fn active_on(&self, camera: &str) -> bool {
        self.with(|shares| {
            shares
                .values()
                .any(|s| s.ended_us.is_none() && s.info.camera == camera)
        })
    }

    /// Ends the running shares `which` picks, at once: their streams stop,
    /// the owner's log and the bus are told. Returns what was ended.
    pub fn end_where(
        &self,
        which: impl Fn(&LiveShareInfo) -> bool,
        reason: EndReason,
        component: Component,
    ) -> Vec<LiveShareInfo> {
        let now_us = now_utc_us();
        let ended: Vec<LiveShareInfo> = self.with(|shares| {
            shares
                .values_mut()
                .filter(|s| s.ended_us.is_none() && which(&s.info))
                .map(|s| {
                    s.ended_us = Some(now_us);
                    s.info.active = false;
                    s.info.ended_reason = Some(reason.code());
                    s.end.send_replace(Some(reason.clone()));
                    s.info.clone()
                })
                .collect()
        });
        for info in &ended {
            self.bus.publish(DaemonEvent::LiveShareChanged {
                id: info.id.clone(),
                camera: info.camera.clone(),
                active: false,
            });
            let (kind, identity) = match reason {
                EndReason::Owner => (EventType::Revocation, Identity::owner(None)),
                EndReason::Expired => (EventType::Expiry, Identity::system()),
                _ => (EventType::Revocation, Identity::system()),
            };
            let event = AuditEvent::new(component.clone(), kind, identity)
                .outcome(Outcome::ok())
                .request(info.request_id.clone())
                .camera(info.camera.clone())
                .details(serde_json::json!({
                    "live_share": info.id,
                    "ended": reason.code(),
                    "agency": info.agency,
                    "started": info.started,
                    "minutes_audited": info.minutes_audited,
                }));
            self.append_audit(event);
        }
        ended
    }

    /// Ends one share by id; `None` when no running share has it.
    pub fn end(&self, id: &str, reason: EndReason, component: Component) -> Option<LiveShareInfo> {
        self.end_where(|s| s.id == id, reason, component).pop()
    }

    fn append_audit(&self, event: AuditEvent) {
        // Called from async handlers and blocking threads alike.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let audit = self.audit.clone();
                handle.spawn(async move {
                    if let Err(e) = audit.append(event).await {
                        tracing::error!(error = %e, "cannot write to the audit log");
                    }
                });
            }
            Err(_) => {
                if let Err(e) = self.audit.append_blocking(event) {
                    tracing::error!(error = %e, "cannot write to the audit log");
                }
            }
        }
    }

    /// Ends what the gate no longer allows, and what reached its end.
    fn enforce(&self, policy: &SharedPolicy) {
        let now_us = now_utc_us();
        self.end_where(
            |s| now_us >= s.expires_us,
            EndReason::Expired,
            Component::Policy,
        );
        let policy = policy.current();
        for share in self.list() {
            let ask = LiveAsk {
                camera: &share.camera,
                emergency: true,
                in_request: true,
            };
            if let Err(refusal) = decide_live(&policy, ask, now_us) {
                self.end(
                    &share.id,
                    EndReason::Policy(refusal.code().to_string()),
                    Component::Policy,
                );
            }
        }
    }
}

/// Keeps running shares within the policy: ends them when the owner's
/// switches change (privacy on, level lowered), when their time is up or
/// their schedule ends, and all of them when the owner leaves the relay
/// (`RelayLeft` on the bus, and [`Membership::is_member`] at every tick).
pub fn spawn_enforcer(
    shares: LiveShares,
    policy: SharedPolicy,
    membership: Membership,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut bus = shares.bus.subscribe();
    let mut tick = tokio::time::interval(ENFORCE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = bus.recv() => match event {
                    Ok(DaemonEvent::SettingsChanged)
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Ok(DaemonEvent::RelayLeft) => {
                        shares.end_where(|_| true, EndReason::RelayLeft, Component::Relay);
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if !membership.is_member() {
                shares.end_where(|_| true, EndReason::RelayLeft, Component::Relay);
            }
            shares.enforce(&policy);
        }
    })
}
